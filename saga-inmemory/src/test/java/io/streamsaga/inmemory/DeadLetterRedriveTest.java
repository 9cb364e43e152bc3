package io.streamsaga.inmemory;

import io.streamsaga.CapturedLog;
import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.DeadLetterRedrive;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.PublishException;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.idempotency.IdempotentConsumer;
import io.streamsaga.inmemory.patterns.InMemoryDeduplicationStore;
import io.streamsaga.internal.SystemScheduler;
import io.streamsaga.message.DerivedIds;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.mockito.AdditionalAnswers.delegatesTo;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.Mockito.doAnswer;
import static org.mockito.Mockito.mock;

/**
 * {@link DeadLetterRedrive} beyond its contract (DeadLetterRedriveContractTest, run on every transport): bad input,
 * the limit, a send that fails, a letter without its payload, and why the original's id is kept. On the in-memory log
 * in MANUAL mode, the test's drains delivering.
 */
class DeadLetterRedriveTest {

    record Charge(String orderId, long amount) {
    }

    private static final String TOPIC = "charges";
    private static final String DLT = TOPIC + MessageHeaders.DEAD_LETTER_SUFFIX;

    private final InMemoryTransport real = InMemoryTransport.builder().partitions(2).deliveryMode(DeliveryMode.MANUAL).build();
    private final AtomicBoolean refusing = new AtomicBoolean();
    /** {@code real}, refusing what is sent to {@link #TOPIC} while {@link #refusing}. */
    private final InMemoryTransport transport = refusingSendsToTheTopic();
    private final EventBus bus = EventBus.builder(transport)
            .types(TypeRegistry.builder().register("charge", 1, Charge.class).build()).build();

    private InMemoryTransport refusingSendsToTheTopic() {
        InMemoryTransport wrapper = mock(InMemoryTransport.class, delegatesTo(real));
        doAnswer(call -> {
            Message message = call.getArgument(0);
            return refusing.get() && message.topic().equals(TOPIC)
                    ? CompletableFuture.failedFuture(new PublishException(TOPIC, "the broker is away", null, true))
                    : real.send(message);
        }).when(wrapper).send(any(Message.class));
        return wrapper;
    }

    @AfterEach
    void close() {
        bus.close();
        real.close();
    }

