package io.streamsaga.inmemory.patterns;

import io.streamsaga.aggregator.AggregationException;
import io.streamsaga.aggregator.EventAggregator;
import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.splitter.SequenceInfo;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * docs/patterns.md (aggregator): "a part numbered beyond the size that the group's parts of its sequence already
 * carry, or carrying another size, is refused". The aggregator keeps what it knows of a group's sequences between
 * parts rather than decoding every part of the group for each new one; its decisions must stay those of that rule
 * checked against every part of the group, however the parts are ordered and whichever instance over the store
 * took the parts before.
 */
class AggregatorSequenceCheckTest {
    record Item(String n) {
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final EventBus bus = EventBus.builder(transport).scheduler(scheduler)
            .types(TypeRegistry.builder().register("item", 1, Item.class).build()).build();
    private final InMemoryAggregationStore store = new InMemoryAggregationStore();

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    private EventAggregator aggregator() {
        return EventAggregator.builder(bus, store).name("items").correlateBy(message -> "g")
                .completeWhen(group -> false).onRelease(aggregate -> { }).build();
    }

    private static Message part(String sequence, int number, Integer size) {
        Message.Builder builder = Message.builder("item").type("item").payload(new Item(sequence + number))
                .header(MessageHeaders.SEQUENCE_ID, sequence)
                .header(MessageHeaders.SEQUENCE_NUMBER, Integer.toString(number))
                .header(MessageHeaders.SEQUENCE_LAST, Boolean.toString(size != null && size == number));
        if (size != null) {
            builder.header(MessageHeaders.SEQUENCE_SIZE, Integer.toString(size));
        }
        return builder.build();
    }

    /** Parts of two sequences, each number once, in random order, with sizes absent, right or wrong. */
    private static List<Message> parts(Random random) {
        List<Message> parts = new ArrayList<>();
        for (String sequence : List.of("a", "b")) {
            int size = 1 + random.nextInt(6);
            for (int number = 1; number <= size + 2; number++) { // two beyond the size: a faulty producer's
                int choice = random.nextInt(4);
                Integer carried = choice == 0 ? Integer.valueOf(size) : choice == 1 ? Integer.valueOf(number + random.nextInt(3)) : null;
                parts.add(part(sequence, number, carried != null && carried < number ? null : carried));
            }
        }
        Collections.shuffle(parts, random);
        return parts;
    }

    /** The documented rule, checked against every part the group took. */
    private static boolean contradicts(List<SequenceInfo> taken, SequenceInfo part) {
        for (SequenceInfo other : taken) {
            if (!other.sequenceId().equals(part.sequenceId()) || other.size().isEmpty()) {
                continue;
            }
            int size = other.size().getAsInt();
            if (part.number() > size || part.size().isPresent() && part.size().getAsInt() != size) {
                return true;
            }
        }
        return false;
    }

    private static List<String> decisions(List<Message> parts, List<EventAggregator> instances, Random random) {
        List<String> decisions = new ArrayList<>();
        for (Message part : parts) {
            EventAggregator instance = instances.get(random.nextInt(instances.size()));
            try {
                instance.accept(part);
                decisions.add("taken");
            } catch (AggregationException e) {
                decisions.add("refused");
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        }
        return decisions;
    }

    private static List<String> expected(List<Message> parts) {
        List<SequenceInfo> taken = new ArrayList<>();
        List<String> decisions = new ArrayList<>();
        for (Message part : parts) {
            SequenceInfo info = SequenceInfo.of(part).orElseThrow();
            if (contradicts(taken, info)) {
                decisions.add("refused");
            } else {
                taken.add(info);
                decisions.add("taken");
            }
        }
        return decisions;
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20})
    void partsAreTakenOrRefusedAsTheRuleCheckedAgainstEveryPartOfTheGroupSays(int seed) {
        Random random = new Random(seed);
        List<Message> parts = parts(random);
        EventAggregator aggregator = aggregator();

        assertEquals(expected(parts), decisions(parts, List.of(aggregator), random), "seed " + seed);
        aggregator.close();
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20})
    void twoInstancesOverOneStoreTakeOrRefuseEachPartAsTheRuleSaysWhicheverTookThePartsBefore(int seed) {
        Random random = new Random(seed);
        List<Message> parts = parts(random);
        EventAggregator one = aggregator();
        EventAggregator two = aggregator();

        assertEquals(expected(parts), decisions(parts, List.of(one, two), random), "seed " + seed);
        one.close();
        two.close();
    }

