package io.streamsaga.aggregator.spi;

import io.streamsaga.aggregator.AggregatedPart;
import io.streamsaga.aggregator.AggregationGroup;
import io.streamsaga.aggregator.GroupState;
import io.streamsaga.ConfigurationException;
import io.streamsaga.spi.StoredKeys;
import static org.junit.jupiter.api.Assertions.assertThrows;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What every {@link AggregationStore} must do. Subclass it and create a fresh, empty store per call. */
public abstract class AggregationStoreContractTest {
    private static final Instant T0 = Instant.parse("2026-01-01T00:00:00Z");

    protected abstract AggregationStore createStore();

    private static AggregatedPart part(String id) {
        return new AggregatedPart(id, "order-item-created", "order-item-created", 1,
                Map.of("sequence-id", "o-1", "sequence-number", "1"), ("{\"id\":\"" + id + "\"}").getBytes(StandardCharsets.UTF_8), T0,
                "o-1");
    }

    @Test
    void savedGroupIsFoundWithItsPartsStateAndDeadline() {
        AggregationStore store = createStore();
        AggregationGroup group = AggregationGroup.open("agg", "o-1", T0, T0.plusSeconds(60)).withPart(part("m1")).withVersion(1);
        assertTrue(store.save(group));
        AggregationGroup found = store.find("agg", "o-1").orElseThrow();
        assertEquals(1, found.version());
        assertEquals(GroupState.OPEN, found.state());
        assertEquals(T0.plusSeconds(60), found.deadline());
        assertEquals(T0, found.createdAt());
        assertEquals(1, found.size());
        AggregatedPart stored = found.parts().get(0);
        assertEquals("m1", stored.messageId());
        assertEquals("o-1", stored.headers().get("sequence-id"));
        assertArrayEquals(part("m1").payload(), stored.payload());
        assertEquals("o-1", stored.key());
        assertTrue(store.find("agg", "other").isEmpty());
        assertTrue(store.find("other-aggregator", "o-1").isEmpty());
    }

    @Test
    void aPartWithoutAKeyIsFoundWithoutOne() {
        AggregationStore store = createStore();
        AggregatedPart keyless = new AggregatedPart("m1", "order-item-created", "order-item-created", 1, Map.of(),
                new byte[0], T0);
        assertTrue(store.save(AggregationGroup.open("agg", "o-1", T0, null).withPart(keyless).withVersion(1)));
        assertEquals(null, store.find("agg", "o-1").orElseThrow().parts().get(0).key());
    }

    @Test
    void saveOverAStaleVersionIsRefused() {
        AggregationStore store = createStore();
        AggregationGroup v1 = AggregationGroup.open("agg", "o-1", T0, null).withPart(part("m1")).withVersion(1);
        assertTrue(store.save(v1));
        assertFalse(store.save(v1), "inserting again over version 1");
        assertTrue(store.save(v1.withPart(part("m2")).withVersion(2)));
        assertFalse(store.save(v1.withPart(part("m3")).withVersion(2)), "a writer that read version 1 lost the race");
        assertEquals(2, store.find("agg", "o-1").orElseThrow().size());
        assertFalse(store.save(AggregationGroup.open("agg", "o-2", T0, null).withVersion(2)), "skipping a version");
    }