    private DeadLetterRedrive.Report finished(DeadLetterRedrive.Run run) throws Exception {
        CompletableFuture<DeadLetterRedrive.Report> finished = run.finished().toCompletableFuture();
        // the run closes its subscription on a thread of its own, then completes
        await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(10)).pollInSameThread().until(() -> {
            real.drainAll();
            return finished.isDone();
        });
        return finished.get(0, TimeUnit.SECONDS);
    }

    private long deadLetters() {
        return real.endOffsets(DLT).values().stream().mapToLong(Long::longValue).sum();
    }

    /** Dead-letters {@code count} charges, all of key {@code k} (one partition, in order), through a failing handler. */
    private List<Message> deadLetter(int count, AtomicBoolean broken) {
        List<Message> handled = new CopyOnWriteArrayList<>();
        bus.subscribe("billing", TOPIC, Charge.class, SubscriptionOptions.fromEarliest().withRetryPolicy(RetryPolicy.NONE),
                (charge, ctx) -> {
                    if (broken.get()) {
                        throw new IllegalStateException("bug");
                    }
                    handled.add(ctx.message());
                });
        for (int i = 0; i < count; i++) {
            bus.publish(TOPIC, "k", new Charge("o-" + i, i)).toCompletableFuture().join();
        }
        real.drainAll();
        assertEquals(count, deadLetters());
        broken.set(false);
        return handled;
    }

    @Test
    void badTopicsAndOptionsAreRefusedWithAConfigurationExceptionNamingThem() {
        assertRefused("dead-letter topic must not be blank, but was null", () -> DeadLetterRedrive.builder(bus, null));
        assertRefused("dead-letter topic must not be blank, but was ' '", () -> DeadLetterRedrive.builder(bus, " "));
        assertRefused("dead-letter topic must be a topic's name followed by .DLT, but was 'charges'",
                () -> DeadLetterRedrive.builder(bus, TOPIC));
        assertRefused("dead-letter topic must be a topic's name followed by .DLT, but was '.DLT'",
                () -> DeadLetterRedrive.builder(bus, ".DLT"));
        assertRefused("topic name must be letters, digits, '.', '_' and '-', but was 'my charges.DLT'",
                () -> DeadLetterRedrive.builder(bus, "my charges.DLT"));
        DeadLetterRedrive.Builder builder = DeadLetterRedrive.builder(bus, DLT);
        assertRefused("redrive group must not be blank, but was null", () -> builder.group(null));
        assertRefused("redrive group must not be blank, but was ''", () -> builder.group(""));
        assertRefused("redrive filter must not be null", () -> builder.filter(null));
        assertRefused("redrive limit must be at least 1, but was 0", () -> builder.limit(0));
        assertEquals(DLT + ".redrive", builder.build().group(), "the default group");
        assertEquals(TOPIC, builder.build().originalTopic());
    }

    private static void assertRefused(String message, Executable call) {
        assertEquals(message, assertThrows(ConfigurationException.class, call).getMessage());
    }

    @Test
    void anOperatorRedrivesTheLettersOfOneErrorClassOnceTheBugIsFixedAndWaitsForTheReport() throws Exception {
        try (InMemoryTransport threaded = InMemoryTransport.builder().build();
             EventBus bus = EventBus.builder(threaded).types(TypeRegistry.builder().register("charge", 1, Charge.class).build())
                     .build()) {
            AtomicBoolean broken = new AtomicBoolean(true);
            List<Charge> billed = new CopyOnWriteArrayList<>();
            bus.subscribe("billing", TOPIC, Charge.class, SubscriptionOptions.fromEarliest().withRetryPolicy(RetryPolicy.NONE),
                    (charge, ctx) -> {
                        if (broken.get()) {
                            throw charge.amount() > 0 ? new IllegalStateException("bug") : new IllegalArgumentException("refused");
                        }
                        billed.add(charge);
                    });
            bus.publish(TOPIC, "k", new Charge("o-0", 0)).toCompletableFuture().join();
            bus.publish(TOPIC, "k", new Charge("o-1", 1)).toCompletableFuture().join();
            await().atMost(Duration.ofSeconds(30)).until(() -> threaded.endOffsets(DLT).values().stream()
                    .mapToLong(Long::longValue).sum() == 2);
            broken.set(false);

            DeadLetterRedrive.Run run = DeadLetterRedrive.builder(bus, "charges.DLT")
                    .filter(letter -> IllegalStateException.class.getName()
                            .equals(letter.headers().get(MessageHeaders.DLT_ERROR_CLASS)))
                    .build()
                    .start();
            DeadLetterRedrive.Report report = run.finished().toCompletableFuture().join();

            assertEquals(new DeadLetterRedrive.Report(1, 1, 0, 0), report);
            await().atMost(Duration.ofSeconds(30)).until(() -> billed.equals(List.of(new Charge("o-1", 1))));
        }
    }

    @Test
    void aLimitStopsTheRunAfterThatManyLettersAndTheNextRunGoesOnFromThere() throws Exception {
        List<Message> handled = deadLetter(3, new AtomicBoolean(true));
        DeadLetterRedrive redrive = DeadLetterRedrive.builder(bus, DLT).limit(2).build();

        assertEquals(new DeadLetterRedrive.Report(2, 0, 0, 0), finished(redrive.start()));
        real.drainAll();
        assertEquals(List.of(new Charge("o-0", 0), new Charge("o-1", 1)), handled.stream().map(Message::payload).toList());

        assertEquals(new DeadLetterRedrive.Report(1, 0, 0, 0), finished(redrive.start()));
        real.drainAll();
        assertEquals(new Charge("o-2", 2), handled.get(2).payload());
        assertEquals(new DeadLetterRedrive.Report(0, 0, 0, 0), finished(redrive.start()), "nothing left: finished at once");
    }

    @Test
    void closingARunEndsTheThreadsOfItsOwnWhetherItIsRunningOrHasStopped() throws Exception {
        deadLetter(2, new AtomicBoolean(true));
        DeadLetterRedrive.Run running = DeadLetterRedrive.builder(bus, DLT).build().start(); // not drained: nothing delivered
        assertEquals(List.of("streamsaga-redrive-end-" + running.group()),
                threadsOf(running).stream().map(Thread::getName).toList());

        running.close();
        assertEquals(List.of(), threadsOf(running), "close() ended the end check");

        DeadLetterRedrive.Run stopped = DeadLetterRedrive.builder(bus, DLT).limit(1).build().start();
        assertEquals(new DeadLetterRedrive.Report(1, 0, 0, 0), finished(stopped)); // closed its subscription on a thread
        stopped.close();
        assertEquals(List.of(), threadsOf(stopped), "close() ended them all");
    }

    @Test
    void closingARunFromItsOwnConsumerThreadInItsFilterReturnsWithoutWaitingForTheBussCloseWait() throws Exception {
        // the run's close waits up to the bus scheduler's close wait for its threads: ten minutes here, so a close
        // on the consumer thread that waited for a thread waiting on that consumer thread would not return in time
        try (InMemoryTransport threaded = InMemoryTransport.create();
             SystemScheduler scheduler = new SystemScheduler(Clock.systemUTC(), Duration.ofMinutes(10));
             EventBus bus = EventBus.builder(threaded).scheduler(scheduler).build()) {
            threaded.send(Message.builder(DLT).key("k").type("letter").payload("a").build()).toCompletableFuture().join();
            CompletableFuture<DeadLetterRedrive.Run> started = new CompletableFuture<>();
            CountDownLatch closedInTheFilter = new CountDownLatch(1);
            DeadLetterRedrive.Run run = DeadLetterRedrive.builder(bus, DLT).filter(letter -> {
                started.join().close();
                closedInTheFilter.countDown();
                return false;
            }).build().start();
            started.complete(run);

            assertTrue(closedInTheFilter.await(30, TimeUnit.SECONDS), "close() on the run's consumer thread returned");
            CompletionException closed = assertThrows(CompletionException.class,
                    () -> run.finished().toCompletableFuture().join());
            assertInstanceOf(CancellationException.class, closed.getCause());
            await().atMost(Duration.ofSeconds(30)).until(() -> threadsOf(run).isEmpty());
        }
    }

    /** The live threads a run started of its own (see RedriveRun): named for its group. */
    private static List<Thread> threadsOf(DeadLetterRedrive.Run run) {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(thread -> thread.isAlive() && thread.getName().startsWith("streamsaga-redrive-")
                        && thread.getName().endsWith("-" + run.group()))
                .toList();
    }

    @Test
    void aSendThatFailsStopsTheRunAtItsLetterWhichStaysForTheNextRun() throws Exception {
        List<Message> handled = deadLetter(2, new AtomicBoolean(true));
        refusing.set(true);
        DeadLetterRedrive redrive = DeadLetterRedrive.builder(bus, DLT).build();

        assertEquals(new DeadLetterRedrive.Report(0, 0, 0, 1), finished(redrive.start()));
        assertEquals(2, real.endOffsets(TOPIC).values().stream().mapToLong(Long::longValue).sum(), "the originals only");

        refusing.set(false);
        assertEquals(new DeadLetterRedrive.Report(2, 0, 0, 0), finished(redrive.start()));
        real.drainAll();
        assertEquals(List.of(new Charge("o-0", 0), new Charge("o-1", 1)), handled.stream().map(Message::payload).toList());
    }

    @Test
    void closingTheBusStopsARunningRedriveWhoseLettersStayForTheNextRunAndRefusesANewOne() throws Exception {
        deadLetter(2, new AtomicBoolean(true));
        DeadLetterRedrive redrive = DeadLetterRedrive.builder(bus, DLT).build();
        DeadLetterRedrive.Run run = redrive.start();

        bus.close(); // before any letter was delivered to the run

        CompletableFuture<DeadLetterRedrive.Report> finished = run.finished().toCompletableFuture();
        assertTrue(finished.isCompletedExceptionally(), "closed with the bus: " + finished);
        assertInstanceOf(CancellationException.class, assertThrows(CompletionException.class, finished::join).getCause());
        real.drainAll();
        assertEquals(2, real.endOffsets(TOPIC).values().stream().mapToLong(Long::longValue).sum(), "nothing sent back");
        assertTrue(real.committedOffsets(redrive.group(), DLT).values().stream().allMatch(next -> next == 0),
                "the letters stay for the next run: " + real.committedOffsets(redrive.group(), DLT));
        assertRefused("event bus is closed: group 'charges.DLT.redrive' cannot subscribe to 'charges.DLT'", redrive::start);
    }

    @Test
    void aRedrivenMessageThatFailsAgainIsDeadLetteredUnderAnIdOfItsOwnDerivedFromItsRedriveCount() throws Exception {
        AtomicBoolean broken = new AtomicBoolean(true);
        deadLetter(1, broken);
        broken.set(true); // the fix did not work
        List<Message> letters = new CopyOnWriteArrayList<>();
        bus.subscribe("dlt-reader", DLT, Message.class, SubscriptionOptions.fromEarliest(), (letter, ctx) -> letters.add(letter));

        assertEquals(new DeadLetterRedrive.Report(1, 0, 0, 0), finished(DeadLetterRedrive.builder(bus, DLT).build().start()));
        real.drainAll();

        assertEquals(2, letters.size());
        String originalId = letters.get(0).headers().get(MessageHeaders.DLT_ORIGINAL_MESSAGE_ID);
        assertEquals(originalId, letters.get(1).headers().get(MessageHeaders.DLT_ORIGINAL_MESSAGE_ID), "the same message");
        assertNotEquals(letters.get(0).id(), letters.get(1).id(), "a reader deduplicating dead letters by id keeps both");
        // derived from what the record carries, as before: a redelivered record dead-lettered again gets the same id
        assertEquals(DerivedIds.uuidOf(originalId, "billing"), letters.get(0).id());
        assertEquals(DerivedIds.uuidOf(originalId, "billing", "1"), letters.get(1).id());
    }

    /** Writes a dead letter of {@link #TOPIC} under {@code key}; returns its partition. */
    private int letter(String key, long amount) {
        return real.send(Message.builder(DLT).key(key).type("charge").payload(new Charge("o-" + amount, amount))
                .header(MessageHeaders.DLT_ORIGINAL_TOPIC, TOPIC).build()).toCompletableFuture().join().partition();
    }

    private long committed(String group, int partition) {
        return real.committedOffsets(group, DLT).getOrDefault(partition, 0L);
    }

    @Test
    void aLetterPastTheEndOfAPartitionThatReachedItIsLeftForTheNextRunWithOneLogLineWhileTheOtherPartitionGoesOn()
            throws Throwable {
        int done = letter("a", 0); // one letter in one partition, four in the other
        int other = 1 - done;
        for (int i = 1; real.endOffsets(DLT).get(other) < 4; i++) {
            String key = "b-" + i;
            // the partition a key goes to, found on a topic of its own
            if (real.send(Message.builder("probe").key(key).type("charge").payload(new Charge(key, i)).build())
                    .toCompletableFuture().join().partition() == other) {
                letter(key, i);
            }
        }
        long inDone = 1;
        DeadLetterRedrive redrive = DeadLetterRedrive.builder(bus, DLT).build();
        DeadLetterRedrive.Run run = redrive.start();
        for (int i = 0; committed(redrive.group(), done) < inDone; i++) {
            assertTrue(i < 20, "the run took the letters of partition " + done);
            real.drain(1);
        }
        assertTrue(committed(redrive.group(), other) < 4, "the other partition still has letters for the run");
        letter("a", 99); // dead-lettered while the run goes on, past its end

        String log = CapturedLog.ofThisThread(() -> {
            for (int i = 0; committed(redrive.group(), other) < 4; i++) {
                assertTrue(i < 20, "the run took the letters of partition " + other);
                real.drain(1); // one letter at a time: the letter past the end is met on each call
            }
        });

        assertEquals(List.of(), log.lines().filter(line -> line.contains(" WARN ")).toList(), log);
        assertTrue(log.lines().filter(line -> line.contains("left for the next run")).count() <= 1, log);
        assertEquals(new DeadLetterRedrive.Report(inDone + 4, 0, 0, 0), finished(run));
        assertEquals(inDone, committed(redrive.group(), done), "the letter past the end is not passed");
        assertEquals(new DeadLetterRedrive.Report(1, 0, 0, 0), finished(redrive.start()), "the next run takes it");
    }

    @Test
    void aLetterDeadLetteredWithoutItsPayloadIsSkippedNotSentBackEmpty() throws Exception {
        real.send(Message.builder(DLT).key("k").type("charge").payload(null)
                .header(MessageHeaders.DLT_ORIGINAL_TOPIC, TOPIC)
                .header(MessageHeaders.DLT_ORIGINAL_PARTITION, "1").header(MessageHeaders.DLT_ORIGINAL_OFFSET, "7")
                .header(MessageHeaders.DLT_PAYLOAD_OMITTED, "too large").build()).toCompletableFuture().join();

        assertEquals(new DeadLetterRedrive.Report(0, 0, 1, 0), finished(DeadLetterRedrive.builder(bus, DLT).build().start()));
        assertTrue(real.endOffsets(TOPIC).values().stream().allMatch(end -> end == 0), "nothing sent back");
        assertEquals(1, deadLetters());
    }

    @Test
    void aGroupThatHandledTheOriginalSkipsTheRedrivenMessageByItsIdWhileTheGroupThatFailedHandlesIt() throws Exception {
        IdempotentConsumer idempotent = IdempotentConsumer.builder(bus, InMemoryDeduplicationStore.builder().build()).build();
        List<Charge> shipped = new CopyOnWriteArrayList<>();
        bus.subscribe("shipping", TOPIC, Charge.class, SubscriptionOptions.fromEarliest(),
                idempotent.wrap((charge, ctx) -> shipped.add(charge)));
        List<Message> billed = deadLetter(1, new AtomicBoolean(true)); // billing failed, shipping did not

        assertEquals(new DeadLetterRedrive.Report(1, 0, 0, 0), finished(DeadLetterRedrive.builder(bus, DLT).build().start()));
        real.drainAll();

        assertEquals(List.of(new Charge("o-0", 0)), billed.stream().map(Message::payload).toList());
        assertEquals(List.of(new Charge("o-0", 0)), shipped, "shipping saw the same message again and skipped it");
    }
}
