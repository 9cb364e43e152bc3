package io.streamsaga.jdbc.outbox;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.PublishException;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.jdbc.JdbcSchema;
import io.streamsaga.jdbc.JdbcTransactions;
import io.streamsaga.jdbc.inbox.JdbcInbox;
import io.streamsaga.jdbc.testing.DatabaseExtension;
import io.streamsaga.jdbc.testing.TestDatabase;
import io.streamsaga.message.Message;
import io.streamsaga.metrics.MetricsRecorder;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.time.Scheduler;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The transactional outbox, its relay and the inbox, on one database engine; subclasses pick the engine
 * so every behaviour is proven on PostgreSQL and on H2.
 */
abstract class OutboxAndInboxTest {
    record OrderCreated(String orderId, long amount) {
    }

    record OrderShipped(String orderId, java.time.Instant shippedAt) {
    }

    /** Stands for a process dying in the middle of a relay batch: nothing after it runs. */
    static final class SimulatedCrash extends io.streamsaga.saga.spi.SimulatedProcessCrash {
        private static final long serialVersionUID = 1L;

        SimulatedCrash() {
            super("the relay's process dies");
        }
    }

    @RegisterExtension
    final DatabaseExtension db = DatabaseExtension.of(kind());

    abstract TestDatabase.Kind kind();

    private TestDatabase database;
    private VirtualScheduler scheduler;
    private InMemoryTransport transport;
    private EventBus bus;
    private JdbcOutbox outbox;
    private JdbcTransactions tx;

    @BeforeEach
    void setUp() {
        database = db.database();
        JdbcSchema.of(database.dataSource()).migrate();
        database.execute("CREATE TABLE orders (id VARCHAR(50) PRIMARY KEY, amount BIGINT NOT NULL)");
        database.execute("CREATE TABLE invoices (order_id VARCHAR(50) NOT NULL, consumer VARCHAR(50) NOT NULL)");
        scheduler = new VirtualScheduler();
        transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        bus = EventBus.builder(transport).types(TypeRegistry.builder().register("order-created", 1, OrderCreated.class)
                .register("order-shipped", 1, OrderShipped.class).build()).scheduler(scheduler).build();
        outbox = JdbcOutbox.builder(database.dataSource()).codec(bus.codec()).clock(scheduler.clock()).build();
        tx = new JdbcTransactions(database.dataSource());
    }

    @AfterEach
    void tearDown() {
        bus.close();
        transport.close();
    }

    private void createOrder(Connection c, String id, long amount) throws Exception {
        createOrder(c, id, "customer-1", amount);
    }