    @Test
    void anInstanceWhoseGroupWasReleasedElsewhereAndDeletedChecksTheNextGroupOfTheKeyAgainstItsOwnParts() throws Exception {
        List<io.streamsaga.aggregator.Aggregate> released = new java.util.concurrent.CopyOnWriteArrayList<>();
        EventAggregator.Builder builder = EventAggregator.builder(bus, store).name("items").correlateBy(message -> "g")
                .completeOnSize(3).keepClosed(Duration.ofMinutes(1)).onRelease(released::add);
        EventAggregator one = builder.build();
        EventAggregator two = builder.build();
        one.accept(part("s", 1, null)); // the group's version 1
        one.accept(part("s", 2, null)); // version 2: what instance one last saw of the key
        two.accept(part("s", 3, 3)); // completed and released by the other instance
        scheduler.advance(Duration.ofMinutes(1)); // its tombstone deleted: the key's next parts start a new group
        assertTrue(store.find("items", "g").isEmpty());

        two.accept(part("t", 1, 2)); // the new group's version 1
        two.accept(part("t", 2, 2)); // its version 2, as the version instance one last saw of the old group

        assertThrows(AggregationException.class, () -> one.accept(part("t", 3, null)),
                "numbered beyond the size its sequence's parts carry: refused, whatever instance one saw of the old group");
        assertEquals(1, released.size(), "the new group is not released with the stray part");
        one.close();
        two.close();
    }

    private static Message plain(int n) {
        return Message.builder("item").type("item").payload(new Item("plain" + n)).build();
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20})
    void completeOnSequenceEndReleasesAGroupMixingSequencesAndPlainPartsExactlyWhenTheRuleCheckedAgainstEveryPartHolds(int seed)
            throws Exception {
        // the aggregator answers the rule from what it keeps between parts; AggregationGroup.sequenceComplete()
        // reads every part: the group is released the first time that holds, by whichever instance, never before
        Random random = new Random(seed);
        List<Message> parts = new ArrayList<>(parts(random));
        parts.removeIf(part -> random.nextInt(5) == 0); // some numbers never come
        for (int n = 0; n < 6; n++) {
            parts.add(random.nextInt(parts.size() + 1), plain(n));
        }
        List<io.streamsaga.aggregator.Aggregate> released = new java.util.concurrent.CopyOnWriteArrayList<>();
        EventAggregator.Builder builder = EventAggregator.builder(bus, store).name("items").correlateBy(message -> "g")
                .completeOnSequenceEnd().onRelease(released::add);
        List<EventAggregator> instances = List.of(builder.build(), builder.build());

        for (Message part : parts) {
            try {
                instances.get(random.nextInt(instances.size())).accept(part);
            } catch (AggregationException refused) {
                // out of sequence, or late once the group was released
            }
            if (released.isEmpty()) {
                assertTrue(!store.find("items", "g").orElseThrow().sequenceComplete(), "seed " + seed
                        + ": the rule holds for the stored group, which is not released");
            }
        }
        for (io.streamsaga.aggregator.Aggregate aggregate : released) {
            assertTrue(aggregate.group().sequenceComplete(), "seed " + seed + ": released while the rule did not hold");
        }
        assertTrue(released.size() <= 1, "seed " + seed);
        instances.forEach(EventAggregator::close);
    }
}
