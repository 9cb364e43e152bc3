package io.streamsaga.contract;

import io.streamsaga.bus.DeadLetterRedrive;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.spi.Transport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The dead-letter redrive contract: on any {@link Transport}, a {@link DeadLetterRedrive} sends the dead letters the bus
 * wrote back to their original topic as the original (id, key, payload, application headers, plus a redrive count),
 * stops at the end offsets taken at its start with counts of what it did, and leaves what it cannot send back in the
 * dead-letter topic. A transport module extends this class and implements {@link #createTransport()}; it uses fresh
 * topic and group names and waits (pumping) instead of assuming synchronous delivery.
 */
public abstract class DeadLetterRedriveContractTest {

    /** The event of the suite. */
    public record RedriveOrderPlaced(String orderId, long amount) {
    }

    private static final String TYPE = "redrive-contract-order-placed";

    private Transport transport;
    private EventBus bus;

    /** A new transport under test. */
    protected abstract Transport createTransport();

    /** Delivers pending records when delivery is driven by the caller; nothing otherwise. */
    protected void pump() {
    }

    /** How long a test waits for deliveries. */
    protected Duration timeout() {
        return Duration.ofSeconds(30);
    }

    @BeforeEach
    void open() {
        transport = createTransport();
        bus = EventBus.builder(transport).types(TypeRegistry.builder().register(TYPE, 1, RedriveOrderPlaced.class).build())
                .build();
    }

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    protected static String unique(String base) {
        return base + "-" + UUID.randomUUID().toString().substring(0, 8);
    }

    private void eventually(Executable assertion) {
        await().atMost(timeout()).pollInterval(Duration.ofMillis(10)).pollInSameThread().untilAsserted(() -> {
            pump();
            try {
                assertion.execute();
            } catch (AssertionError | RuntimeException e) {
                throw e;
            } catch (Throwable t) {
                throw new AssertionError(t);
            }
        });
    }

    /** The run's report once it finished, pumping meanwhile. */
    private DeadLetterRedrive.Report finished(DeadLetterRedrive.Run run) throws Exception {
        eventually(() -> assertTrue(run.finished().toCompletableFuture().isDone()));
        return run.finished().toCompletableFuture().get(1, TimeUnit.SECONDS);
    }

    /** Subscribes the service's group: its handler throws {@code failure} while {@code broken}, and records what it handled. */
    private List<Message> service(String topic, AtomicBoolean broken, List<Message> attempts) {
        List<Message> handled = new CopyOnWriteArrayList<>();
        bus.subscribe(unique("service"), topic, RedriveOrderPlaced.class,
                SubscriptionOptions.fromEarliest().withRetryPolicy(RetryPolicy.NONE), (event, ctx) -> {
                    attempts.add(ctx.message());
                    if (broken.get()) {
                        throw event.amount() < 100 ? new IllegalStateException("bug on " + event.orderId())
                                : new IllegalArgumentException("refused " + event.orderId());
                    }
                    handled.add(ctx.message());
                });
        return handled;
    }

    /** Follows {@code topic}'s dead letters as they are. */
    private List<Message> deadLetters(String topic) {
        List<Message> letters = new CopyOnWriteArrayList<>();
        bus.subscribe(unique("dlt-reader"), topic + MessageHeaders.DEAD_LETTER_SUFFIX, Message.class,
                SubscriptionOptions.fromEarliest(), (letter, ctx) -> letters.add(letter));
        return letters;
    }

    @Test
    void aFixedHandlerHandlesTheRedrivenDeadLetterOnceAsTheOriginalWithItsIdKeyPayloadAndHeaders() throws Exception {
        String topic = unique("orders");
        AtomicBoolean broken = new AtomicBoolean(true);
        List<Message> attempts = new CopyOnWriteArrayList<>();
        List<Message> handled = service(topic, broken, attempts);
        List<Message> letters = deadLetters(topic);
        bus.publish(topic, "k-1", new RedriveOrderPlaced("o-1", 5), Map.of("tenant", "acme")).toCompletableFuture().join();
        eventually(() -> assertEquals(1, letters.size()));
        Message original = attempts.get(0);
        assertEquals(original.id(), letters.get(0).headers().get(MessageHeaders.DLT_ORIGINAL_MESSAGE_ID));

        broken.set(false); // the bug is fixed
        DeadLetterRedrive.Run run = DeadLetterRedrive.builder(bus, topic + MessageHeaders.DEAD_LETTER_SUFFIX).build().start();

        assertEquals(new DeadLetterRedrive.Report(1, 0, 0, 0), finished(run));
        // one more message of the key, handled after the redriven one (order per key): nothing came twice before it
        bus.publish(topic, "k-1", new RedriveOrderPlaced("o-2", 6)).toCompletableFuture().join();
        eventually(() -> assertEquals(2, handled.size()));
        Message redriven = handled.get(0);
        assertEquals(original.id(), redriven.id());
        assertEquals("k-1", redriven.key());
        assertEquals(new RedriveOrderPlaced("o-1", 5), redriven.payload());
        assertEquals("acme", redriven.headers().get("tenant"));
        assertEquals(original.headers().get(MessageHeaders.CORRELATION_ID), redriven.headers().get(MessageHeaders.CORRELATION_ID));
        assertEquals("1", redriven.headers().get(MessageHeaders.REDRIVE_COUNT));
        assertTrue(redriven.headers().keySet().stream().noneMatch(name -> name.startsWith("dlt-")), redriven.headers().toString());
        assertEquals(original.headers().get(MessageHeaders.CAUSATION_ID), redriven.headers().get(MessageHeaders.CAUSATION_ID),
                "the causation id the bus gave the dead letter is not the original's");
        assertEquals(1, letters.size(), "nothing failed again");
    }

    @Test
    void aFilterRedrivesOnlyTheLettersItTakesAndTheReportCountsTheOthers() throws Exception {
        String topic = unique("orders");
        AtomicBoolean broken = new AtomicBoolean(true);
        List<Message> handled = service(topic, broken, new CopyOnWriteArrayList<>());
        List<Message> letters = deadLetters(topic);
        bus.publish(topic, "k-1", new RedriveOrderPlaced("o-1", 5)).toCompletableFuture().join(); // IllegalStateException
        bus.publish(topic, "k-2", new RedriveOrderPlaced("o-2", 500)).toCompletableFuture().join(); // IllegalArgumentException
        eventually(() -> assertEquals(2, letters.size()));

        broken.set(false);
        DeadLetterRedrive.Run run = DeadLetterRedrive.builder(bus, topic + MessageHeaders.DEAD_LETTER_SUFFIX)
                .filter(letter -> IllegalStateException.class.getName().equals(letter.headers().get(MessageHeaders.DLT_ERROR_CLASS)))
                .build().start();

        assertEquals(new DeadLetterRedrive.Report(1, 1, 0, 0), finished(run));
        eventually(() -> assertEquals(1, handled.size()));
        assertEquals(new RedriveOrderPlaced("o-1", 5), handled.get(0).payload());
    }

    @Test
    void aLetterThatFailsAgainReturnsToTheDeadLetterTopicWithItsRedriveCountAndIsLeftForTheNextRun() throws Exception {
        String topic = unique("orders");
        AtomicBoolean broken = new AtomicBoolean(true);
        List<Message> attempts = new CopyOnWriteArrayList<>();
        service(topic, broken, attempts);
        List<Message> letters = deadLetters(topic);
        bus.publish(topic, "k-1", new RedriveOrderPlaced("o-1", 5)).toCompletableFuture().join();
        eventually(() -> assertEquals(1, letters.size()));
        DeadLetterRedrive redrive = DeadLetterRedrive.builder(bus, topic + MessageHeaders.DEAD_LETTER_SUFFIX).build();

        // not fixed: the redriven message fails again; the run stops at the end taken at its start, not sending it round
        assertEquals(new DeadLetterRedrive.Report(1, 0, 0, 0), finished(redrive.start()));
        eventually(() -> assertEquals(2, letters.size()));
        Message again = letters.get(1);
        assertEquals("1", again.headers().get(MessageHeaders.REDRIVE_COUNT));
        assertEquals(attempts.get(0).id(), again.headers().get(MessageHeaders.DLT_ORIGINAL_MESSAGE_ID));

        // the next run under the same group starts where the last one stopped: only the letter that failed again
        assertEquals(new DeadLetterRedrive.Report(1, 0, 0, 0), finished(redrive.start()));
        eventually(() -> assertEquals(3, letters.size()));
        assertEquals("2", letters.get(2).headers().get(MessageHeaders.REDRIVE_COUNT));
        assertEquals(List.of(attempts.get(0).id(), attempts.get(0).id(), attempts.get(0).id()),
                attempts.stream().map(Message::id).toList(), "the same message each time");
    }

    @Test
    void aLetterThatNamesNoOriginalTopicOrAnotherOneIsSkippedReportedAndLeftInTheDeadLetterTopic() throws Exception {
        String topic = unique("orders");
        String deadLetterTopic = topic + MessageHeaders.DEAD_LETTER_SUFFIX;
        byte[] payload = "{\"orderId\":\"o-1\",\"amount\":5}".getBytes(StandardCharsets.UTF_8);
        transport.send(Message.builder(deadLetterTopic).key("k-1").type(TYPE).payload(payload).build()).toCompletableFuture().join();
        transport.send(Message.builder(deadLetterTopic).key("k-2").type(TYPE).payload(payload)
                .header(MessageHeaders.DLT_ORIGINAL_TOPIC, unique("elsewhere")).build()).toCompletableFuture().join();
        List<Message> handled = service(topic, new AtomicBoolean(false), new CopyOnWriteArrayList<>());

        DeadLetterRedrive.Run run = DeadLetterRedrive.builder(bus, deadLetterTopic).build().start();

        assertEquals(new DeadLetterRedrive.Report(0, 0, 2, 0), finished(run));
        assertEquals(2, transport.endOffsets(deadLetterTopic).values().stream().mapToLong(Long::longValue).sum(),
                "both letters stay in the dead-letter topic");
        assertEquals(0, transport.endOffsets(topic).values().stream().mapToLong(Long::longValue).sum(), "nothing sent back");
        assertEquals(List.of(), handled);
    }

    @Test
    void aLetterDeadLetteredAfterTheStartBehindThePartitionsLastLetterIsLeftForTheNextRunWhichRedrivesIt() throws Exception {
        String topic = unique("orders");
        String deadLetterTopic = topic + MessageHeaders.DEAD_LETTER_SUFFIX;
        AtomicBoolean broken = new AtomicBoolean(true);
        List<Message> handled = service(topic, broken, new CopyOnWriteArrayList<>());
        List<Message> letters = deadLetters(topic);
        bus.publish(topic, "k-1", new RedriveOrderPlaced("o-1", 5)).toCompletableFuture().join();
        eventually(() -> assertEquals(1, letters.size()));
        // Once the run took its end offsets, and before it subscribes, one more message of the key fails: its letter
        // follows the partition's last one (in exactly-once mode, behind that letter's commit marker), so the run's
        // first poll returns both.
        Transport endTakenThenFailing = new ForwardingTransport(transport) {
            private final AtomicBoolean once = new AtomicBoolean();

            @Override
            public Map<Integer, Long> endOffsets(String topicName) {
                Map<Integer, Long> end = super.endOffsets(topicName);
                if (topicName.equals(deadLetterTopic) && once.compareAndSet(false, true)) {
                    bus.publish(topic, "k-1", new RedriveOrderPlaced("o-2", 6)).toCompletableFuture().join();
                    eventually(() -> assertEquals(2, letters.size()));
                    broken.set(false); // the bug is fixed
                }
                return end;
            }
        };
        try (EventBus redriving = EventBus.builder(endTakenThenFailing)
                .types(TypeRegistry.builder().register(TYPE, 1, RedriveOrderPlaced.class).build()).build()) {
            DeadLetterRedrive redrive = DeadLetterRedrive.builder(redriving, deadLetterTopic).build();

            assertEquals(new DeadLetterRedrive.Report(1, 0, 0, 0), finished(redrive.start()), "o-1 only, then it ends");
            eventually(() -> assertEquals(1, handled.size()));
            assertEquals(new RedriveOrderPlaced("o-1", 5), handled.get(0).payload());

            // the letter past the end stayed for the next run: neither lost nor committed
            assertEquals(new DeadLetterRedrive.Report(1, 0, 0, 0), finished(redrive.start()));
            eventually(() -> assertEquals(2, handled.size()));
            assertEquals(new RedriveOrderPlaced("o-2", 6), handled.get(1).payload());
            assertEquals("1", handled.get(1).headers().get(MessageHeaders.REDRIVE_COUNT));
        }
        assertEquals(2, letters.size(), "nothing failed again");
    }
}