    /** The application's use case: its own row and the event, in the caller's transaction; keyed by customer. */
    private void createOrder(Connection c, String id, String customer, long amount) throws Exception {
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO orders (id, amount) VALUES (?, ?)")) {
            ps.setString(1, id);
            ps.setLong(2, amount);
            ps.executeUpdate();
        }
        outbox.append(c, "order-created", customer, new OrderCreated(id, amount));
    }

    /** Counts increments by name and sorted tags. */
    static final class CountingMetrics implements MetricsRecorder {
        private final Map<String, Integer> counts = new java.util.concurrent.ConcurrentHashMap<>();

        @Override
        public void increment(String name, Map<String, String> tags) {
            counts.merge(name + new java.util.TreeMap<>(tags), 1, Integer::sum);
        }

        int count(String key) {
            return counts.getOrDefault(key, 0);
        }
    }

    private final CountingMetrics metrics = new CountingMetrics();

    /** A relay publishing through the bus. */
    private OutboxRelay.Builder relay() {
        return relayTo().eventBus(bus);
    }

    /** A relay on the test's scheduler, still to be given where it publishes (publisher or transport). */
    private OutboxRelay.Builder relayTo() {
        return OutboxRelay.builder(database.dataSource()).scheduler(scheduler).executor(Runnable::run).metrics(metrics)
                .backoff(RetryPolicy.builder().initialBackoff(Duration.ofSeconds(1)).multiplier(2)
                        .maxBackoff(Duration.ofSeconds(8)).jitter(0).build())
                .pollInterval(Duration.ofSeconds(5));
    }

    private List<OrderCreated> collect(String group) {
        List<OrderCreated> seen = new CopyOnWriteArrayList<>();
        bus.subscribe(group, "order-created", OrderCreated.class, (event, ctx) -> seen.add(event));
        return seen;
    }

    @Test
    void entityAndMessageAreCommittedTogetherOrNotAtAll() {
        tx.run(c -> createOrder(c, "o-1", 100));
        assertThrows(IllegalStateException.class, () -> tx.run(c -> {
            createOrder(c, "o-2", 200);
            throw new IllegalStateException("validation failed after both writes");
        }));

        assertEquals(1, database.queryLong("SELECT COUNT(*) FROM orders"));
        assertEquals(1, outbox.pendingCount());
        assertEquals(1, database.queryLong("SELECT COUNT(*) FROM orders WHERE id = 'o-1'"));
        assertEquals("customer-1", outbox.rows(OutboxRow.Status.PENDING, 10).get(0).message().key());
        assertEquals(0, database.queryLong("SELECT COUNT(*) FROM orders WHERE id = 'o-2'"));
    }

    @Test
    void anEventWithAnInstantGoesThroughTheOutboxAndTheRelayWithTheBusCodec() {
        // JsonEventCodec.defaultMapper() writes java.time values without jackson-datatype-jsr310; the outbox
        // encodes payloads with the codec given (its own mapper only reads and writes the headers)
        List<OrderShipped> seen = new CopyOnWriteArrayList<>();
        bus.subscribe("tracking", "order-shipped", OrderShipped.class, (event, ctx) -> seen.add(event));
        OrderShipped shipped = new OrderShipped("o-1", java.time.Instant.parse("2026-03-01T10:15:30.123456Z"));
        tx.run(c -> outbox.append(c, "order-shipped", "o-1", shipped));

        assertEquals(1, relay().build().relayPending());
        transport.drainAll();

        assertEquals(List.of(shipped), seen);
        assertEquals(0, outbox.pendingCount());
    }

    @Test
    void relayPublishesCommittedRowsInOrderPerKeyAndMarksThemSent() {
        List<OrderCreated> seen = collect("billing");
        for (int i = 0; i < 30; i++) {
            int n = i;
            tx.run(c -> createOrder(c, "o-" + n, "customer-" + (n % 3), n));
        }
        OutboxRelay relay = relay().batchSize(7).build();

        assertEquals(30, relay.relayPending());
        transport.drainAll();

        assertEquals(0, outbox.pendingCount());
        assertEquals(30, seen.size());
        List<Long> amounts = seen.stream().map(OrderCreated::amount).toList();
        for (int customer = 0; customer < 3; customer++) {
            int k = customer;
            List<Long> ofCustomer = amounts.stream().filter(a -> a % 3 == k).toList();
            List<Long> sorted = new ArrayList<>(ofCustomer);
            sorted.sort(Long::compare);
            assertEquals(sorted, ofCustomer, "events of customer-" + k + " arrive in commit order");
        }
        assertEquals(0, relay.relayPending(), "sent rows are not published again");
    }

    @Test
    void relayPendingReturnsWhenTheRelayIsClosedWhileItRuns() {
        // OutboxRelay.close(): "a poll in progress finishes its current row"; relayPending() then fetched full
        // batches it no longer published and looped on them for ever
        for (int i = 0; i < 3; i++) {
            int n = i;
            tx.run(c -> createOrder(c, "o-" + n, n));
        }
        java.util.concurrent.atomic.AtomicReference<OutboxRelay> relay = new java.util.concurrent.atomic.AtomicReference<>();
        relay.set(relayTo().batchSize(1).publisher(m -> {
            relay.get().close(); // another thread closing the relay while this row is being published
            return bus.publish(m);
        }).build());

        int published = org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(Duration.ofSeconds(30),
                () -> relay.get().relayPending());
        assertEquals(1, published, "the row in progress is finished, nothing after it");
        assertEquals(2, outbox.pendingCount());
    }

    @Test
    void closeWaitsForAPollInProgressSoTheRelayPublishesAndMarksNothingAfterItReturned() throws Exception {
        // OutboxRelay.close() returned while a poll of its own executor was publishing a row: the relay then still
        // published and marked rows after close() had returned (a bus or transport closed right after it saw them).
        closeWhileAPollPublishes(false);
    }

    @Test
    void closeOnAnInterruptedThreadWaitsForThePollInProgressAndKeepsTheInterrupt() throws Exception {
        // Called on an interrupted thread, close() saw the interrupt in its wait for the poll at once and returned
        // while the poll still published and marked rows, where the schedulers' and an in-memory subscription's close
        // wait all the same, bounded, and return with the caller's interrupt flag set (Scheduler.close()).
        assertTrue(closeWhileAPollPublishes(true), "close() returned with the caller's interrupt flag set");
    }

    /**
     * Closes the relay on another thread (interrupted first if {@code interrupted}) while its first poll publishes a
     * row, which it finishes only once close() waits for it or has returned; asserts that the row finished before
     * close() returned and nothing after it was relayed. Returns whether close() returned with the interrupt flag set.
     */
    private boolean closeWhileAPollPublishes(boolean interrupted) throws Exception {
        for (int i = 0; i < 3; i++) {
            int n = i;
            tx.run(c -> createOrder(c, "o-" + n, n));
        }
        java.util.concurrent.CountDownLatch publishing = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.atomic.AtomicBoolean closeReturned = new java.util.concurrent.atomic.AtomicBoolean();
        java.util.concurrent.atomic.AtomicBoolean interruptKept = new java.util.concurrent.atomic.AtomicBoolean();
        java.util.concurrent.atomic.AtomicReference<Thread> closer = new java.util.concurrent.atomic.AtomicReference<>();
        java.util.concurrent.atomic.AtomicBoolean publishedAfterClose = new java.util.concurrent.atomic.AtomicBoolean();
        java.util.concurrent.CountDownLatch published = new java.util.concurrent.CountDownLatch(1);
        OutboxRelay relay = OutboxRelay.builder(database.dataSource()).scheduler(scheduler).batchSize(1)
                .pollInterval(Duration.ofSeconds(5)).publisher(m -> {
                    publishing.countDown();
                    // Finish this row only once close() is waiting for it, or has returned without waiting.
                    org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(60)).until(() -> closeReturned.get()
                            || closer.get() != null && closer.get().getState() == Thread.State.TIMED_WAITING);
                    publishedAfterClose.compareAndSet(false, closeReturned.get());
                    published.countDown();
                    return bus.publish(m);
                }).build(); // the relay's own executor
        relay.start();
        assertTrue(publishing.await(30, java.util.concurrent.TimeUnit.SECONDS), "the first poll publishes");

        Thread closing = new Thread(() -> {
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
            relay.close();
            interruptKept.set(Thread.interrupted());
            closeReturned.set(true);
        }, "closer");
        closer.set(closing);
        closing.start();
        closing.join();
        assertTrue(published.await(60, java.util.concurrent.TimeUnit.SECONDS), "the row in progress was published");

        assertFalse(publishedAfterClose.get(), "the row in progress finished before close() returned");
        assertEquals(2, outbox.pendingCount(), "that row is marked sent, nothing after it");
        return interruptKept.get();
    }

    @Test
    void closeWaitsForAScheduledPollStuckOnACallerRunsExecutorOnceNotOnceForTheTaskAndAgainForItsLock()
            throws Exception {
        // On a caller-runs executor the scheduled task is the poll: close() waited Scheduler.CLOSE_WAIT for the task
        // (the scoped scheduler's close), then CLOSE_WAIT again for the poll's lock, 20 s for one stuck poll. Both
        // waits are the scheduler's closeWait(), here a short one: the first gives up soon, and the second must not
        // wait at all (it never parks the closer, whatever the wait), where before it waited as long again.
        java.util.concurrent.CountDownLatch stuck = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
        OutboxRelay relay = relayTo().scheduler(closingWithin(Duration.ofMillis(200))).publisher(m -> {
            stuck.countDown();
            try {
                release.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return CompletableFuture.failedFuture(new IllegalStateException("released after the test"));
        }).build();
        relay.start(); // the first poll finds nothing and schedules the next one
        tx.run(c -> createOrder(c, "o-1", 1));
        Thread polling = new Thread(() -> scheduler.advance(Duration.ofSeconds(5)), "scheduler");
        polling.start();
        assertTrue(stuck.await(30, java.util.concurrent.TimeUnit.SECONDS), "the scheduled poll publishes");
        try {
            Thread closing = new Thread(relay::close, "closer");
            closing.start();
            while (closing.isAlive()) {
                assertFalse(waitingIn(closing, "awaitPollInProgress"),
                        "close() waited again for the lock of the poll its scoped close had given up on");
                Thread.onSpinWait();
            }
        } finally {
            release.countDown();
            polling.join();
        }
        assertEquals(1, outbox.pendingCount(), "the row stays pending for the next relay");
    }

    @Test
    void aRelayPendingThatFindsTheTransportClosedStopsTheRelayWithoutWaitingForAPollBlockedOnItsLock()
            throws Exception {
        // A relayPending() whose transport was closed stops the relay with close(), which waited for the relay's
        // scheduled poll in progress: on a caller-runs executor that poll ran on the scheduler's thread and waited
        // for the lock relayPending() held, so each waited for the other until close() gave up after 10 s.
        OutboxRelay relay = relayTo().publisher(m -> awaitPollBlockedThenFail()).build();
        relay.start(); // the first poll finds nothing and schedules the next one
        tx.run(c -> createOrder(c, "o-1", 1));

        Thread caller = new Thread(relay::relayPending, "relay-pending");
        callerThread = caller;
        Thread polling = new Thread(() -> scheduler.advance(Duration.ofSeconds(5)), "scheduler");
        pollingThread = polling;
        caller.start();
        assertTrue(callerPublishing.await(30, java.util.concurrent.TimeUnit.SECONDS), "relayPending publishes");
        polling.start(); // the scheduled poll now waits for the relay's lock, which relayPending holds

        org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(60))
                .until(() -> !caller.isAlive() || waitingIn(caller, "close"));
        boolean closeWaited = waitingIn(caller, "close");
        caller.join();
        polling.join();

        assertFalse(closeWaited, "close() from relayPending waited for the poll that waits for relayPending");
        assertEquals(1, outbox.pendingCount(), "the row stays pending for the next relay");
    }

    private volatile Thread callerThread;
    private volatile Thread pollingThread;
    private final java.util.concurrent.CountDownLatch callerPublishing = new java.util.concurrent.CountDownLatch(1);

    /** On relayPending's thread: once the scheduled poll waits for the relay's lock, fails as a closed transport. */
    private CompletableFuture<Void> awaitPollBlockedThenFail() {
        if (Thread.currentThread() == callerThread) {
            callerPublishing.countDown();
            org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(60))
                    .until(() -> pollingThread != null && waitingIn(pollingThread, "poll"));
        }
        return CompletableFuture.failedFuture(new io.streamsaga.bus.TransportClosedException("orders", "closed"));
    }

    @Test
    void aRelayOnASchedulerWaitingLongerThanTheLongestDurationClosesAndOneWaitingANegativeOrNullTimeIsRefused() {
        // The relay took its close's deadline from its scheduler's closeWait() as the application's scheduler said it:
        // ChronoUnit.FOREVER made close() throw an ArithmeticException before it stopped polling, and a negative or
        // null wait was taken until then. Now read when the relay is built: refused there, or taken as the maximum.
        OutboxRelay relay = relayTo().scheduler(closingWithin(java.time.temporal.ChronoUnit.FOREVER.getDuration()))
                .eventBus(bus).build();
        relay.close(); // no poll in progress: returns at once

        for (Duration closeWait : new Duration[] {Duration.ofSeconds(-1), null}) {
            io.streamsaga.ConfigurationException e = assertThrows(io.streamsaga.ConfigurationException.class,
                    () -> relayTo().scheduler(closingWithin(closeWait)).eventBus(bus).build());
            assertTrue(e.getMessage().contains("closeWait() must be zero or positive, but was " + closeWait),
                    e.getMessage());
        }
    }

    /** The test's scheduler, but whose closes wait {@code closeWait} for work still running. */
    private Scheduler closingWithin(Duration closeWait) {
        return new Scheduler() {
            @Override
            public java.time.Clock clock() {
                return scheduler.clock();
            }

            @Override
            public Cancellable schedule(Duration delay, Runnable task) {
                return scheduler.schedule(delay, task);
            }

            @Override
            public void sleep(Duration delay) {
                scheduler.sleep(delay);
            }

            @Override
            public Duration closeWait() {
                return closeWait;
            }

            @Override
            public void close() {
                scheduler.close();
            }
        };
    }

    /**
     * Whether {@code thread} is waiting in a method of OutboxRelay or ScopedScheduler named {@code method}: parked or
     * waiting (its top frame) with that method on its stack, both read from one stack trace. Reading the thread's state
     * apart from its stack could see it waiting in one method and then running in another: the closer seen waiting in
     * its scoped close and, a moment later, passing through awaitPollInProgress, which at its deadline never waits.
     */
    private static boolean waitingIn(Thread thread, String method) {
        StackTraceElement[] stack = thread.getStackTrace();
        if (stack.length == 0 || !(stack[0].getMethodName().startsWith("park")
                || stack[0].getMethodName().startsWith("wait") || stack[0].getMethodName().startsWith("sleep"))) {
            return false;
        }
        for (StackTraceElement frame : stack) {
            if (frame.getMethodName().equals(method) && (frame.getClassName().equals(OutboxRelay.class.getName())
                    || frame.getClassName().endsWith(".ScopedScheduler"))) {
                return true;
            }
        }
        return false;
    }

    @Test
    void wakeUpRacingWithCloseIsANoOpInsteadOfARejectedExecution() throws Exception {
        // OutboxRelay.wakeUp(): a no-op once closed. A close() landing between its "closed?" check and handing the
        // poll to the relay's own executor (shut down by close) threw RejectedExecutionException at the caller.
        java.util.concurrent.atomic.AtomicReference<OutboxRelay> relay = new java.util.concurrent.atomic.AtomicReference<>();
        java.util.concurrent.CountDownLatch nextPollScheduled = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.atomic.AtomicBoolean closeOnCancel = new java.util.concurrent.atomic.AtomicBoolean();
        io.streamsaga.time.Scheduler closingOnCancel = new io.streamsaga.time.Scheduler() {
            @Override
            public java.time.Clock clock() {
                return scheduler.clock();
            }

            @Override
            public Cancellable schedule(Duration delay, Runnable task) {
                Cancellable scheduled = scheduler.schedule(delay, task);
                nextPollScheduled.countDown();
                return () -> {
                    scheduled.cancel();
                    if (closeOnCancel.compareAndSet(true, false)) {
                        relay.get().close(); // another thread closes right after wakeUp's check
                    }
                };
            }

            @Override
            public void sleep(Duration delay) {
                scheduler.sleep(delay);
            }

            @Override
            public void close() {
            }
        };
        relay.set(OutboxRelay.builder(database.dataSource()).eventBus(bus).scheduler(closingOnCancel)
                .pollInterval(Duration.ofSeconds(5)).build()); // the relay's own executor
        relay.get().start();
        assertTrue(nextPollScheduled.await(30, java.util.concurrent.TimeUnit.SECONDS), "the first poll ran");
        closeOnCancel.set(true);

        relay.get().wakeUp();
        relay.get().wakeUp(); // and after the close, as documented
    }

    @Test
    void aPollWhoseRescheduleTheSchedulerClosedBeforeTheRelayRefusesEndsWithoutLettingTheRefusalOut() {
        // A relay closed after the bus whose Scheduler.system() it polls on: the poll running on the relay's executor
        // at the bus's close had its reschedule refused, and the RejectedExecutionException went out of the poll to
        // the executor's thread (a stack trace on System.err, the thread replaced). Now one WARN line, once (not
        // asserted: this module's test logging turns io.streamsaga.jdbc.outbox off).
        java.util.concurrent.atomic.AtomicBoolean schedulerClosed = new java.util.concurrent.atomic.AtomicBoolean();
        io.streamsaga.time.Scheduler closing = new io.streamsaga.time.Scheduler() {
            @Override
            public java.time.Clock clock() {
                return scheduler.clock();
            }

            @Override
            public Cancellable schedule(Duration delay, Runnable task) {
                if (schedulerClosed.get()) { // as Scheduler.system() once closed
                    throw new java.util.concurrent.RejectedExecutionException("the scheduler is closed");
                }
                return scheduler.schedule(delay, task);
            }

            @Override
            public void sleep(Duration delay) {
                scheduler.sleep(delay);
            }

            @Override
            public void close() {
                schedulerClosed.set(true);
            }
        };
        List<Runnable> polls = new CopyOnWriteArrayList<>(); // the relay's executor: run here, one by one
        try (OutboxRelay relay = OutboxRelay.builder(database.dataSource()).eventBus(bus).scheduler(closing)
                .executor(polls::add).name("late").pollInterval(Duration.ofSeconds(5)).build()) {
            relay.start();
            closing.close(); // the bus closed its scheduler while the first poll was on its way
            assertDoesNotThrow(() -> polls.remove(0).run(), "the refused reschedule went out of the poll");
            relay.wakeUp();
            assertDoesNotThrow(() -> polls.remove(0).run(), "the refused reschedule went out of the poll");
        }
    }

    @Test
    void relayKeepsTheMessageIdSoConsumersCanDeduplicate() {
        List<Message> seen = new CopyOnWriteArrayList<>();
        bus.subscribe("audit", "order-created", Message.class, (m, ctx) -> seen.add(m));
        Message written = tx.inTransaction(c -> outbox.append(c, "order-created", "o-1", new OrderCreated("o-1", 5),
                Map.of("correlation-id", "corr-7")));

        relay().build().relayPending();
        transport.drainAll();

        assertEquals(1, seen.size());
        assertEquals(written.id(), seen.get(0).id());
        assertEquals("corr-7", seen.get(0).correlationId().orElseThrow());
        assertEquals("order-created", seen.get(0).type());
    }

    @Test
    void aRowWrittenByAnEarlierVersionWithANullHeaderValueIsRelayedWithoutThatHeader() {
        List<Message> seen = new CopyOnWriteArrayList<>();
        bus.subscribe("audit", "order-created", Message.class, (m, ctx) -> seen.add(m));
        Message written = tx.inTransaction(c -> outbox.append(c, "order-created", "o-1", new OrderCreated("o-1", 5)));
        // earlier versions took a null header value in a Message (its constructor, withHeader) and wrote it
        database.execute("UPDATE ss_outbox SET headers = '{\"correlation-id\":\"corr-7\",\"obsolete\":null}'");

        assertEquals(written.id(), outbox.rows(OutboxRow.Status.PENDING, 10).get(0).message().id());
        assertEquals(1, relay().build().relayPending());
        transport.drainAll();

        assertEquals(1, seen.size(), "the row is relayed, not stuck unreadable");
        assertEquals("corr-7", seen.get(0).correlationId().orElseThrow());
        assertFalse(seen.get(0).headers().containsKey("obsolete"), "a null value was no header");
        assertEquals(0, outbox.pendingCount());
    }

    @Test
    void aRowWrittenByAnEarlierVersionWithAHeaderNamedAfterTheIdTypeOrVersionIsRelayedUnderItsColumnsWithoutIt() {
        List<Message> seen = new CopyOnWriteArrayList<>();
        bus.subscribe("audit", "order-created", Message.class, (m, ctx) -> seen.add(m));
        Message written = tx.inTransaction(c -> outbox.append(c, "order-created", "o-1", new OrderCreated("o-1", 5)));
        // earlier versions took such headers (append's headers map, the idempotent producer idiom's message-id) and
        // wrote them; a Message now refuses them, which left such a row pending at an upgrade FAILED, never sent
        database.execute("UPDATE ss_outbox SET headers = '{\"correlation-id\":\"corr-7\",\"message-id\":\"by-header\","
                + "\"event-type\":\"other-type\",\"event-version\":\"9\"}'");

        assertEquals(1, relay().build().relayPending());
        transport.drainAll();

        assertEquals(1, seen.size(), "the row is relayed, not marked FAILED as unreadable");
        Message relayed = seen.get(0);
        assertEquals(written.id(), relayed.id(), "the id is the row's message_id, as it always was");
        assertEquals("order-created", relayed.type());
        assertEquals(1, relayed.version());
        assertEquals("corr-7", relayed.correlationId().orElseThrow());
        assertFalse(relayed.headers().containsKey("message-id") || relayed.headers().containsKey("event-type")
                || relayed.headers().containsKey("event-version"), "dropped, as Kafka dropped them: " + relayed.headers());
        assertEquals(0, outbox.failedCount());
    }

    @Test
    void rowsOfARelayThatCrashedBeforeMarkingThemSentArePublishedAgain() {
        List<OrderCreated> seen = collect("billing");
        for (int i = 1; i <= 5; i++) {
            int n = i;
            tx.run(c -> createOrder(c, "o-" + n, n));
        }
        AtomicInteger calls = new AtomicInteger();
        OutboxRelay crashing = relayTo().publisher(m -> {
            if (calls.incrementAndGet() == 4) {
                throw new SimulatedCrash();
            }
            return bus.publish(m);
        }).build();

        assertThrows(SimulatedCrash.class, crashing::relayPending);
        transport.drainAll();
        assertEquals(3, seen.size(), "three were published before the crash");
        assertEquals(5, outbox.pendingCount(), "none was marked sent: the batch's transaction never committed");

        assertEquals(5, relay().build().relayPending());
        transport.drainAll();
        assertEquals(0, outbox.pendingCount());
        assertEquals(List.of(1L, 2L, 3L, 1L, 2L, 3L, 4L, 5L), seen.stream().map(OrderCreated::amount).toList(),
                "at least once: the first three twice, in order");
    }

    @Test
    void brokerOutageIsRetriedWithBackoffOnTheSchedulerUntilTheBrokerIsBack() {
        List<OrderCreated> seen = collect("billing");
        tx.run(c -> createOrder(c, "o-1", 1));
        tx.run(c -> createOrder(c, "o-2", 2));
        AtomicInteger failuresLeft = new AtomicInteger(3);
        AtomicInteger attempts = new AtomicInteger();
        try (OutboxRelay relay = relayTo().publisher(m -> {
            attempts.incrementAndGet();
            if (failuresLeft.getAndDecrement() > 0) {
                return CompletableFuture.failedFuture(new PublishException(m.topic(), "broker unreachable", null, true));
            }
            return bus.publish(m);
        }).build()) {
            relay.start();                       // attempt 1 fails; next after 1 s
            assertEquals(1, attempts.get());
            assertEquals(1, relay.consecutiveFailures());
            scheduler.advance(Duration.ofMillis(999));
            assertEquals(1, attempts.get(), "no retry before the backoff elapsed");
            scheduler.advance(Duration.ofMillis(1));   // attempt 2 fails; next after 2 s
            assertEquals(2, attempts.get());
            scheduler.advance(Duration.ofSeconds(2));  // attempt 3 fails; next after 4 s
            assertEquals(3, attempts.get());
            assertEquals(2, outbox.pendingCount());
            scheduler.advance(Duration.ofSeconds(4));  // broker back: both published
            transport.drainAll();

            assertEquals(0, outbox.pendingCount());
            assertEquals(0, relay.consecutiveFailures());
            assertEquals(List.of(1L, 2L), seen.stream().map(OrderCreated::amount).toList());
            assertEquals(3, database.queryLong("SELECT MAX(attempts) FROM ss_outbox"));
            assertEquals(3, metrics.count(OutboxRelay.FAILURES_METRIC + "{kind=retriable, relay=default}"));
            assertEquals(2, metrics.count(OutboxRelay.PUBLISHED_METRIC + "{relay=default}"));
        }
    }

    @Test
    void startedRelayPublishesNewRowsOnItsPollInterval() {
        List<OrderCreated> seen = collect("billing");
        try (OutboxRelay relay = relay().build()) {
            relay.start();
            tx.run(c -> createOrder(c, "o-1", 1));
            transport.drainAll();
            assertTrue(seen.isEmpty(), "not before the next poll");
            scheduler.advance(Duration.ofSeconds(5));
            transport.drainAll();
            assertEquals(1, seen.size());
        }
    }

    /** Orders o-1 (key poison, which the relay's transport rejects for good: record too large) and o-2. */
    private OutboxRelay aPoisonOrderAndAnotherWithARelayRejectingThePoison() {
        tx.run(c -> createOrder(c, "o-1", "poison", 1));
        tx.run(c -> createOrder(c, "o-2", 2));
        return relayTo().publisher(m -> "poison".equals(m.key())
                ? CompletableFuture.failedFuture(new PublishException(m.topic(), "record too large", null, false))
                : bus.publish(m)).build();
    }

    @Test
    void rowRejectedForGoodIsMarkedFailedKeptAndTheRelayGoesOn() {
        List<OrderCreated> seen = collect("billing");
        OutboxRelay relay = aPoisonOrderAndAnotherWithARelayRejectingThePoison();

        assertEquals(1, relay.relayPending());
        transport.drainAll();

        assertEquals(List.of(2L), seen.stream().map(OrderCreated::amount).toList());
        assertEquals(1, outbox.failedCount());
        OutboxRow failed = outbox.rows(OutboxRow.Status.FAILED, 10).get(0);
        assertTrue(failed.message().payload() instanceof byte[]);
        assertTrue(failed.lastError().contains("record too large"), failed.lastError());
        assertEquals(1, outbox.retryFailed());
        assertEquals(1, outbox.pendingCount());
    }

    @Test
    void theFailedRowsAreListedWithoutTheRowsNoRelayCouldReadWhichAreListedApartWithTheirReason() {
        // A row the relay could not read as a message is marked FAILED (a poison row); rows(FAILED, n) then failed for
        // every row, as its read of that one threw, so an operator could not list what failed.
        database.execute("INSERT INTO ss_outbox (message_id, topic, message_key, event_type, event_version, payload,"
                + " headers, created_at, status, attempts) VALUES ('by-a-trigger', 'order-created', 'k', 'order-created',"
                + " 1, NULL, 'not json', CURRENT_TIMESTAMP, 'PENDING', 0)");
        OutboxRelay relay = aPoisonOrderAndAnotherWithARelayRejectingThePoison();
        assertEquals(1, relay.relayPending());
        assertEquals(2, outbox.failedCount());

        List<OutboxRow> failed = outbox.rows(OutboxRow.Status.FAILED, 1);
        assertEquals(1, failed.size(), "the oldest readable row, the unreadable one before it left out");
        assertEquals("poison", failed.get(0).message().key());
        assertTrue(failed.get(0).lastError().contains("record too large"), failed.get(0).lastError());
        assertEquals(List.of(failed.get(0).sequence()),
                outbox.rows(OutboxRow.Status.FAILED, 10).stream().map(OutboxRow::sequence).toList());

        List<UnreadableOutboxRow> unreadable = outbox.unreadableRows(OutboxRow.Status.FAILED, 10);
        assertEquals(1, unreadable.size());
        UnreadableOutboxRow poison = unreadable.get(0);
        assertTrue(poison.sequence() < failed.get(0).sequence(), "the oldest row");
        assertEquals("by-a-trigger", poison.messageId());
        assertEquals("order-created", poison.topic());
        assertEquals(OutboxRow.Status.FAILED, poison.status());
        assertEquals(1, poison.attempts());
        assertTrue(poison.reason().startsWith("unreadable headers in outbox row " + poison.sequence()), poison.reason());
        assertTrue(poison.lastError().contains(poison.reason()), poison.lastError());
        assertEquals(List.of(), outbox.unreadableRows(OutboxRow.Status.PENDING, 10));
        assertEquals(List.of(), outbox.rows(OutboxRow.Status.PENDING, 10));
    }

    /** A row of {@code status} that holds no message this library can build (its headers are no JSON). */
    private void insertPoisonRow(String messageId, OutboxRow.Status status) {
        database.execute("INSERT INTO ss_outbox (message_id, topic, message_key, event_type, event_version, payload,"
                + " headers, created_at, status, attempts) VALUES ('" + messageId + "', 'order-created', 'k',"
                + " 'order-created', 1, NULL, 'not json', CURRENT_TIMESTAMP, '" + status + "', 1)");
    }

    @Test
    void theFailedRowsArePagedThroughPastTheFirstPageAndTheRowsNoRelayCouldReadLikewise() {
        // rows(status, n) and unreadableRows(status, n) listed the first n rows only: an operator with more FAILED rows
        // than that could not see the rest.
        for (int i = 0; i < 5; i++) {
            int n = i;
            tx.run(c -> createOrder(c, "o-" + n, n));
            if (i < 3) {
                insertPoisonRow("poison-" + i, OutboxRow.Status.PENDING);
            }
        }
        database.execute("UPDATE ss_outbox SET status = 'FAILED'");

        List<List<Long>> pages = new ArrayList<>();
        List<OutboxRow> page = outbox.rows(OutboxRow.Status.FAILED, 2);
        while (true) {
            pages.add(page.stream().map(OutboxRow::sequence).toList());
            if (page.size() < 2) {
                break;
            }
            page = outbox.rows(OutboxRow.Status.FAILED, page.get(page.size() - 1).sequence(), 2);
        }
        List<Long> readable = outbox.rows(OutboxRow.Status.FAILED, 100).stream().map(OutboxRow::sequence).toList();
        assertEquals(5, readable.size());
        assertEquals(List.of(readable.subList(0, 2), readable.subList(2, 4), readable.subList(4, 5)), pages,
                "each row once, in order, the poison rows between them left out");

        List<UnreadableOutboxRow> first = outbox.unreadableRows(OutboxRow.Status.FAILED, 2);
        assertEquals(List.of("poison-0", "poison-1"), first.stream().map(UnreadableOutboxRow::messageId).toList());
        List<UnreadableOutboxRow> second = outbox.unreadableRows(OutboxRow.Status.FAILED, first.get(1).sequence(), 2);
        assertEquals(List.of("poison-2"), second.stream().map(UnreadableOutboxRow::messageId).toList());
        assertEquals(List.of(), outbox.unreadableRows(OutboxRow.Status.FAILED, second.get(0).sequence(), 2));
        assertEquals(List.of(), outbox.rows(OutboxRow.Status.FAILED, readable.get(4), 2), "nothing after the last row");
    }

    /** {@code target}'s connections, counting each statement prepared on them into {@code prepared}. */
    private static javax.sql.DataSource countingStatements(javax.sql.DataSource target, AtomicInteger prepared) {
        return forwarding(javax.sql.DataSource.class, target, result -> result instanceof Connection connection
                ? forwarding(Connection.class, connection, r -> {
                    if (r instanceof PreparedStatement) {
                        prepared.incrementAndGet();
                    }
                    return r;
                })
                : result);
    }

    /** A proxy of {@code type} calling {@code target} and passing each result through {@code results}. */
    private static <T> T forwarding(Class<T> type, T target, java.util.function.UnaryOperator<Object> results) {
        return type.cast(java.lang.reflect.Proxy.newProxyInstance(type.getClassLoader(), new Class<?>[]{type},
                (proxy, method, args) -> {
                    try {
                        return results.apply(method.invoke(target, args));
                    } catch (java.lang.reflect.InvocationTargetException e) {
                        throw e.getCause();
                    }
                }));
    }

    @Test
    void aListingShortOfPoisonRowsReadsOnAHundredRowsAtATimeNotAQueryPerPoisonRow() {
        // A listing of n rows read the rows after its first page n at a time: rows(FAILED, 1) behind 50 poison rows
        // cost 51 queries.
        for (int i = 0; i < 50; i++) {
            insertPoisonRow("poison-" + i, OutboxRow.Status.FAILED);
        }
        tx.run(c -> createOrder(c, "o-1", 1));
        database.execute("UPDATE ss_outbox SET status = 'FAILED'");
        AtomicInteger prepared = new AtomicInteger();
        JdbcOutbox counted = JdbcOutbox.builder(countingStatements(database.dataSource(), prepared)).eventBus(bus).build();
        prepared.set(0);

        assertEquals(1, counted.rows(OutboxRow.Status.FAILED, 1).size());
        assertEquals(2, prepared.get(), "its first row, then the next hundred");
    }

    /** What slf4j-simple (System.err, WARN and above here) writes while {@code body} runs. */
    private static String stderrOf(Runnable body) {
        java.io.PrintStream original = System.err;
        java.io.ByteArrayOutputStream captured = new java.io.ByteArrayOutputStream();
        System.setErr(new java.io.PrintStream(captured, true, java.nio.charset.StandardCharsets.UTF_8));
        try {
            body.run();
        } finally {
            System.setErr(original);
        }
        return captured.toString(java.nio.charset.StandardCharsets.UTF_8);
    }

    @Test
    void aRowNoRelayCouldReadIsWarnedOfByTheFirstListingNotByEveryListingAgain() {
        // Each listing of rows(status, n) logged a WARN for each poison row it left out: a listing read again and again,
        // a dashboard's, logged the same rows each time.
        insertPoisonRow("by-a-trigger", OutboxRow.Status.FAILED);
        tx.run(c -> createOrder(c, "o-1", 1));
        database.execute("UPDATE ss_outbox SET status = 'FAILED'");
        long poison = outbox.unreadableRows(OutboxRow.Status.FAILED, 10).get(0).sequence();

        String logged = stderrOf(() -> {
            for (int i = 0; i < 3; i++) {
                assertEquals(1, outbox.rows(OutboxRow.Status.FAILED, 10).size());
            }
        });
        String warning = "WARN io.streamsaga.jdbc.outbox.JdbcOutbox - outbox row " + poison + " (message id 'by-a-trigger'";
        assertEquals(1, logged.split(java.util.regex.Pattern.quote(warning), -1).length - 1, logged);
    }

    @Test
    void aTransportClosedBeforeTheRelayLeavesTheRowsPendingAndStopsTheRelay() {
        // A closed transport is not the rows' fault: its "transport is closed" was a non-retriable rejection, so
        // a relay still polling marked the whole backlog FAILED, to wait for retryFailed() instead of the next relay.
        for (int i = 0; i < 3; i++) {
            int n = i;
            tx.run(c -> createOrder(c, "o-" + n, n));
        }
        transport.close(); // shut down in the wrong order
        AtomicInteger attempts = new AtomicInteger();
        OutboxRelay.Builder counting = relayTo().publisher(m -> {
            attempts.incrementAndGet();
            return bus.publish(m);
        });

        assertEquals(0, counting.build().relayPending());
        assertEquals(1, attempts.get(), "the relay stops at the first row");
        try (OutboxRelay started = counting.build()) {
            started.start();
            assertEquals(2, attempts.get());
            scheduler.advance(Duration.ofMinutes(1));
            assertEquals(2, attempts.get(), "a started relay stops polling");
        }
        assertEquals(3, outbox.pendingCount(), "every row stays pending for the next relay");
        assertEquals(0, outbox.failedCount());
        assertEquals(0, database.queryLong("SELECT MAX(attempts) FROM ss_outbox"));
    }

    @Test
    void sentRowsArePurgedInBoundedBatches() {
        for (int i = 0; i < 5; i++) {
            int n = i;
            tx.run(c -> createOrder(c, "o-" + n, n));
        }
        relay().build().relayPending();
        scheduler.advance(Duration.ofMinutes(1));

        assertEquals(2, outbox.purgeSent(scheduler.now(), 2));
        assertEquals(2, outbox.purgeSent(scheduler.now(), 2));
        assertEquals(1, outbox.purgeSent(scheduler.now(), 2));
        assertEquals(0, outbox.purgeSent(scheduler.now(), 2));
        assertEquals(0, database.queryLong("SELECT COUNT(*) FROM ss_outbox"));
    }

    @Test
    void inboxAppliesEachMessagesEffectOncePerGroupDespiteRedelivery() {
        JdbcInbox inbox = JdbcInbox.create(database.dataSource(), scheduler.clock());
        for (String group : List.of("billing", "shipping")) {
            bus.subscribe(group, "order-created", OrderCreated.class, inbox.handler((event, ctx, c) -> {
                try (PreparedStatement ps = c.prepareStatement("INSERT INTO invoices (order_id, consumer) VALUES (?, ?)")) {
                    ps.setString(1, event.orderId());
                    ps.setString(2, ctx.group());
                    ps.executeUpdate();
                }
            }));
        }
        Message message = tx.inTransaction(c -> outbox.append(c, "order-created", "o-1", new OrderCreated("o-1", 9)));
        OutboxRelay relay = relay().build();
        relay.relayPending();
        // the relay crashed after publishing, before marking: the same message goes out again
        database.execute("UPDATE ss_outbox SET status = 'PENDING'");
        relay.relayPending();
        transport.drainAll();

        assertEquals(1, database.queryLong("SELECT COUNT(*) FROM invoices WHERE consumer = 'billing'"));
        assertEquals(1, database.queryLong("SELECT COUNT(*) FROM invoices WHERE consumer = 'shipping'"));
        assertTrue(inbox.isProcessed("billing", message.id()));
        assertEquals(2, inbox.size());
    }

    @Test
    void anEventAppendedToTheOutboxInsideAHandlerCarriesTheHandledMessagesCorrelationAsAPublishWould() {
        // docs/durability.md: a handler's outgoing message is written "to the outbox on the same connection" instead
        // of published on the bus; published from the handler it inherits the correlation, saga id and traceparent
        // of the message handled and takes its id as causation id (docs/architecture.md), and so must it here.
        JdbcOutbox handlersOutbox = JdbcOutbox.builder(database.dataSource()).eventBus(bus).clock(scheduler.clock()).build();
        JdbcInbox inbox = JdbcInbox.create(database.dataSource(), scheduler.clock());
        bus.subscribe("shipping", "order-created", OrderCreated.class, inbox.handler((event, ctx, c) ->
                handlersOutbox.append(c, "order-shipped", event.orderId(), new OrderShipped(event.orderId(), scheduler.now()))));
        bus.subscribe("shipping", "order-shipped", OrderShipped.class, inbox.handler((event, ctx, c) ->
                handlersOutbox.append(c, "order-shipped-audit", event.orderId(), new OrderShipped(event.orderId(), scheduler.now()),
                        Map.of("correlation-id", "set-by-the-application"))));
        List<Message> shipped = new CopyOnWriteArrayList<>();
        bus.subscribe("audit", "order-shipped*", Message.class, (m, ctx) -> shipped.add(m));
        Message order = tx.inTransaction(c -> outbox.append(c, "order-created", "o-1", new OrderCreated("o-1", 5),
                Map.of("correlation-id", "corr-7", "saga-id", "saga-3", "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")));

        OutboxRelay relay = relay().build();
        relay.relayPending();
        transport.drainAll();
        relay.relayPending();
        transport.drainAll();
        relay.relayPending();
        transport.drainAll();

        assertEquals(List.of("order-shipped", "order-shipped-audit"), shipped.stream().map(Message::topic).toList());
        Message first = shipped.get(0);
        assertEquals("corr-7", first.correlationId().orElseThrow());
        assertEquals(order.id(), first.causationId().orElseThrow());
        assertEquals("saga-3", first.sagaId().orElseThrow());
        assertEquals(order.header("traceparent"), first.header("traceparent"));
        Message second = shipped.get(1);
        assertEquals("set-by-the-application", second.correlationId().orElseThrow(), "headers the application sets win");
        assertEquals(first.id(), second.causationId().orElseThrow());
    }

    @Test
    void anOutboxGivenABusAndAnotherCodecIsRefusedAtBuildWhicheverWasSetFirst() {
        // JdbcOutbox.Builder.eventBus(bus) documents that the outbox takes the bus's codec; after codec(x) it kept x
        // silently (events written with type ids and an encoding the bus's consumers may not know), while the other
        // order took x too. Either order of a conflicting pair is now refused; the bus's own codec is no conflict.
        io.streamsaga.codec.EventCodec other = new io.streamsaga.codec.JsonEventCodec(
                TypeRegistry.builder().register("order-created", 2, OrderCreated.class).build());
        io.streamsaga.ConfigurationException codecFirst = assertThrows(io.streamsaga.ConfigurationException.class,
                () -> JdbcOutbox.builder(database.dataSource()).codec(other).eventBus(bus).build());
        assertTrue(codecFirst.getMessage().contains("eventBus(bus)"), codecFirst.getMessage());
        assertThrows(io.streamsaga.ConfigurationException.class,
                () -> JdbcOutbox.builder(database.dataSource()).eventBus(bus).codec(other).build());

        JdbcOutbox same = JdbcOutbox.builder(database.dataSource()).codec(bus.codec()).eventBus(bus).build();
        Message written = tx.inTransaction(c -> same.append(c, "order-created", "o-1", new OrderCreated("o-1", 1)));
        assertEquals(1, written.version(), "the bus's registration of order-created");
    }

    @Test
    void aBuiltMessageAppendedInsideAHandlerInheritsTheHandledMessagesCorrelationAndOneAppendedOutsideNone() {
        // append(connection, Message) added nothing, unlike the event form and the bus's publish(Message), which
        // both add what a message caused by the handled one inherits when it is missing; headers already set win.
        JdbcOutbox handlersOutbox = JdbcOutbox.builder(database.dataSource()).eventBus(bus).clock(scheduler.clock()).build();
        bus.subscribe("shipping", "order-created", OrderCreated.class, (event, ctx) -> tx.run(c -> {
            handlersOutbox.append(c, Message.builder("order-shipped").id("shipped-" + event.orderId())
                    .key(event.orderId()).type("order-shipped").payload(new OrderShipped(event.orderId(), scheduler.now()))
                    .build());
            handlersOutbox.append(c, Message.builder("order-shipped").id("audited-" + event.orderId())
                    .key(event.orderId()).type("order-shipped").payload(new OrderShipped(event.orderId(), scheduler.now()))
                    .header("correlation-id", "set-by-the-application").build());
        }));
        Message order = tx.inTransaction(c -> outbox.append(c, "order-created", "o-1", new OrderCreated("o-1", 5),
                Map.of("correlation-id", "corr-7", "saga-id", "saga-3")));
        relay().build().relayPending();
        transport.drainAll();
        tx.run(c -> handlersOutbox.append(c, Message.builder("order-shipped").id("outside").type("order-shipped")
                .payload(new OrderShipped("o-2", scheduler.now())).build()));

        Map<String, Map<String, String>> headers = new java.util.HashMap<>();
        outbox.rows(OutboxRow.Status.PENDING, 10).forEach(row -> headers.put(row.message().id(), row.message().headers()));
        assertEquals(Map.of("correlation-id", "corr-7", "causation-id", order.id(), "saga-id", "saga-3"),
                headers.get("shipped-o-1"));
        assertEquals(Map.of("correlation-id", "set-by-the-application", "causation-id", order.id(), "saga-id", "saga-3"),
                headers.get("audited-o-1"), "headers set on the message win");
        assertEquals(Map.of(), headers.get("outside"), "no message is handled: nothing to inherit");
    }

    @Test
    void aRelayGivenTwoPlacesToPublishToIsRefusedAtBuildAndTheBusSchedulerIsTakenWhateverTheOrder() {
        // eventBus, transport and publisher silently replaced each other (the last one won), and eventBus(bus) left
        // its scheduler and metrics behind when another one replaced it. Two of them are now refused in either order.
        OutboxRelay.MessagePublisher custom = transport::send;
        List<Runnable> conflicting = List.of(
                () -> OutboxRelay.builder(database.dataSource()).eventBus(bus).transport(transport).build(),
                () -> OutboxRelay.builder(database.dataSource()).transport(transport).eventBus(bus).build(),
                () -> OutboxRelay.builder(database.dataSource()).eventBus(bus).publisher(custom).build(),
                () -> OutboxRelay.builder(database.dataSource()).scheduler(scheduler).publisher(custom)
                        .transport(transport).build());
        for (Runnable build : conflicting) {
            io.streamsaga.ConfigurationException refused = assertThrows(io.streamsaga.ConfigurationException.class,
                    build::run);
            assertTrue(refused.getMessage().contains(" and "), refused.getMessage());
        }

        // The last of two buses wins with its scheduler, not the first one's.
        VirtualScheduler otherTime = new VirtualScheduler();
        int busTasks = scheduler.pendingTasks();
        try (EventBus other = EventBus.builder(transport).types(TypeRegistry.builder().build()).scheduler(otherTime).build();
             OutboxRelay relay = OutboxRelay.builder(database.dataSource()).eventBus(other).eventBus(bus)
                     .executor(Runnable::run).build()) {
            relay.start();
            assertEquals(0, otherTime.pendingTasks(), "the replaced bus's scheduler");
            assertEquals(busTasks + 1, scheduler.pendingTasks(), "the next poll, on the bus's scheduler");
        }
        // An explicit scheduler wins over the bus's whether given before or after it.
        for (boolean schedulerFirst : new boolean[] {true, false}) {
            VirtualScheduler explicit = new VirtualScheduler();
            OutboxRelay.Builder builder = OutboxRelay.builder(database.dataSource()).executor(Runnable::run);
            builder = schedulerFirst ? builder.scheduler(explicit).eventBus(bus) : builder.eventBus(bus).scheduler(explicit);
            int before = scheduler.pendingTasks();
            try (OutboxRelay relay = builder.build()) {
                relay.start();
                assertEquals(1, explicit.pendingTasks(), "schedulerFirst=" + schedulerFirst);
                assertEquals(before, scheduler.pendingTasks(), "schedulerFirst=" + schedulerFirst);
            }
        }
    }

    @Test
    void aRelayWithoutAPlaceToPublishToOrWithASettingOutOfRangeIsRefusedAtBuildBeforeAnySql() {
        // OutboxRelay.Builder.build() ran the schema-version query before it found that no eventBus, transport or
        // publisher was set (or a setting out of range): now every such refusal comes first, with no connection taken.
        javax.sql.DataSource untouchable = (javax.sql.DataSource) java.lang.reflect.Proxy.newProxyInstance(
                getClass().getClassLoader(), new Class<?>[] {javax.sql.DataSource.class}, (proxy, method, args) -> {
                    throw new AssertionError("the DataSource was used: " + method.getName());
                });
        io.streamsaga.ConfigurationException none = assertThrows(io.streamsaga.ConfigurationException.class,
                () -> OutboxRelay.builder(untouchable).scheduler(scheduler).build());
        assertTrue(none.getMessage().contains("eventBus, transport or publisher"), none.getMessage());
        io.streamsaga.ConfigurationException noneNorScheduler = assertThrows(io.streamsaga.ConfigurationException.class,
                () -> OutboxRelay.builder(untouchable).build());
        assertTrue(noneNorScheduler.getMessage().contains("eventBus, transport or publisher"), noneNorScheduler.getMessage());
        io.streamsaga.ConfigurationException batch = assertThrows(io.streamsaga.ConfigurationException.class,
                () -> OutboxRelay.builder(untouchable).eventBus(bus).batchSize(0).build());
        assertTrue(batch.getMessage().contains("batchSize"), batch.getMessage());
    }

    @Test
    void aRelayBackoffThatWouldRetryAtOnceIsRefusedAtBuildAsAPollIntervalUnderAMillisecondIs() {
        // backoff(...) took a RetryPolicy with no initial backoff: every delay was 0, taken as 1 ms, so in a broker
        // outage the relay published, recorded the failure on the row and logged a warning a thousand times a second.
        io.streamsaga.ConfigurationException e = assertThrows(io.streamsaga.ConfigurationException.class,
                () -> relay().backoff(RetryPolicy.builder().initialBackoff(Duration.ZERO).build()).build());
        assertTrue(e.getMessage().contains("backoff"), e.getMessage());
        relay().backoff(RetryPolicy.builder().initialBackoff(Duration.ofMillis(1)).build()).build();
    }

    @Test
    void handlerFailureRollsBackItsEffectAndTheInboxRowSoTheRetryDoesTheWork() {
        JdbcInbox inbox = JdbcInbox.create(database.dataSource(), scheduler.clock());
        AtomicInteger calls = new AtomicInteger();
        bus.subscribe("billing", "order-created", OrderCreated.class,
                SubscriptionOptions.defaults().withRetryPolicy(RetryPolicy.builder().maxAttempts(3).jitter(0).build()),
                inbox.handler((event, ctx, c) -> {
                    try (PreparedStatement ps = c.prepareStatement("INSERT INTO invoices (order_id, consumer) VALUES (?, 'billing')")) {
                        ps.setString(1, event.orderId());
                        ps.executeUpdate();
                    }
                    if (calls.incrementAndGet() == 1) {
                        throw new IllegalStateException("payment service timed out after the insert");
                    }
                }));
        tx.run(c -> createOrder(c, "o-1", 1));
        relay().build().relayPending();
        transport.drainAll();

        assertEquals(2, calls.get());
        assertEquals(1, database.queryLong("SELECT COUNT(*) FROM invoices"));
        assertEquals(1, inbox.size());
    }

    @Test
    void inboxNeverTakesADifferentMessageWithALongIdForADuplicate() {
        // JdbcInbox: "the effect happens once per message id and consumer group". Both databases cut a value
        // cast to VARCHAR(n) to its first n characters, so two long ids sharing them were one row and the
        // second message's effect was skipped as a duplicate; an id that does not fit (500) is refused instead.
        JdbcInbox inbox = JdbcInbox.create(database.dataSource(), scheduler.clock());
        String longest = "x".repeat(500);
        boolean first = tx.inTransaction(c -> inbox.markProcessed(c, "g", longest));
        boolean again = tx.inTransaction(c -> inbox.markProcessed(c, "g", longest));
        assertTrue(first);
        assertFalse(again);
        assertThrows(io.streamsaga.ConfigurationException.class,
                () -> tx.inTransaction(c -> inbox.markProcessed(c, "g", longest + "-2")));
        assertThrows(io.streamsaga.ConfigurationException.class,
                () -> tx.inTransaction(c -> inbox.markProcessed(c, "g".repeat(256), "m-1")));
        assertEquals(1, inbox.size());
    }

    @Test
    void aMessageWhoseIdTopicKeyOrTypeDoesNotFitItsColumnIsRefusedBeforeAnySqlAndTheTransactionGoesOn() {
        // JdbcOutbox.append: a message id over the 500 characters of its column failed in the INSERT (SQL state
        // 22001), a JdbcException that also aborted the caller's transaction on PostgreSQL. It is a value that can
        // never fit: a ConfigurationException naming the limit, thrown before any SQL, so the transaction goes on.
        String longest = "m".repeat(500);
        List<String> refusals = new ArrayList<>();
        tx.run(c -> {
            outbox.append(c, order(longest, "order-created", "k", "order-created"));
            for (Message tooLong : List.of(order(longest + "-2", "order-created", "k", "order-created"),
                    order("m-2", "t".repeat(256), "k", "order-created"),
                    order("m-3", "order-created", "k".repeat(1001), "order-created"),
                    encodedOrder("m-4", "order-created", "k", "e".repeat(256)))) {
                refusals.add(assertThrows(io.streamsaga.ConfigurationException.class, () -> outbox.append(c, tooLong))
                        .getMessage().replaceAll("'[^']*'", "'...'"));
            }
            outbox.append(c, order("m-5", "order-created", "k".repeat(1000), "order-created"));
        });
        assertEquals(List.of(
                "message id must be at most 500 characters for the outbox, but was '...' (502 characters)",
                // a topic is refused for Kafka's limit, below the column's, as every publish refuses it
                "topic name must be at most 245 characters, so that its dead-letter topic (the name and .DLT) is at most"
                        + " the 249 Kafka takes, but was '...' (256 characters)",
                "message key must be at most 1000 characters for the outbox, but was '...' (1001 characters)",
                "event type must be at most 255 characters for the outbox, but was '...' (256 characters)"), refusals);
        assertEquals(2, outbox.pendingCount());
    }

    @Test
    void aRefusalQuotesABoundedPrefixOfAnOverLongValueAndItsLengthNotTheWholeValue() {
        // The refusals quoted the whole value: a 1 MB message id, key or group went whole into the exception's
        // message, and so into logs and a dead letter's headers. They quote its first 64 characters and its length.
        String huge = "x".repeat(1_000_000);
        JdbcInbox inbox = JdbcInbox.create(database.dataSource(), scheduler.clock());
        List<String> refusals = new ArrayList<>();
        tx.run(c -> {
            refusals.add(assertThrows(io.streamsaga.ConfigurationException.class,
                    () -> outbox.append(c, order(huge, "order-created", "k", "order-created"))).getMessage());
            refusals.add(assertThrows(io.streamsaga.ConfigurationException.class,
                    () -> outbox.append(c, "order-created", huge, new OrderCreated("o-1", 1))).getMessage());
            refusals.add(assertThrows(io.streamsaga.ConfigurationException.class,
                    () -> inbox.markProcessed(c, huge, "m-1")).getMessage());
            refusals.add(assertThrows(io.streamsaga.ConfigurationException.class,
                    () -> inbox.markProcessed(c, " ".repeat(1_000_000), "m-1")).getMessage());
            refusals.add(assertThrows(io.streamsaga.ConfigurationException.class,
                    () -> relay().name(huge).build()).getMessage());
        });
        assertEquals(List.of(
                "message id must be at most 500 characters for the outbox, but was '" + "x".repeat(64) + "...' (1000000 characters)",
                "message key must be at most 1000 characters for the outbox, but was '" + "x".repeat(64) + "...' (1000000 characters)",
                "group must be at most 255 characters for the inbox, but was '" + "x".repeat(64) + "...' (1000000 characters)",
                "group must not be blank, but was '" + " ".repeat(64) + "...' (1000000 characters)",
                "relay name must be 1 to 100 characters, but was '" + "x".repeat(64) + "...' (1000000 characters)"), refusals);
    }

    @Test
    void aRelayNameHoldingANulIsRefusedAtBuildAsItsJavadocSays() {
        io.streamsaga.ConfigurationException refused = assertThrows(io.streamsaga.ConfigurationException.class,
                () -> relay().name("rel\0ay").build());
        assertTrue(refused.getMessage().contains("relay name"), refused.getMessage());
    }

    @Test
    void aNullHeaderValueGivenToAppendIsRefusedBeforeAnySqlInsideAHandlerOrNotAndTheTransactionGoesOn() {
        // JdbcOutbox.append(..., headers): a null value once dropped an inherited header (the correlation id); a Message
        // now refuses null values, so append refuses it too, with the typed error, before any SQL.
        Map<String, String> withNull = new java.util.HashMap<>();
        withNull.put("correlation-id", null);
        JdbcOutbox handlersOutbox = JdbcOutbox.builder(database.dataSource()).eventBus(bus).clock(scheduler.clock()).build();
        List<String> refusals = new CopyOnWriteArrayList<>();
        JdbcInbox inbox = JdbcInbox.create(database.dataSource(), scheduler.clock());
        bus.subscribe("shipping", "order-created", OrderCreated.class, inbox.handler((event, ctx, c) -> {
            refusals.add(assertThrows(io.streamsaga.ConfigurationException.class, () -> handlersOutbox.append(c,
                    "order-shipped", event.orderId(), new OrderShipped(event.orderId(), scheduler.now()), withNull))
                    .getMessage());
            handlersOutbox.append(c, "order-shipped", event.orderId(), new OrderShipped(event.orderId(), scheduler.now()));
        }));
        tx.run(c -> {
            refusals.add(assertThrows(io.streamsaga.ConfigurationException.class,
                    () -> outbox.append(c, "order-created", "o-1", new OrderCreated("o-1", 1), withNull)).getMessage());
            createOrder(c, "o-1", 1);
        });
        relay().build().relayPending();
        transport.drainAll();

        assertEquals(2, refusals.size(), "outside and inside the handler");
        refusals.forEach(message -> assertTrue(message.contains("correlation-id"), message));
        assertEquals(1, database.queryLong("SELECT COUNT(*) FROM orders"), "the caller's transaction went on");
        assertEquals(1, inbox.size(), "the handler's transaction went on");
        assertEquals(1, database.queryLong("SELECT COUNT(*) FROM ss_outbox WHERE topic = 'order-shipped'"));
    }

    @Test
    void aNullHeadersMapGivenToAppendIsRefusedBeforeAnySqlInsideAHandlerOrNotAndTheTransactionGoesOn() {
        // JdbcOutbox.append(..., headers) with a null map threw a NullPointerException (from the message builder, or
        // from putAll inside a handler) where its other refusals are a ConfigurationException before any SQL.
        JdbcOutbox handlersOutbox = JdbcOutbox.builder(database.dataSource()).eventBus(bus).clock(scheduler.clock()).build();
        List<String> refusals = new CopyOnWriteArrayList<>();
        JdbcInbox inbox = JdbcInbox.create(database.dataSource(), scheduler.clock());
        bus.subscribe("shipping", "order-created", OrderCreated.class, inbox.handler((event, ctx, c) -> {
            refusals.add(assertThrows(io.streamsaga.ConfigurationException.class, () -> handlersOutbox.append(c,
                    "order-shipped", event.orderId(), new OrderShipped(event.orderId(), scheduler.now()), null))
                    .getMessage());
            handlersOutbox.append(c, "order-shipped", event.orderId(), new OrderShipped(event.orderId(), scheduler.now()));
        }));
        tx.run(c -> {
            refusals.add(assertThrows(io.streamsaga.ConfigurationException.class,
                    () -> outbox.append(c, "order-created", "o-1", new OrderCreated("o-1", 1), null)).getMessage());
            createOrder(c, "o-1", 1);
        });
        relay().build().relayPending();
        transport.drainAll();

        assertEquals(2, refusals.size(), "outside and inside the handler");
        refusals.forEach(message -> assertTrue(message.contains("headers"), message));
        assertEquals(1, database.queryLong("SELECT COUNT(*) FROM orders"), "the caller's transaction went on");
        assertEquals(1, inbox.size(), "the handler's transaction went on");
        assertEquals(1, database.queryLong("SELECT COUNT(*) FROM ss_outbox WHERE topic = 'order-shipped'"));
    }

    @Test
    void aMessageIdKeyOrTypeWithANulCharacterIsRefusedBeforeAnySqlOnBothDatabasesAndTheTransactionGoesOn() {
        // PostgreSQL's text types cannot hold U+0000 (SQL state 22021) and H2's can: an id, key or event type with one
        // failed in the INSERT on PostgreSQL only, a JdbcException that aborted the caller's transaction. It is now a
        // ConfigurationException before any SQL on both. A header value with one is written (the headers column holds
        // JSON, where Jackson writes it as the escape \u0000) and comes back as it was.
        List<String> refusals = new ArrayList<>();
        tx.run(c -> {
            for (Message withNul : List.of(order("m-\0", "order-created", "k", "order-created"),
                    order("m-2", "order-created", "k\0", "order-created"),
                    encodedOrder("m-3", "order-created", "k", "order\0created"))) {
                refusals.add(assertThrows(io.streamsaga.ConfigurationException.class, () -> outbox.append(c, withNul))
                        .getMessage());
            }
            outbox.append(c, order("m-4", "order-created", "k", "order-created").withHeaders(Map.of("note", "a\0b")));
            createOrder(c, "o-1", 1);
        });
        assertEquals(3, refusals.size());
        refusals.forEach(message -> assertTrue(message.contains("U+0000"), message));
        assertTrue(refusals.get(0).startsWith("message id "), refusals.get(0));
        assertEquals(1, database.queryLong("SELECT COUNT(*) FROM orders"), "the caller's transaction went on");
        List<OutboxRow> pending = outbox.rows(OutboxRow.Status.PENDING, 10);
        assertEquals(2, pending.size());
        assertEquals("m-4", pending.get(0).message().id());
        assertEquals("a\0b", pending.get(0).message().headers().get("note"));
    }

    @Test
    void anEventWithANulCharacterInItsJsonIsStoredAndRelayedAsItWasOnBothDatabases() {
        // No column holds JSON as jsonb (whose strings PostgreSQL refuses U+0000 in): payloads, saga data and
        // aggregation parts are bytes (BYTEA, VARBINARY on H2), the headers JSON text in which Jackson writes the
        // escape \u0000. So a NUL inside an event's or a header's string needs no refusal.
        List<OrderCreated> seen = collect("billing");
        tx.run(c -> outbox.append(c, "order-created", "k", new OrderCreated("o-\0-1", 1), Map.of("note", "a\0b")));

        relay().build().relayPending();
        transport.drainAll();

        assertEquals(List.of(new OrderCreated("o-\0-1", 1)), seen);
        assertEquals(0, outbox.pendingCount());
    }

    @Test
    void aHeaderNameWithALoneSurrogateIsRefusedUpFrontNotStoredAsARowThatNoRelayCanRead() {
        // Headers holding a lone surrogate are stored as JSON with every surrogate escaped; Jackson reads such an
        // escape back in a value, but refuses one in a field name ("Unexpected low surrogate in field name"): the row
        // was written, then every read of it failed ("unreadable headers in outbox row"), so each relay batch failed
        // on it and no later message was published again, on both databases. A header name is a name: refused before
        // any SQL as an id is (the caller's transaction goes on); a value with one, and a well-formed pair in a name,
        // are kept.
        List<OrderCreated> seen = collect("billing");
        tx.run(c -> {
            for (String name : List.of("x-\uD800", "x-\uDC00y")) {
                io.streamsaga.ConfigurationException refused = assertThrows(io.streamsaga.ConfigurationException.class,
                        () -> outbox.append(c, "order-created", "k", new OrderCreated("o-1", 1), Map.of(name, "v")));
                assertTrue(refused.getMessage().startsWith("header name ")
                        && refused.getMessage().contains("lone surrogate"), refused.getMessage());
            }
            outbox.append(c, "order-created", "k", new OrderCreated("o-2", 2), Map.of("x-\uD83D\uDE00", "v-\uDC00"));
        });

        assertEquals("v-\uDC00", outbox.rows(OutboxRow.Status.PENDING, 10).get(0).message().headers().get("x-\uD83D\uDE00"));
        assertEquals(1, relay().build().relayPending());
        transport.drainAll();
        assertEquals(List.of(new OrderCreated("o-2", 2)), seen);
    }

    @Test
    void aSequenceTheOutboxHandsOutAgainIsNotReportedAsAMessageIdTheOutboxHolds() {
        // A unique violation of an append was taken for the message id's, whatever the key: a row whose seq the
        // identity hands out next (written with an explicit seq, as a restore or a copy does) made an append of a new
        // id fail "a row of the outbox has this message id already", sending an operator after a row no one has.
        database.execute("INSERT INTO ss_outbox (seq, message_id, topic, message_key, event_type, event_version,"
                + " payload, headers, created_at, status, attempts) OVERRIDING SYSTEM VALUE VALUES (1, 'restored',"
                + " 'order-created', 'k', 'order-created', 1, NULL, '{}', CURRENT_TIMESTAMP, 'SENT', 0)");
        Message fresh = Message.builder("order-created").id("fresh").type("order-created").payload(new byte[]{'{', '}'})
                .build();

        io.streamsaga.jdbc.JdbcException refused = assertThrows(io.streamsaga.jdbc.JdbcException.class,
                () -> tx.run(c -> outbox.append(c, fresh)));
        assertFalse(refused instanceof DuplicateOutboxMessageException, refused.getMessage());
        assertEquals("23505", refused.sqlState());
        // the id held, by contrast, is still said as such
        DuplicateOutboxMessageException duplicate = assertThrows(DuplicateOutboxMessageException.class,
                () -> tx.run(c -> outbox.append(c, Message.builder("order-created").id("restored").type("order-created")
                        .payload(new byte[]{'{', '}'}).build())));
        assertEquals("restored", duplicate.messageId());
    }

    @Test
    void anEventWithALoneSurrogateInAFieldNameIsRefusedUpFrontNotRelayedForEveryConsumerToDeadLetter() {
        // The payload is JSON in which Jackson escapes a lone surrogate: such an event was stored, relayed, and
        // dead-lettered as undecodable by every consumer (Jackson refuses that escape in a field name). The codec now
        // refuses it before any SQL, as the bus refuses it at publish; a value with one is kept.
        tx.run(c -> {
            io.streamsaga.codec.EncodingException refused = assertThrows(io.streamsaga.codec.EncodingException.class,
                    () -> outbox.append(c, io.streamsaga.message.Message.builder("order-created").type("order-created")
                            .payload(Map.of("orderId-\uD800", "o-1", "amount", 1)).build()));
            assertTrue(refused.getMessage().contains("lone surrogate"), refused.getMessage());
        });
        assertEquals(0, outbox.pendingCount(), "nothing was stored");
    }

    @Test
    void aDeliveryWhoseMessageIdHasANulCharacterIsDeadLetteredByTheInboxHandlerOnBothDatabases() {
        // JdbcInbox.markProcessed: a message id or group with U+0000 failed in SQL on PostgreSQL (22021, retried by the
        // bus as a database failure, then dead-lettered) and was recorded on H2. Refused before any SQL on both, so the
        // delivery is dead-lettered at once with the refusal, not lost; the inbox stays empty.
        JdbcInbox inbox = JdbcInbox.create(database.dataSource(), scheduler.clock());
        List<OrderCreated> handled = new CopyOnWriteArrayList<>();
        bus.subscribe("billing", "order-created", OrderCreated.class, inbox.handler((event, ctx, c) -> handled.add(event)));
        List<Message> deadLetters = new CopyOnWriteArrayList<>();
        bus.subscribe("ops", "order-created.DLT", Message.class, (m, ctx) -> deadLetters.add(m));

        bus.publish(order("m-\0", "order-created", "k", "order-created"));
        transport.drainAll();

        assertEquals(List.of(), handled);
        assertEquals(1, deadLetters.size());
        String error = deadLetters.get(0).header("dlt-error-message").orElse("");
        assertTrue(error.contains("U+0000"), error);
        assertEquals("1", deadLetters.get(0).header("dlt-attempts").orElse(""), "not retried: it cannot succeed");
        assertEquals(0, inbox.size());
        assertFalse(inbox.isProcessed("billing", "m-\0"));
        assertThrows(io.streamsaga.ConfigurationException.class,
                () -> tx.inTransaction(c -> inbox.markProcessed(c, "bill\0ing", "m-1")));
    }


    @Test
    void idsDifferingOnlyInALoneSurrogateAreRefusedByTheOutboxAndTheInboxOnBothDatabasesAndAHeaderWithOneIsKept() {
        // PostgreSQL's driver writes a lone surrogate (a UTF-16 surrogate that is not half of a pair) as '?', and H2
        // keeps it. On PostgreSQL the outbox stored the message ids "m-\uD800" and "m-\uDC00" both as "m-?" (the
        // second failed on the unique id), and the inbox, having recorded "m-\uD800", took "m-\uDC00", another
        // message, as processed: its handler never ran. Both databases now refuse such an id, key or type before any
        // SQL (the caller's transaction goes on) and the inbox handler dead-letters the delivery. A header value with
        // one is stored as JSON with the surrogate escaped, and comes back as it was (it came back "c-?").
        List<String> refusals = new ArrayList<>();
        tx.run(c -> {
            for (Message withLone : List.of(order("m-\uD800", "order-created", "k", "order-created"),
                    order("m-2", "order-created", "k-\uDC00", "order-created"),
                    encodedOrder("m-3", "order-created", "k", "order-\uD800created"))) {
                refusals.add(assertThrows(io.streamsaga.ConfigurationException.class, () -> outbox.append(c, withLone))
                        .getMessage());
            }
            outbox.append(c, order("m-4", "order-created", "k", "order-created")
                    .withHeaders(Map.of("correlation-id", "c-\uD800", "note", "\uD83D\uDE00 caf\u00e9 a\0b \uDC00")));
            createOrder(c, "o-1", 1);
        });
        assertEquals(3, refusals.size());
        refusals.forEach(message -> assertTrue(message.contains("lone surrogate"), message));
        assertTrue(refusals.get(0).startsWith("message id "), refusals.get(0));
        assertEquals(1, database.queryLong("SELECT COUNT(*) FROM orders"), "the caller's transaction went on");
        List<OutboxRow> pending = outbox.rows(OutboxRow.Status.PENDING, 10);
        assertEquals(2, pending.size());
        assertEquals("m-4", pending.get(0).message().id());
        assertEquals("c-\uD800", pending.get(0).message().headers().get("correlation-id"));
        assertEquals("\uD83D\uDE00 caf\u00e9 a\0b \uDC00", pending.get(0).message().headers().get("note"));

        JdbcInbox inbox = JdbcInbox.create(database.dataSource(), scheduler.clock());
        List<OrderCreated> handled = new CopyOnWriteArrayList<>();
        bus.subscribe("billing", "order-created", OrderCreated.class, inbox.handler((event, ctx, c) -> handled.add(event)));
        List<Message> deadLetters = new CopyOnWriteArrayList<>();
        bus.subscribe("ops", "order-created.DLT", Message.class, (m, ctx) -> deadLetters.add(m));
        tx.run(c -> inbox.markProcessed(c, "billing", "m-?"));

        bus.publish(order("m-\uD800", "order-created", "k", "order-created"));
        transport.drainAll();

        assertEquals(List.of(), handled);
        assertEquals(1, deadLetters.size());
        String error = deadLetters.get(0).header("dlt-error-message").orElse("");
        assertTrue(error.contains("lone surrogate"), error);
        assertEquals("1", deadLetters.get(0).header("dlt-attempts").orElse(""), "not retried: it cannot succeed");
        assertFalse(inbox.isProcessed("billing", "m-\uD800"));
        assertFalse(inbox.isProcessed("billing", "m-\uDC00"));
        assertTrue(inbox.isProcessed("billing", "m-?"));
        assertThrows(io.streamsaga.ConfigurationException.class,
                () -> tx.inTransaction(c -> inbox.markProcessed(c, "bill\uDC00ing", "m-1")));
        assertThrows(io.streamsaga.ConfigurationException.class, () -> relay().name("rel\uD800ay").build());
    }

    @Test
    void aRowRejectedWithAnErrorTextHoldingANulCharacterIsMarkedFailedOnBothDatabases() {
        // OutboxRelay keeps the transport's error text in last_error; one holding U+0000 failed the update on
        // PostgreSQL (22021), so the row could not be marked FAILED and the relay stopped on it. The text is now
        // stored with U+FFFD in place of each NUL.
        tx.run(c -> createOrder(c, "o-1", "poison", 1));
        OutboxRelay relay = relayTo().publisher(m -> CompletableFuture.failedFuture(
                new PublishException(m.topic(), "record\0too large", null, false))).build();

        relay.relayPending();

        assertEquals(1, outbox.failedCount());
        String lastError = outbox.rows(OutboxRow.Status.FAILED, 10).get(0).lastError();
        assertTrue(lastError.contains("record\uFFFDtoo large"), lastError);
    }

    @Test
    void everyNullArgumentOfAppendIsRefusedAsThePublishOfTheBusRefusesItNamingItBeforeAnySql() {
        // JdbcOutbox.append refused a null headers map with a ConfigurationException, as EventBus.publish refuses its
        // null arguments ("bad input gets a clear, typed error at the API"), but a null event or message threw a
        // NullPointerException and a null connection or topic one from inside (the message builder, the INSERT).
        // Each is now a ConfigurationException naming the argument, before any SQL; a null key is allowed (none).
        Map<String, String> refusals = new java.util.LinkedHashMap<>();
        OrderCreated event = new OrderCreated("o-1", 1);
        Message message = order("m-1", "order-created", "k", "order-created");
        tx.run(c -> {
            java.util.function.BiConsumer<String, org.junit.jupiter.api.function.Executable> refused = (name, call) ->
                    refusals.put(name, assertThrows(io.streamsaga.ConfigurationException.class, call).getMessage());
            refused.accept("connection", () -> outbox.append(null, "order-created", "k", event));
            refused.accept("topic", () -> outbox.append(c, null, "k", event));
            refused.accept("event", () -> outbox.append(c, "order-created", "k", null));
            refused.accept("headers", () -> outbox.append(c, "order-created", "k", event, null));
            refused.accept("connection of append(connection, message)", () -> outbox.append(null, message));
            refused.accept("message", () -> outbox.append(c, (Message) null));
            outbox.append(c, "order-created", null, event);
            createOrder(c, "o-1", 1);
        });
        assertEquals(Map.of(
                "connection", "connection must not be null",
                "topic", "topic must not be null",
                "event", "event must not be null",
                "headers", "headers must not be null (Map.of() for none)",
                "connection of append(connection, message)", "connection must not be null",
                "message", "message must not be null"), refusals);
        assertEquals(1, database.queryLong("SELECT COUNT(*) FROM orders"), "the caller's transaction went on");
        assertEquals(2, outbox.pendingCount());
    }

    private static Message order(String id, String topic, String key, String type) {
        return Message.builder(topic).id(id).key(key).type(type).payload(new OrderCreated("o-1", 1)).build();
    }

    /**
     * As {@link #order}, its payload already encoded: a type other than the registered one is then written as given (an
     * order object under another type is refused before the type's column is looked at, see
     * {@link #aBuiltMessageWhoseTypeOrVersionIsNotItsPayloadsRegisteredOneIsRefusedBeforeAnySqlAndNothingWritten}).
     */
    private static Message encodedOrder(String id, String topic, String key, String type) {
        return Message.builder(topic).id(id).key(key).type(type)
                .payload("{\"orderId\":\"o-1\",\"amount\":1}".getBytes(java.nio.charset.StandardCharsets.UTF_8)).build();
    }

    /** An event class the outbox's registry does not know. */
    record AuditNote(String text) {
    }

    @Test
    void aBuiltMessageWhoseTypeOrVersionIsNotItsPayloadsRegisteredOneIsRefusedBeforeAnySqlAndNothingWritten() {
        // EventBus.publish(Message) refuses a payload object of a registered class under another type or version than
        // the registry's; JdbcOutbox.append(Connection, Message) stored it as given, and the relay sent the encoded
        // payload under the wrong type id or version (consumers ran the v1 upcasters over a v2 payload, or dead-lettered
        // a misspelt type). The same check (TypeRegistry.requireRegisteredTypeOf) now refuses it before any SQL: nothing
        // written, the caller's transaction goes on. Encoded payloads and classes the registry does not know are
        // written as given, as the bus sends them.
        List<String> refusals = new ArrayList<>();
        tx.run(c -> {
            for (Message wrong : List.of(
                    Message.builder("order-created").id("as-v2").type("order-created").version(2)
                            .payload(new OrderCreated("o-1", 1)).build(),
                    Message.builder("order-created").id("misspelt").type("order-create")
                            .payload(new OrderCreated("o-1", 1)).build())) {
                refusals.add(assertThrows(io.streamsaga.ConfigurationException.class, () -> outbox.append(c, wrong))
                        .getMessage());
            }
            outbox.append(c, Message.builder("order-created").id("bytes").type("order-created").version(2)
                    .payload("{\"orderId\":\"o-2\",\"amount\":2}".getBytes(java.nio.charset.StandardCharsets.UTF_8))
                    .build());
            outbox.append(c, Message.builder("order-created").id("tree").type("order-created").version(2)
                    .payload(com.fasterxml.jackson.databind.node.JsonNodeFactory.instance.objectNode()
                            .put("orderId", "o-3").put("amount", 3)).build());
            outbox.append(c, Message.builder("audit").id("unknown-class").type("audit-note").version(3)
                    .payload(new AuditNote("checked")).build());
            outbox.append(c, Message.builder("order-created").id("right").type("order-created")
                    .payload(new OrderCreated("o-4", 4)).build());
            createOrder(c, "o-5", 5);
        });

        String order = OrderCreated.class.getName();
        assertEquals(List.of(
                "message 'as-v2' says type 'order-created' version 2 but its payload, a " + order + ", is registered as"
                        + " order-created/v1; build it with Message.Builder.type('order-created').version(1)",
                "message 'misspelt' says type 'order-create' version 1 but its payload, a " + order + ", is registered as"
                        + " order-created/v1; build it with Message.Builder.type('order-created').version(1)"), refusals);
        Map<String, String> stored = new java.util.TreeMap<>();
        outbox.rows(OutboxRow.Status.PENDING, 10).forEach(row -> stored.put(row.message().id(),
                row.message().type() + "/v" + row.message().version()));
        assertEquals(5, stored.size(), stored.toString());
        assertEquals("order-created/v2", stored.get("bytes"));
        assertEquals("order-created/v2", stored.get("tree"));
        assertEquals("audit-note/v3", stored.get("unknown-class"));
        assertEquals("order-created/v1", stored.get("right"));
        assertFalse(stored.containsKey("as-v2") || stored.containsKey("misspelt"), stored.toString());
        assertEquals(1, database.queryLong("SELECT COUNT(*) FROM orders"), "the caller's transaction went on");
    }

    @Test
    void theLoserOfTwoConcurrentFirstDeliveriesGetsARetriableError() throws Exception {
        // docs/durability.md and JdbcInbox.markProcessed: the other node "fails on the primary key (SQL state
        // 23505, retriable JdbcException) and finds the row on its retry" - a non-retriable error made the bus
        // dead-letter a message that had been handled
        JdbcInbox inbox = JdbcInbox.create(database.dataSource(), scheduler.clock());
        java.util.concurrent.ExecutorService second = java.util.concurrent.Executors.newSingleThreadExecutor();
        try (Connection first = database.dataSource().getConnection()) {
            first.setAutoCommit(false);
            assertTrue(inbox.markProcessed(first, "billing", "m-1"));
            java.util.concurrent.Future<Boolean> loser = second.submit(
                    () -> tx.inTransaction(c -> inbox.markProcessed(c, "billing", "m-1")));
            org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(30)).until(() -> loser.isDone() || database.sessionsWaitingForALock() > 0); // H2 may time out on the lock (HYT00) instead
            first.commit();

            java.util.concurrent.ExecutionException failure = assertThrows(java.util.concurrent.ExecutionException.class,
                    () -> loser.get(30, java.util.concurrent.TimeUnit.SECONDS));
            io.streamsaga.jdbc.JdbcException error = org.junit.jupiter.api.Assertions.assertInstanceOf(
                    io.streamsaga.jdbc.JdbcException.class, failure.getCause());
            assertTrue(error.isRetriable(), error.toString());
        } finally {
            second.shutdownNow();
        }
        boolean onRetry = tx.inTransaction(c -> inbox.markProcessed(c, "billing", "m-1"));
        assertFalse(onRetry, "the retry finds the row: a duplicate");
    }

    @Test
    void inboxRowsArePurgedInBoundedBatches() {
        JdbcInbox inbox = JdbcInbox.create(database.dataSource(), scheduler.clock());
        tx.run(c -> {
            for (int i = 0; i < 3; i++) {
                assertTrue(inbox.markProcessed(c, "g", "m-" + i));
            }
            assertFalse(inbox.markProcessed(c, "g", "m-0"));
        });
        scheduler.advance(Duration.ofHours(1));
        tx.run(c -> inbox.markProcessed(c, "g", "recent"));

        assertEquals(2, inbox.purgeProcessedBefore(scheduler.now().minusSeconds(60), 2));
        assertEquals(1, inbox.purgeProcessedBefore(scheduler.now().minusSeconds(60), 2));
        assertEquals(0, inbox.purgeProcessedBefore(scheduler.now().minusSeconds(60), 2));
        assertTrue(inbox.isProcessed("g", "recent"));
        assertEquals(1, inbox.size());
    }

    @Test
    void schemaMigrationIsRepeatableAndRecordsItsVersion() {
        JdbcSchema schema = JdbcSchema.of(database.dataSource());
        assertEquals(JdbcSchema.latestVersion(), schema.migrate());
        assertEquals(JdbcSchema.latestVersion(), schema.currentVersion());
        assertEquals(JdbcSchema.latestVersion(), database.queryLong("SELECT COUNT(*) FROM ss_schema_version"));
    }

    @Test
    void relaysOnTwoNodesTakeTurnsSoEachRowIsPublishedOnceAndInOrder() throws Exception {
        List<OrderCreated> seen = collect("billing");
        for (int i = 0; i < 40; i++) {
            int n = i;
            tx.run(c -> createOrder(c, "o-" + n, n));
        }
        // both publish straight to the transport; its send is thread-safe, unlike a MANUAL drain
        OutboxRelay nodeA = relayTo().transport(transport).name("orders").batchSize(5).build();
        OutboxRelay nodeB = relayTo().transport(transport).name("orders").batchSize(5).build();
        java.util.concurrent.ExecutorService nodes = java.util.concurrent.Executors.newFixedThreadPool(2);
        try {
            java.util.concurrent.Future<Integer> a = nodes.submit(nodeA::relayPending);
            java.util.concurrent.Future<Integer> b = nodes.submit(nodeB::relayPending);
            assertEquals(40, a.get(60, java.util.concurrent.TimeUnit.SECONDS) + b.get(60, java.util.concurrent.TimeUnit.SECONDS));
        } finally {
            nodes.shutdownNow();
        }
        transport.drainAll();
        assertEquals(java.util.stream.LongStream.range(0, 40).boxed().toList(), seen.stream().map(OrderCreated::amount).toList(),
                "one key, so one order: the commit order");
    }

    @Test
    void onAPoolHandingOutConnectionsWithAutoCommitOffRetryFailedAndPurgeSentAreCommitted() {
        // JdbcOutbox.retryFailed() and purgeSent(...) ran their UPDATE and DELETE on a connection of the pool without
        // committing: on a pool handing out connections with auto-commit off (HikariCP's autoCommit=false) the pool
        // rolled them back, and they returned the rows they had changed while the rows stayed FAILED, or kept.
        javax.sql.DataSource pool = io.streamsaga.jdbc.testing.PoolSettings.autoCommitOff().applyTo(database.dataSource());
        JdbcOutbox pooled = JdbcOutbox.builder(pool).codec(bus.codec()).clock(scheduler.clock()).build();
        tx.run(c -> createOrder(c, "o-1", "poison", 1));
        tx.run(c -> createOrder(c, "o-2", 2));
        OutboxRelay relay = OutboxRelay.builder(pool).scheduler(scheduler).executor(Runnable::run)
                .publisher(m -> "poison".equals(m.key())
                        ? CompletableFuture.failedFuture(new PublishException(m.topic(), "record too large", null, false))
                        : bus.publish(m)).build();
        assertEquals(1, relay.relayPending());
        assertEquals(1, pooled.failedCount());

        assertEquals(1, pooled.retryFailed());
        assertEquals(0, database.queryLong("SELECT COUNT(*) FROM ss_outbox WHERE status = 'FAILED'"),
                "the row put back is PENDING for good");
        scheduler.advance(Duration.ofMinutes(1));
        assertEquals(1, pooled.purgeSent(scheduler.now(), 10));
        assertEquals(0, database.queryLong("SELECT COUNT(*) FROM ss_outbox WHERE status = 'SENT'"),
                "the row purged is gone for good");
    }
    @Test
    void relaysOnTwoNodesOverRepeatableReadConnectionsPublishARowTheOtherMarkedSentNotAgain() throws Exception {
        // The relays take turns on their lock row, but on connections whose transactions are REPEATABLE READ (a pool's
        // transactionIsolation, PostgreSQL's default_transaction_isolation) the relay that waited for the lock read the
        // outbox in a snapshot taken before the other relay committed: it published every row of the other's batch a
        // second time (then failed to mark them), beyond the at-least-once of a crash or a lost acknowledgement.
        javax.sql.DataSource pool = io.streamsaga.jdbc.testing.PoolSettings.repeatableRead().applyTo(database.dataSource());
        for (int i = 0; i < 3; i++) {
            int n = i;
            tx.run(c -> createOrder(c, "o-" + n, n));
        }
        java.util.concurrent.CountDownLatch aPublishing = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch bWaiting = new java.util.concurrent.CountDownLatch(1);
        List<String> published = new CopyOnWriteArrayList<>();
        OutboxRelay nodeA = OutboxRelay.builder(pool).scheduler(scheduler).name("orders").publisher(m -> {
            aPublishing.countDown();
            try {
                assertTrue(bWaiting.await(60, java.util.concurrent.TimeUnit.SECONDS));
            } catch (InterruptedException e) {
                throw new IllegalStateException(e);
            }
            published.add("A " + m.id());
            return CompletableFuture.completedFuture(null);
        }).build();
        OutboxRelay nodeB = OutboxRelay.builder(pool).scheduler(scheduler).name("orders").publisher(m -> {
            published.add("B " + m.id());
            return CompletableFuture.completedFuture(null);
        }).build();
        java.util.concurrent.ExecutorService nodes = java.util.concurrent.Executors.newFixedThreadPool(2);
        try {
            java.util.concurrent.Future<Integer> a = nodes.submit(nodeA::relayPending);
            assertTrue(aPublishing.await(60, java.util.concurrent.TimeUnit.SECONDS), "A holds the lock, publishing");
            java.util.concurrent.Future<Integer> b = nodes.submit(() -> {
                try {
                    return nodeB.relayPending();
                } catch (RuntimeException e) {
                    return -1;
                }
            });
            org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(60)).until(() -> database.sessionsWaitingForALock() > 0);
            bWaiting.countDown();
            assertEquals(3, a.get(60, java.util.concurrent.TimeUnit.SECONDS));
            b.get(60, java.util.concurrent.TimeUnit.SECONDS);
        } finally {
            bWaiting.countDown();
            nodes.shutdownNow();
        }
        assertEquals(3, published.size(), "each row published once: " + published);
        assertEquals(0, outbox.pendingCount());
    }

    @Test
    void anAppendOrAMarkOnAConnectionInAutoCommitModeIsRefusedBeforeAnySqlNotCommittedAlone() throws Exception {
        // JdbcOutbox.append and JdbcInbox.markProcessed write "in the caller's transaction". Given a connection in
        // auto-commit mode (no transaction begun: a forgotten setAutoCommit(false), a template outside a transaction)
        // each committed its row alone at once: the event was published though the order it announced was rolled
        // back, and the message counted as processed though the handler's effect never committed.
        JdbcInbox inbox = JdbcInbox.create(database.dataSource(), scheduler.clock());
        try (Connection c = database.dataSource().getConnection()) {
            c.setAutoCommit(true);
            List<String> refusals = new ArrayList<>();
            refusals.add(assertThrows(io.streamsaga.ConfigurationException.class,
                    () -> outbox.append(c, "order-created", "o-1", new OrderCreated("o-1", 1))).getMessage());
            refusals.add(assertThrows(io.streamsaga.ConfigurationException.class,
                    () -> outbox.append(c, order("m-1", "order-created", "k", "order-created"))).getMessage());
            refusals.add(assertThrows(io.streamsaga.ConfigurationException.class,
                    () -> inbox.markProcessed(c, "billing", "m-1")).getMessage());
            for (String refusal : refusals) {
                assertTrue(refusal.contains("auto-commit"), refusal);
            }
        }
        assertEquals(0, database.queryLong("SELECT COUNT(*) FROM ss_outbox"), "no message committed alone");
        assertFalse(inbox.isProcessed("billing", "m-1"), "no message taken as processed");
    }

    @Test
    void anAppendAndAMarkInATransactionBegunWithoutLeavingAutoCommitModeAreTakenAndCommitWithIt() throws Exception {
        // The refusal of a connection in auto-commit mode took getAutoCommit() for "no transaction", but a transaction
        // can be open in that mode: an XA branch of a transaction manager (PostgreSQL's driver keeps auto-commit on in
        // one since 42.7.13) or a BEGIN sent as SQL. Both were refused, a JTA application unable to use the outbox.
        JdbcInbox inbox = JdbcInbox.create(database.dataSource(), scheduler.clock());
        javax.sql.XADataSource xaDataSource = xaDataSource();
        javax.sql.XAConnection xa = xaDataSource.getXAConnection(database.user(), database.password());
        try {
            javax.transaction.xa.XAResource resource = xa.getXAResource();
            javax.transaction.xa.Xid xid = new TestXid(new byte[] {1}, new byte[] {1});
            resource.start(xid, javax.transaction.xa.XAResource.TMNOFLAGS);
            Connection c = xa.getConnection(); // a handle, closed with the XA connection (H2's rolls back on close)
            outbox.append(c, "order-created", "o-1", new OrderCreated("o-1", 1));
            assertTrue(inbox.markProcessed(c, "billing", "m-1"));
            resource.end(xid, javax.transaction.xa.XAResource.TMSUCCESS);
            resource.commit(xid, true); // one phase
        } finally {
            xa.close();
        }
        try (Connection c = database.dataSource().getConnection()) {
            c.setAutoCommit(true);
            try (java.sql.Statement s = c.createStatement()) {
                s.execute("BEGIN"); // H2 leaves auto-commit mode on it; PostgreSQL's driver does not
            }
            outbox.append(c, "order-created", "o-2", new OrderCreated("o-2", 2));
            assertTrue(inbox.markProcessed(c, "billing", "m-2"));
            try (java.sql.Statement s = c.createStatement()) {
                s.execute("ROLLBACK");
            }
        }
        assertEquals(1, outbox.pendingCount(), "the XA branch's row committed, the rolled-back one did not");
        assertTrue(inbox.isProcessed("billing", "m-1"));
        assertFalse(inbox.isProcessed("billing", "m-2"));
    }

    private javax.sql.XADataSource xaDataSource() {
        if (kind() == TestDatabase.Kind.POSTGRES) {
            org.postgresql.xa.PGXADataSource ds = new org.postgresql.xa.PGXADataSource();
            ds.setUrl(database.jdbcUrl());
            return ds;
        }
        org.h2.jdbcx.JdbcDataSource ds = new org.h2.jdbcx.JdbcDataSource();
        ds.setURL(database.jdbcUrl());
        return ds;
    }

    private record TestXid(byte[] getGlobalTransactionId, byte[] getBranchQualifier) implements javax.transaction.xa.Xid {
        @Override
        public int getFormatId() {
            return 1;
        }
    }

    @Test
    void aLockRowDeletedByAnOperatorIsWrittenAgainSoRelaysOnTwoNodesStillTakeTurns() throws Exception {
        // A relay wrote its lock row in ss_outbox_lock once, at its first batch, and then locked whatever it found:
        // after an operator deleted the row (clearing "stale locks", as with a scheduler's lock table) it locked
        // nothing, and a relay of the same name on another node published the rows it was publishing too.
        java.util.concurrent.atomic.AtomicBoolean holdA = new java.util.concurrent.atomic.AtomicBoolean();
        java.util.concurrent.CountDownLatch aPublishing = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch aGoesOn = new java.util.concurrent.CountDownLatch(1);
        List<String> published = new CopyOnWriteArrayList<>();
        OutboxRelay nodeA = relayTo().name("orders").publisher(m -> {
            if (holdA.getAndSet(false)) {
                aPublishing.countDown();
                try {
                    assertTrue(aGoesOn.await(60, java.util.concurrent.TimeUnit.SECONDS));
                } catch (InterruptedException e) {
                    throw new IllegalStateException(e);
                }
            }
            published.add("A " + m.id());
            return CompletableFuture.completedFuture(null);
        }).build();
        OutboxRelay nodeB = relayTo().name("orders").publisher(m -> {
            published.add("B " + m.id());
            return CompletableFuture.completedFuture(null);
        }).build();
        assertEquals(0, nodeA.relayPending() + nodeB.relayPending(), "both wrote their lock row, with nothing to relay");
        for (int i = 0; i < 3; i++) {
            int n = i;
            tx.run(c -> createOrder(c, "o-" + n, n));
        }
        database.execute("DELETE FROM ss_outbox_lock");

        holdA.set(true);
        java.util.concurrent.ExecutorService nodes = java.util.concurrent.Executors.newFixedThreadPool(2);
        try {
            java.util.concurrent.Future<Integer> a = nodes.submit(nodeA::relayPending);
            assertTrue(aPublishing.await(60, java.util.concurrent.TimeUnit.SECONDS), "A publishes, holding its lock");
            java.util.concurrent.Future<Integer> b = nodes.submit(nodeB::relayPending);
            org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(60))
                    .until(() -> b.isDone() || database.sessionsWaitingForALock() > 0);
            aGoesOn.countDown();
            a.get(60, java.util.concurrent.TimeUnit.SECONDS);
            try {
                b.get(60, java.util.concurrent.TimeUnit.SECONDS);
            } catch (java.util.concurrent.ExecutionException e) {
                // B lost the race to write the row again (the key, or a lock timeout on H2): its batch failed, as a
                // poll's would, to be retried after a backoff
                org.junit.jupiter.api.Assertions.assertInstanceOf(io.streamsaga.jdbc.JdbcException.class, e.getCause());
            }
            assertEquals(0, nodeB.relayPending(), "nothing left for B");
        } finally {
            aGoesOn.countDown();
            nodes.shutdownNow();
        }
        assertEquals(3, published.size(), "each row published once: " + published);
        assertEquals(0, outbox.pendingCount());
    }

    @Test
    void aPublisherThrowingAnErrorFailsItsRowForARetryInsteadOfStoppingAStartedRelayForGood() {
        // An Error thrown by the publisher (an interceptor's AssertionError, a codec's NoClassDefFoundError) went
        // through the relay's poll: the batch rolled back, the poll never rescheduled itself, and the started relay
        // published nothing more for good, its consecutiveFailures() still 0 for monitoring to see.
        assertAnErrorThrownByThePublisherFailsItsRowForARetry(new AssertionError("an interceptor's bug"));
    }

    @Test
    void aPublisherOverflowingItsStackFailsItsRowForARetryAsWhenItsFutureCompletesWithTheSameError() {
        // A StackOverflowError is a VirtualMachineError, but not the process dying: the publisher's own recursion (an
        // interceptor, a codec walking a cyclic payload) unwound, the thread goes on. Thrown on by the relay, it
        // ended the poll, which never rescheduled itself: a started relay published nothing more, for good, though
        // the same error completing the publisher's future was a retriable failure of the row.
        assertAnErrorThrownByThePublisherFailsItsRowForARetry(new StackOverflowError("an interceptor calling itself"));
    }

    @Test
    void aPublisherRunningOutOfMemoryIsLoggedAndCountedAndTheStartedRelayPublishesTheRowAfterItsBackoff()
            throws Throwable {
        // An OutOfMemoryError (a VirtualMachineError, but often one huge message or a burst the process survives) went
        // through the relay's poll, which never rescheduled itself: a started relay published nothing more, for good,
        // with nothing logged by the relay (on its own executor only the dying thread's stack on System.err) and
        // consecutiveFailures() still 0 for monitoring to see.
        List<OrderCreated> seen = collect("billing");
        tx.run(c -> createOrder(c, "o-1", 1));
        AtomicInteger attempts = new AtomicInteger();
        try (OutboxRelay relay = relayTo().publisher(m -> {
            if (attempts.incrementAndGet() == 1) {
                throw new OutOfMemoryError("Java heap space (simulated)");
            }
            return bus.publish(m);
        }).build()) {
            Started started = startCatchingWhatEscapes(relay);
            String log = started.log();
            assertEquals(null, started.escaped(), "the poll's failure is the relay's to handle, not its executor's");
            assertTrue(log.contains(" ERROR ") && log.contains("java.lang.OutOfMemoryError: Java heap space (simulated)"),
                    "logged with the error: " + log);
            assertEquals(1, relay.consecutiveFailures(), "a failed poll, seen by monitoring");
            assertEquals(0, outbox.rows(OutboxRow.Status.PENDING, 1).get(0).attempts(),
                    "nothing written after a VirtualMachineError: the batch rolled back, the row left as it was");

            assertTheRowIsPublishedAfterTheBackoff(relay, seen);
        }
    }

    @Test
    void aStartedRelayWhoseLogOfAnOutOfMemoryErrorThrowsAnotherStillPollsAgainAfterItsBackoff() throws Throwable {
        // With the heap still exhausted, logging the publisher's OutOfMemoryError may throw another: that second Error
        // went through the poll before it rescheduled itself, and a started relay published nothing more, for good,
        // with consecutiveFailures() still 0. Here the first error's message throws, as the log writes it.
        List<OrderCreated> seen = collect("billing");
        tx.run(c -> createOrder(c, "o-1", 1));
        OutOfMemoryError whileLogging = new OutOfMemoryError("Java heap space (simulated, while logging)");
        AtomicInteger attempts = new AtomicInteger();
        try (OutboxRelay relay = relayTo().publisher(m -> {
            if (attempts.incrementAndGet() == 1) {
                throw new OutOfMemoryError() {
                    @Override
                    public String getMessage() {
                        throw whileLogging;
                    }
                };
            }
            return bus.publish(m);
        }).build()) {
            assertSame(whileLogging, startCatchingWhatEscapes(relay).escaped(),
                    "what the log threw goes on to the relay's executor");
            assertEquals(1, relay.consecutiveFailures(), "a failed poll, seen by monitoring");

            assertTheRowIsPublishedAfterTheBackoff(relay, seen);
        }
    }

    @Test
    void aStartedRelayWhoseProcessASimulatedCrashEndsPollsNoMoreAndLeavesTheRowPending() {
        // A test's process dying in the poll: nothing of it runs on, no next poll either (the reschedule that an Error
        // thrown while logging no longer skips is skipped for it), and the row stays for the next relay.
        tx.run(c -> createOrder(c, "o-1", 1));
        AtomicInteger attempts = new AtomicInteger();
        try (OutboxRelay relay = relayTo().publisher(m -> {
            attempts.incrementAndGet();
            throw new SimulatedCrash();
        }).build()) {
            assertThrows(SimulatedCrash.class, relay::start); // polls at once, on this thread (the relay's executor here)
            scheduler.advance(Duration.ofMinutes(1)); // past every backoff and poll interval
            assertEquals(1, attempts.get(), "polled no more");
            assertEquals(0, relay.consecutiveFailures());
            assertEquals(1, outbox.pendingCount());
        }
    }

    @Test
    @SuppressWarnings("removal") // ThreadDeath: what Thread.stop throws in the stopped thread, on the JDKs that have it
    void aPublisherThreadStoppedWithThreadDeathEndsThePollAsACrashDoesAndTheRowStaysPendingUntouched() {
        // ThreadDeath asks the thread to die; a method that catches it must rethrow it (its Javadoc). The relay took it
        // for the row's retriable failure: it recorded it on the row, swallowed it and polled again after its backoff.
        tx.run(c -> createOrder(c, "o-1", 1));
        AtomicInteger attempts = new AtomicInteger();
        try (OutboxRelay relay = relayTo().publisher(m -> {
            attempts.incrementAndGet();
            throw new ThreadDeath();
        }).build()) {
            assertThrows(ThreadDeath.class, relay::relayPending, "on the calling thread");
            assertThrows(ThreadDeath.class, relay::start); // polls at once, on this thread (the relay's executor here)
            scheduler.advance(Duration.ofMinutes(1)); // past every backoff and poll interval
            assertEquals(2, attempts.get(), "polled no more after the stopped poll");
            assertEquals(0, relay.consecutiveFailures());
            OutboxRow row = outbox.rows(OutboxRow.Status.PENDING, 1).get(0);
            assertEquals(0, row.attempts(), "nothing written: the batch rolled back, the row left as it was");
        }
    }

    @Test
    void anAppendByARoleThatMayNotReadTheOutboxTellsAnIdItHoldsByTheKeysDefaultNameThoughTheServerHidesTheValues()
            throws Exception {
        // A probe of what Sql.UniqueKey reads: PostgreSQL leaves the detail with the key's column and values out of its
        // error for a role without SELECT on the key's columns (an application's role that may only append), so only
        // the constraint's name, the library's default, tells the message id's key
        org.junit.jupiter.api.Assumptions.assumeTrue(kind() == TestDatabase.Kind.POSTGRES, "PostgreSQL's privileges");
        String schema;
        try (Connection c = database.dataSource().getConnection()) {
            schema = c.getSchema();
        }
        String role = "outbox_appender_" + schema;
        database.execute("CREATE ROLE " + role + " LOGIN");
        database.execute("GRANT USAGE ON SCHEMA " + schema + " TO " + role);
        database.execute("GRANT INSERT ON ss_outbox TO " + role);
        Message message = Message.builder("billing").id("m-1").key("k").type("order-created")
                .payload(new byte[]{'{', '}'}).build();
        tx.run(c -> outbox.append(c, message));
        try (Connection appender = java.sql.DriverManager.getConnection(database.jdbcUrl(), role, "")) {
            appender.setAutoCommit(false);
            DuplicateOutboxMessageException refused = assertThrows(DuplicateOutboxMessageException.class,
                    () -> outbox.append(appender, message));
            assertEquals("m-1", refused.messageId());
            assertFalse(refused.getCause().getMessage().contains("(message_id)="),
                    "the server hid the key's values: " + refused.getCause().getMessage());
            appender.rollback();
        }
    }

    /** After the backoff of its first failed poll, {@code relay} publishes the row, which {@code seen} receives. */
    private void assertTheRowIsPublishedAfterTheBackoff(OutboxRelay relay, List<OrderCreated> seen) {
        scheduler.advance(Duration.ofSeconds(1)); // the backoff
        transport.drainAll();
        assertEquals(List.of(1L), seen.stream().map(OrderCreated::amount).toList());
        assertEquals(0, outbox.pendingCount());
        assertEquals(0, relay.consecutiveFailures());
    }

    /** What the relay logged while it started and what its start threw (null: nothing). */
    private record Started(String log, Throwable escaped) {
    }

    /**
     * Starts {@code relay}, which polls at once on this thread (the relay's executor here), catching whatever escapes:
     * JUnit's assertDoesNotThrow and assertThrows would rethrow an OutOfMemoryError and end the run.
     */
    private static Started startCatchingWhatEscapes(OutboxRelay relay) throws Throwable {
        java.util.concurrent.atomic.AtomicReference<Throwable> escaped = new java.util.concurrent.atomic.AtomicReference<>();
        String log = io.streamsaga.CapturedLog.ofLogger(OutboxRelay.class.getName(), () -> {
            try {
                relay.start();
            } catch (Throwable e) {
                escaped.set(e);
            }
        });
        return new Started(log, escaped.get());
    }

    private void assertAnErrorThrownByThePublisherFailsItsRowForARetry(Error error) {
        List<OrderCreated> seen = collect("billing");
        tx.run(c -> createOrder(c, "o-1", 1));
        AtomicInteger attempts = new AtomicInteger();
        try (OutboxRelay relay = relayTo().publisher(m -> {
            if (attempts.incrementAndGet() == 1) {
                throw error;
            }
            return bus.publish(m);
        }).build()) {
            assertDoesNotThrow(relay::start);
            assertEquals(1, relay.consecutiveFailures(), "a failed poll, seen by monitoring");
            OutboxRow row = outbox.rows(OutboxRow.Status.PENDING, 1).get(0);
            assertEquals(1, row.attempts());
            assertTrue(row.lastError().contains(error.getMessage()), row.lastError());

            scheduler.advance(Duration.ofSeconds(1)); // the backoff
            transport.drainAll();
            assertEquals(List.of(1L), seen.stream().map(OrderCreated::amount).toList());
            assertEquals(0, outbox.pendingCount());
        }
    }

    @Test
    void aDatabaseFailureAroundAnInboxHandlerReachesTheBusAsATypedJdbcExceptionAndTheHandlersOwnErrorAsItWas()
            throws Exception {
        // JdbcInbox.handler rethrows what the handler throws unchanged, but the SQLExceptions of its own transaction
        // (no connection from the pool, a commit that fails) went out raw as well: untyped, where every other database
        // failure of the library is a JdbcException that says whether a retry may succeed, for the bus to decide by.
        java.util.concurrent.atomic.AtomicBoolean down = new java.util.concurrent.atomic.AtomicBoolean();
        java.util.concurrent.atomic.AtomicBoolean commitFails = new java.util.concurrent.atomic.AtomicBoolean();
        javax.sql.DataSource flaky = (javax.sql.DataSource) java.lang.reflect.Proxy.newProxyInstance(
                getClass().getClassLoader(), new Class<?>[] {javax.sql.DataSource.class}, (proxy, method, args) -> {
                    if (down.get() && method.getName().equals("getConnection")) {
                        throw new java.sql.SQLException("connection refused", "08001");
                    }
                    Object result = invoke(method, database.dataSource(), args);
                    if (!(result instanceof Connection connection)) {
                        return result;
                    }
                    return java.lang.reflect.Proxy.newProxyInstance(getClass().getClassLoader(),
                            new Class<?>[] {Connection.class}, (p, m, a) -> {
                                if (commitFails.get() && m.getName().equals("commit")) {
                                    throw new java.sql.SQLException("could not serialize access", "40001");
                                }
                                return invoke(m, connection, a);
                            });
                });
        JdbcInbox inbox = JdbcInbox.create(flaky, scheduler.clock());
        java.sql.SQLException own = new java.sql.SQLException("the handler's own check failed", "23514");
        io.streamsaga.bus.EventHandler<OrderCreated> invoicing = inbox.handler((event, ctx, c) -> {
            if (event.amount() < 0) {
                throw own;
            }
        });
        Message message = Message.builder("order-created").id("m-1").type("order-created").payload(new OrderCreated("o-1", 1)).build();
        io.streamsaga.bus.DeliveryContext context = new io.streamsaga.bus.DeliveryContext(message, "billing", 0, 0, 1);

        down.set(true);
        Exception refused = assertThrows(Exception.class, () -> invoicing.handle(new OrderCreated("o-1", 1), context));
        io.streamsaga.jdbc.JdbcException noConnection = org.junit.jupiter.api.Assertions.assertInstanceOf(
                io.streamsaga.jdbc.JdbcException.class, refused);
        assertTrue(noConnection.isRetriable(), noConnection.toString());
        down.set(false);

        commitFails.set(true);
        Exception failedCommit = assertThrows(Exception.class, () -> invoicing.handle(new OrderCreated("o-1", 1), context));
        assertTrue(org.junit.jupiter.api.Assertions.assertInstanceOf(io.streamsaga.jdbc.JdbcException.class, failedCommit)
                .isRetriable(), failedCommit.toString());
        commitFails.set(false);
        assertFalse(inbox.isProcessed("billing", "m-1"), "the commit failed: not processed");

        assertEquals(own, assertThrows(Exception.class, () -> invoicing.handle(new OrderCreated("o-1", -1), context)),
                "the handler's own SQLException, unchanged");
        invoicing.handle(new OrderCreated("o-1", 1), context);
        assertTrue(inbox.isProcessed("billing", "m-1"));
    }

    private static Object invoke(java.lang.reflect.Method method, Object target, Object[] args) throws Throwable {
        try {
            return method.invoke(target, args);
        } catch (java.lang.reflect.InvocationTargetException e) {
            throw e.getCause();
        }
    }

    @Test
    void aRowNoRelayCanReadIsMarkedFailedWithItsErrorAndTheRowsAfterItAreRelayed() {
        // A row the relay could not read (written by the application's own SQL, a trigger say, or corrupted by hand:
        // headers that are no JSON object, a blank event type) failed the read of every batch: the relay published
        // nothing more, for good, each poll failing on it. It is a poison row: marked FAILED with the reason, as a row
        // the transport rejects for good is, and the rows after it go out.
        List<OrderCreated> seen = collect("billing");
        database.execute("INSERT INTO ss_outbox (message_id, topic, message_key, event_type, event_version, payload,"
                + " headers, created_at, status, attempts) VALUES ('by-a-trigger', 'order-created', 'k', 'order-created',"
                + " 1, NULL, 'not json', CURRENT_TIMESTAMP, 'PENDING', 0)");
        database.execute("INSERT INTO ss_outbox (message_id, topic, message_key, event_type, event_version, payload,"
                + " headers, created_at, status, attempts) VALUES ('blank-type', 'order-created', 'k', ' ',"
                + " 1, NULL, '{}', CURRENT_TIMESTAMP, 'PENDING', 0)");
        tx.run(c -> createOrder(c, "o-1", 1));

        assertEquals(1, relay().build().relayPending());
        transport.drainAll();

        assertEquals(List.of(1L), seen.stream().map(OrderCreated::amount).toList());
        assertEquals(2, outbox.failedCount());
        assertEquals(0, outbox.pendingCount());
        assertEquals(2, database.queryLong("SELECT COUNT(*) FROM ss_outbox WHERE status = 'FAILED' AND attempts = 1"
                + " AND last_error LIKE '%unreadable%'"));
        assertEquals(2, metrics.count(OutboxRelay.FAILURES_METRIC + "{kind=rejected, relay=default}"));
    }
}