    @Test
    void concurrentWritersOfOneVersionHaveExactlyOneWinner() throws Exception {
        AggregationStore store = createStore();
        AggregationGroup base = AggregationGroup.open("agg", "o-1", T0, null).withVersion(1);
        assertTrue(store.save(base));
        int writers = 8;
        ExecutorService pool = Executors.newFixedThreadPool(writers);
        try {
            CountDownLatch start = new CountDownLatch(1);
            List<Future<Boolean>> results = new ArrayList<>();
            for (int i = 0; i < writers; i++) {
                AggregationGroup mine = base.withPart(part("m" + i)).withVersion(2);
                results.add(pool.submit(() -> {
                    start.await();
                    return store.save(mine);
                }));
            }
            start.countDown();
            int winners = 0;
            for (Future<Boolean> result : results) {
                winners += result.get(10, TimeUnit.SECONDS) ? 1 : 0;
            }
            assertEquals(1, winners);
            assertEquals(1, store.find("agg", "o-1").orElseThrow().size());
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void deleteNeedsTheCurrentVersion() {
        AggregationStore store = createStore();
        assertTrue(store.save(AggregationGroup.open("agg", "o-1", T0, null).withVersion(1)));
        assertFalse(store.delete("agg", "o-1", 7));
        assertTrue(store.find("agg", "o-1").isPresent());
        assertTrue(store.delete("agg", "o-1", 1));
        assertTrue(store.find("agg", "o-1").isEmpty());
        assertFalse(store.delete("agg", "o-1", 1));
        assertTrue(store.save(AggregationGroup.open("agg", "o-1", T0, null).withVersion(1)), "a deleted key starts over");
    }

    @Test
    void groupsWithDeadlinesAreListedPerAggregatorForRearming() {
        AggregationStore store = createStore();
        store.save(AggregationGroup.open("agg", "open-with-timeout", T0, T0.plusSeconds(5)).withVersion(1));
        store.save(AggregationGroup.open("agg", "open-without-timeout", T0, null).withVersion(1));
        store.save(AggregationGroup.open("agg", "tombstone", T0, null)
                .withState(GroupState.COMPLETED, T0.plusSeconds(3600)).withVersion(1));
        store.save(AggregationGroup.open("other", "x", T0, T0.plusSeconds(5)).withVersion(1));
        List<String> keys = store.withDeadlines("agg").stream().map(AggregationGroup::key).sorted().toList();
        assertEquals(List.of("open-with-timeout", "tombstone"), keys);
        assertEquals(GroupState.COMPLETED, store.find("agg", "tombstone").orElseThrow().state());
    }

    @Test
    void ofTwoClaimsOfOneReleasingGroupOneWinsAndItsLeaseIsStoredForTheTakeOver() {
        // An aggregator claims a group for its release by saving it RELEASING over the version it read, the
        // deadline being the claim's lease: of two releases claiming the same version (a scheduled retry and a
        // redelivered part, two instances), one runs; the other's release and its record are refused.
        AggregationStore store = createStore();
        AggregationGroup releasing = AggregationGroup.open("agg", "o-1", T0, null).withPart(part("m1"))
                .withState(GroupState.RELEASING, T0.plusSeconds(300)).withVersion(1);
        assertTrue(store.save(releasing));
        AggregationGroup claim = releasing.withState(GroupState.RELEASING, T0.plusSeconds(600)).withVersion(2);
        AggregationGroup rival = releasing.withState(GroupState.RELEASING, T0.plusSeconds(601)).withVersion(2);

        assertTrue(store.save(claim));
        assertFalse(store.save(rival), "the second claim of the same version");
        assertFalse(store.save(releasing.withState(GroupState.COMPLETED, T0.plusSeconds(3600)).withVersion(2)),
                "a release whose claim was taken over cannot record itself");
        AggregationGroup found = store.find("agg", "o-1").orElseThrow();
        assertEquals(GroupState.RELEASING, found.state());
        assertEquals(2, found.version());
        assertEquals(T0.plusSeconds(600), found.deadline(), "the winner's lease");
        assertEquals(List.of(T0.plusSeconds(600)), store.withDeadlines("agg").stream().map(AggregationGroup::deadline).toList(),
                "listed with its lease, so that a restarted aggregator takes a crashed release over when it ends");
        assertTrue(store.save(found.withState(GroupState.COMPLETED, T0.plusSeconds(3600)).withVersion(3)));
        assertEquals(GroupState.COMPLETED, store.find("agg", "o-1").orElseThrow().state());
    }

    /**
     * An aggregator name or group key holding U+0000 or a lone surrogate, or a part's header name holding a lone
     * surrogate, is refused with a ConfigurationException by every operation, nothing stored, as a durable store must
     * ({@code StoredKeys}: PostgreSQL cannot store a NUL, its driver writes a lone surrogate as '?', and JSON reads a
     * lone surrogate's escape back in a value but not in a name). A header value holding either is kept.
     */
    @Test
    void namesAndKeysHoldingANulOrALoneSurrogateAreRefusedWithNothingStored() {
        AggregationStore store = createStore();
        for (String bad : List.of("x\0", "x\uD800", "x\uDC00y")) {
            for (String[] id : new String[][]{{bad, "o-1"}, {"agg", bad}}) {
                AggregationGroup group = AggregationGroup.open(id[0], id[1], T0, T0.plusSeconds(60)).withVersion(1);
                assertThrows(ConfigurationException.class, () -> store.save(group));
                assertThrows(ConfigurationException.class, () -> store.find(id[0], id[1]));
                assertThrows(ConfigurationException.class, () -> store.delete(id[0], id[1], 1));
            }
            assertThrows(ConfigurationException.class, () -> store.withDeadlines(bad));
        }
        AggregatedPart loneInName = new AggregatedPart("m1", "t", "t", 1, Map.of("h\uD800", "v"), new byte[0], T0);
        assertThrows(ConfigurationException.class,
                () -> store.save(AggregationGroup.open("agg", "o-1", T0, null).withPart(loneInName).withVersion(1)));
        assertTrue(store.find("agg", "o-1").isEmpty(), "a refused save stores nothing");
        AggregatedPart inValues = new AggregatedPart("m1", "t", "t", 1, Map.of("h\0", "v\0\uD800"), new byte[0], T0);
        assertTrue(store.save(AggregationGroup.open("agg", "o-1", T0, null).withPart(inValues).withVersion(1)));
        assertEquals(Map.of("h\0", "v\0\uD800"), store.find("agg", "o-1").orElseThrow().parts().get(0).headers());
    }

    /**
     * Every store keeps an aggregator name and a group key up to the lengths of {@link StoredKeys} (the JDBC schema's
     * column widths) and refuses a longer one in every operation, alike: an in-memory store that took one would let a
     * test pass where production fails.
     */
    @Test
    void namesAndKeysUpToTheirStoredLengthAreKeptAndALongerOneIsRefusedWithNothingStored() {
        AggregationStore store = createStore();
        String name = "a".repeat(StoredKeys.MAX_AGGREGATOR_NAME_LENGTH);
        String key = "k".repeat(StoredKeys.MAX_GROUP_KEY_LENGTH);
        assertTrue(store.save(AggregationGroup.open(name, key, T0, T0.plusSeconds(60)).withPart(part("m1")).withVersion(1)));
        assertEquals(List.of("m1"), ids(store.find(name, key).orElseThrow()));
        assertEquals(1, store.withDeadlines(name).size());
        for (String[] id : new String[][]{{name + "a", "o-1"}, {"agg", key + "k"}}) {
            AggregationGroup group = AggregationGroup.open(id[0], id[1], T0, T0.plusSeconds(60)).withVersion(1);
            assertThrows(ConfigurationException.class, () -> store.save(group));
            assertThrows(ConfigurationException.class, () -> store.append(group.withPart(part("m1")).withVersion(1)));
            assertThrows(ConfigurationException.class, () -> store.find(id[0], id[1]));
            assertThrows(ConfigurationException.class, () -> store.delete(id[0], id[1], 1));
        }
        assertThrows(ConfigurationException.class, () -> store.withDeadlines(name + "a"));
        assertTrue(store.find("agg", "o-1").isEmpty(), "a refused save stores nothing");
    }

    /**
     * A key's next group, once its group was deleted, counts its versions from 1 again, so a version is met again: a
     * writer that read the earlier group and was held up (a pause of its process) while it was deleted and the next
     * group reached that version must not take the next group for the one it read. A store tells them apart by when each
     * was opened ({@link AggregationGroup#createdAt()}, which a group keeps for its life): the stale writer's save,
     * append and delete change nothing. The in-memory store replaced the next group with the earlier one's parts and
     * the stale part (the released parts back, the next group's lost), and every store deleted the next group, its
     * parts unreleased.
     */
    @Test
    void aWriterOfAnEarlierGroupOfTheKeyMeetingItsVersionAgainChangesNothingInTheNextGroup() {
        AggregationStore store = createStore();
        AggregationGroup earlier = AggregationGroup.open("agg", "o-1", T0, T0.plusSeconds(60)).withPart(part("m1")).withVersion(1);
        assertTrue(store.save(earlier));
        earlier = earlier.withPart(part("m2")).withVersion(2);
        assertTrue(store.append(earlier));
        AggregationGroup read = store.find("agg", "o-1").orElseThrow(); // the stale writer's read, at version 2
        assertTrue(store.delete(read));

        Instant later = T0.plusSeconds(600);
        AggregationGroup next = AggregationGroup.open("agg", "o-1", later, later.plusSeconds(60)).withPart(part("n1")).withVersion(1);
        assertTrue(store.save(next));
        next = next.withPart(part("n2")).withVersion(2);
        assertTrue(store.append(next));

        assertFalse(store.append(read.withPart(part("stale")).withVersion(3)), "an append built on the earlier group");
        assertFalse(store.save(read.withState(GroupState.COMPLETED, null).withVersion(3)), "a save of the earlier group");
        assertFalse(store.delete(read), "a delete of the earlier group at the version met again");
        AggregationGroup found = store.find("agg", "o-1").orElseThrow();
        assertEquals(List.of("n1", "n2"), ids(found));
        assertEquals(later, found.createdAt());
        assertEquals(2, found.version());
        assertEquals(GroupState.OPEN, found.state());
        assertTrue(store.delete(found));
        assertTrue(store.find("agg", "o-1").isEmpty());
    }

    /**
     * A group's writer may write it again from the group it built, not from one read back: the aggregator releases a
     * group complete on its first part and saves it COMPLETED from the group it opened at the clock's instant, which
     * has nanoseconds (a system clock on Linux), finer than a durable store keeps (a TIMESTAMP column: microseconds).
     * The store must still take it for the same group, opened at that time: its save, append and delete of the next
     * versions change the group, rounded or not (JdbcAggregationStore compared the unrounded instant with the stored,
     * rounded one on H2: the release's COMPLETED save refused, the group left RELEASING and released again once its
     * lease passed).
     */
    @Test
    void aGroupOpenedAtAnInstantFinerThanTheStoreKeepsIsWrittenAgainFromTheGroupItsWriterBuilt() {
        AggregationStore store = createStore();
        for (Instant opened : List.of(T0.plusNanos(123_456_789), T0.plusNanos(1), T0.plusNanos(999_999_999))) {
            String key = "o-" + opened.getNano();
            AggregationGroup group = AggregationGroup.open("agg", key, opened, opened.plusSeconds(60))
                    .withPart(part("m1")).withVersion(1);
            assertTrue(store.append(group));
            group = group.withPart(part("m2")).withVersion(2);
            assertTrue(store.append(group), "an append built on the group as opened, at " + opened);
            group = group.withState(GroupState.RELEASING, opened.plusSeconds(30)).withVersion(3);
            assertTrue(store.save(group), "a save built on the group as opened, at " + opened);
            assertEquals(3, store.find("agg", key).orElseThrow().version());
            assertEquals(List.of("m1", "m2"), ids(store.find("agg", key).orElseThrow()));
            assertTrue(store.delete(group), "a delete of the group as opened, at " + opened);
            assertTrue(store.find("agg", key).isEmpty());
        }
    }

    private static List<String> ids(AggregationGroup group) {
        return group.parts().stream().map(AggregatedPart::messageId).toList();
    }

    /**
     * {@link AggregationStore#append} (the aggregator adds each part with it) is a versioned save of the group that
     * gained one part: the parts are found in arrival order, with the state and deadline it carries; one over a stale
     * version changes nothing; and a whole save after appends (a change of state, a part dropped) keeps exactly the
     * group's parts.
     */
    @Test
    void appendedPartsAreFoundInOrderAndAnAppendOverAStaleVersionChangesNothing() {
        AggregationStore store = createStore();
        AggregationGroup group = AggregationGroup.open("agg", "o-1", T0, T0.plusSeconds(60)).withPart(part("m1")).withVersion(1);
        assertTrue(store.append(group));
        assertFalse(store.append(group), "appending again over version 1");
        for (int i = 2; i <= 5; i++) {
            group = group.withPart(part("m" + i)).withVersion(group.version() + 1);
            assertTrue(store.append(group));
        }
        assertFalse(store.append(group.withPart(part("stale")).withVersion(group.version())), "a writer that read the version before");
        assertFalse(store.append(group.withPart(part("skipping")).withVersion(group.version() + 2)), "skipping a version");
        AggregationGroup found = store.find("agg", "o-1").orElseThrow();
        assertEquals(List.of("m1", "m2", "m3", "m4", "m5"), ids(found));
        assertEquals(5, found.version());
        assertArrayEquals(part("m4").payload(), found.parts().get(3).payload());

        AggregationGroup releasing = found.withPart(part("m6")).withState(GroupState.RELEASING, T0.plusSeconds(300))
                .withVersion(6);
        assertTrue(store.append(releasing));
        assertEquals(GroupState.RELEASING, store.find("agg", "o-1").orElseThrow().state());
        assertEquals(T0.plusSeconds(300), store.find("agg", "o-1").orElseThrow().deadline());
        AggregationGroup reopened = releasing.withState(GroupState.OPEN, T0.plusSeconds(900)).withVersion(7);
        assertTrue(store.save(reopened));
        assertEquals(List.of("m1", "m2", "m3", "m4", "m5", "m6"), ids(store.find("agg", "o-1").orElseThrow()));
        AggregationGroup dropped = new AggregationGroup("agg", "o-1", 8, GroupState.OPEN,
                List.of(part("m1"), part("m3"), part("m7")), T0, T0.plusSeconds(900));
        assertTrue(store.save(dropped), "a save dropping parts");
        assertEquals(List.of("m1", "m3", "m7"), ids(store.find("agg", "o-1").orElseThrow()));
        assertTrue(store.append(dropped.withPart(part("m8")).withVersion(9)));
        assertEquals(List.of("m1", "m3", "m7", "m8"), ids(store.find("agg", "o-1").orElseThrow()));
        assertEquals(List.of("m1", "m3", "m7", "m8"), ids(store.withDeadlines("agg").get(0)));

        assertTrue(store.delete("agg", "o-1", 9));
        AggregationGroup again = AggregationGroup.open("agg", "o-1", T0, null).withPart(part("n1")).withVersion(1);
        assertTrue(store.append(again), "a deleted key starts over");
        assertTrue(store.append(again.withPart(part("n2")).withVersion(2)));
        assertEquals(List.of("n1", "n2"), ids(store.find("agg", "o-1").orElseThrow()), "none of the deleted group's parts");
    }

    @Test
    void concurrentAppendsOfOneVersionHaveExactlyOneWinner() throws Exception {
        AggregationStore store = createStore();
        AggregationGroup base = AggregationGroup.open("agg", "o-1", T0, null).withPart(part("m0")).withVersion(1);
        assertTrue(store.append(base));
        int writers = 8;
        ExecutorService pool = Executors.newFixedThreadPool(writers);
        try {
            CountDownLatch start = new CountDownLatch(1);
            List<Future<Boolean>> results = new ArrayList<>();
            for (int i = 0; i < writers; i++) {
                AggregationGroup mine = base.withPart(part("m" + (i + 1))).withVersion(2);
                results.add(pool.submit(() -> {
                    start.await();
                    return store.append(mine);
                }));
            }
            start.countDown();
            int winners = 0;
            for (Future<Boolean> result : results) {
                winners += result.get(10, TimeUnit.SECONDS) ? 1 : 0;
            }
            assertEquals(1, winners);
            assertEquals(2, store.find("agg", "o-1").orElseThrow().size());
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void anAppendedPartWhoseHeaderNameHoldsALoneSurrogateIsRefusedWithNothingStored() {
        AggregationStore store = createStore();
        AggregationGroup group = AggregationGroup.open("agg", "o-1", T0, null).withPart(part("m1")).withVersion(1);
        assertTrue(store.append(group));
        AggregatedPart loneInName = new AggregatedPart("m2", "t", "t", 1, Map.of("h\uD800", "v"), new byte[0], T0);
        assertThrows(ConfigurationException.class, () -> store.append(group.withPart(loneInName).withVersion(2)));
        assertThrows(ConfigurationException.class, () -> store.append(AggregationGroup.open("agg", "x\0", T0, null)
                .withPart(part("m1")).withVersion(1)));
        AggregationGroup found = store.find("agg", "o-1").orElseThrow();
        assertEquals(1, found.version(), "a refused append stores nothing");
        assertEquals(List.of("m1"), ids(found));
    }
}
