package io.streamsaga.jdbc;

import io.streamsaga.CapturedLog;
import io.streamsaga.ConfigurationException;
import io.streamsaga.StreamSagaException;
import io.streamsaga.codec.JsonEventCodec;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.idempotency.spi.ClaimOutcome;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.jdbc.idempotency.JdbcDeduplicationStore;
import io.streamsaga.jdbc.inbox.JdbcInbox;
import io.streamsaga.jdbc.outbox.JdbcOutbox;
import io.streamsaga.jdbc.outbox.OutboxRelay;
import io.streamsaga.jdbc.testing.Around;
import io.streamsaga.jdbc.testing.DatabaseExtension;
import io.streamsaga.jdbc.testing.TestDatabase;
import io.streamsaga.metrics.MetricsRecorder;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import javax.sql.DataSource;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The scheduled clean-ups of the outbox's sent rows, the inbox's processed rows and the deduplication store's outdated
 * keys ({@code retention} and {@code purgeEvery} on the builders of {@code OutboxRelay}, {@code JdbcInbox} and
 * {@code JdbcDeduplicationStore}, whose retention is its window), on a virtual clock; subclasses pick PostgreSQL or H2.
 */
abstract class ScheduledPurgeTest {
    record Note(int n) {
    }

    @RegisterExtension
    final DatabaseExtension db = DatabaseExtension.of(kind());

    abstract TestDatabase.Kind kind();

    private static final Duration RETENTION = Duration.ofHours(1);
    private static final Duration INTERVAL = Duration.ofMinutes(10);

    private TestDatabase database;
    private VirtualScheduler scheduler;
    private JdbcOutbox outbox;
    private JdbcTransactions tx;
    /** While set, every connection asked of {@link #gated} fails, as an unreachable database's. */
    private final AtomicBoolean unreachable = new AtomicBoolean();
    /** While set, the next connection asked of {@link #gated} throws a ThreadDeath instead, as a stopped thread. */
    private final AtomicBoolean stopThread = new AtomicBoolean();
    /** While set, a connection asked of {@link #gated} is handed out only once the latch opens. */
    private final AtomicReference<CountDownLatch> held = new AtomicReference<>();
    private final CountDownLatch holding = new CountDownLatch(1);
    private DataSource gated;
    private final Counting metrics = new Counting();

    /** Counts increments by name and tags. */
    static final class Counting implements MetricsRecorder {
        private final Map<String, Integer> counts = new ConcurrentHashMap<>();

        @Override
        public void increment(String name, Map<String, String> tags) {
            counts.merge(name + new java.util.TreeMap<>(tags), 1, Integer::sum);
        }

        int count(String key) {
            return counts.getOrDefault(key, 0);
        }
    }

    @BeforeEach
    void setUp() {
        database = db.database();
        JdbcSchema.of(database.dataSource()).migrate();
        scheduler = new VirtualScheduler(Instant.parse("2026-01-01T00:00:00Z"));
        outbox = JdbcOutbox.builder(database.dataSource()).clock(scheduler.clock()).codec(new JsonEventCodec(
                JsonEventCodec.defaultMapper(), TypeRegistry.builder().register("note", 1, Note.class).build())).build();
        tx = new JdbcTransactions(database.dataSource());
        gated = Around.wrap(DataSource.class, database.dataSource(), (method, proceed) -> {
            if (method.equals("getConnection")) {
                if (unreachable.get()) {
                    throw new SQLException("the database is unreachable (test)", "08001");
                }
                if (stopThread.getAndSet(false)) {
                    throw new ThreadDeath();
                }
                CountDownLatch latch = held.get();
                if (latch != null) {
                    holding.countDown();
                    assertTrue(latch.await(60, TimeUnit.SECONDS), "the test lets the connection go");
                }
            }
            return proceed.call();
        });
    }

    /** A relay publishing every row but those of topic {@code poison}, which it rejects for good; polls only at start. */
    private OutboxRelay.Builder relay(DataSource dataSource) {
        return OutboxRelay.builder(dataSource).scheduler(scheduler).executor(Runnable::run).metrics(metrics)
                .pollInterval(Duration.ofDays(365)).retention(RETENTION).purgeEvery(INTERVAL)
                .publisher(m -> m.topic().equals("poison")
                        ? CompletableFuture.failedFuture(new StreamSagaException("rejected (test)", null, false))
                        : CompletableFuture.completedFuture(null));
    }

    private void append(String topic, int rows) {
        tx.run(c -> {
            for (int i = 0; i < rows; i++) {
                outbox.append(c, topic, "k", new Note(i));
            }
        });
    }

    private long outboxRows(String status) {
        return database.queryLong("SELECT COUNT(*) FROM ss_outbox WHERE status = '" + status + "'");
    }

    @Test
    void theRelayPurgesSentRowsOlderThanItsRetentionInBatchesAndKeepsNewerPendingAndFailedRows() {
        append("notes", 1001); // more than two batches of 500
        OutboxRelay relay = relay(database.dataSource()).build();
        relay.start(); // publishes them: sent at T0
        assertEquals(1001, outboxRows("SENT"));
        scheduler.advance(Duration.ofMinutes(45));
        append("notes", 2);
        append("poison", 1);
        relay.relayPending(); // sent (and failed) at T0 + 45 min
        append("notes", 1); // pending: the relay polls no more
        scheduler.advance(Duration.ofMinutes(15)); // the purge at T0 + 60 min: nothing sent before T0
        assertEquals(1003, outboxRows("SENT"));

        scheduler.advance(INTERVAL); // T0 + 70 min: everything sent before T0 + 10 min

        assertEquals(2, outboxRows("SENT"), "the rows sent 25 minutes ago are kept");
        assertEquals(1, outboxRows("FAILED"));
        assertEquals(1, outboxRows("PENDING"));
        scheduler.advance(Duration.ofHours(2));
        assertEquals(0, outboxRows("SENT"), "sent rows are deleted once older than the retention");
        assertEquals(1, outboxRows("FAILED"), "failed rows are never deleted");
        assertEquals(1, outboxRows("PENDING"), "pending rows are never deleted");
        relay.close();
    }

    @Test
    void aFailedRelayPurgeIsLoggedCountedAndRetriedAtTheNextIntervalWhileTheRelayGoesOnPublishing() {
        append("notes", 3);
        OutboxRelay relay = relay(gated).build();
        relay.start();
        scheduler.advance(RETENTION);
        unreachable.set(true);

        scheduler.advance(INTERVAL);

        assertEquals(1, metrics.count(OutboxRelay.PURGE_FAILURES_METRIC + "{relay=default}"));
        assertEquals(3, outboxRows("SENT"));
        unreachable.set(false);
        append("notes", 1);
        relay.wakeUp();
        assertEquals(0, outboxRows("PENDING"), "the relay goes on publishing");
        scheduler.advance(INTERVAL);
        assertEquals(1, outboxRows("SENT"), "the next run deleted the old rows, not the one just sent");
        assertEquals(1, metrics.count(OutboxRelay.PURGE_FAILURES_METRIC + "{relay=default}"));
        relay.close();
    }

    /**
     * Runs the purge due one interval from now on a thread of its own, returned once its first batch has asked
     * {@link #gated} for its connection, which it gets when {@code release} opens; later connections are not held.
     */
    private Thread purgeHeldInItsFirstBatchUntil(CountDownLatch release) throws InterruptedException {
        held.set(release);
        Thread purging = new Thread(() -> scheduler.advance(INTERVAL), "purging");
        purging.start();
        assertTrue(holding.await(60, TimeUnit.SECONDS), "the purge asked for its first batch's connection");
        held.set(null);
        return purging;
    }

    @Test
    void closeWaitsForARelayPurgeInProgressWhichStartsNoFurtherBatchAndCancelsTheNextOne() throws Exception {
        append("notes", 600);
        OutboxRelay relay = relay(gated).build();
        relay.start();
        scheduler.advance(RETENTION);
        CountDownLatch release = new CountDownLatch(1);
        Thread purging = purgeHeldInItsFirstBatchUntil(release);
        AtomicBoolean closeReturned = new AtomicBoolean();
        AtomicLong sentWhenCloseReturned = new AtomicLong(-1);
        Thread closing = new Thread(() -> {
            relay.close();
            closeReturned.set(true);
            sentWhenCloseReturned.set(outboxRows("SENT"));
        }, "closing");
        closing.start();
        Awaitility.await().atMost(Duration.ofSeconds(60)).until(() -> closing.getState() == Thread.State.TIMED_WAITING);
        assertFalse(closeReturned.get(), "close() waits for the purge in progress");

        release.countDown();
        closing.join();
        purging.join();

        assertEquals(100, sentWhenCloseReturned.get(), "close() returned once the batch in progress was committed");
        assertEquals(100, outboxRows("SENT"), "the batch in progress was deleted, no further one");
        scheduler.advance(Duration.ofHours(3));
        assertEquals(100, outboxRows("SENT"), "no purge runs after close()");
    }

    @Test
    void closeCalledFromTheRelaysOwnPublishStillWaitsForAPurgeInProgressOnAnotherThread() throws Exception {
        append("notes", 600);
        AtomicReference<OutboxRelay> self = new AtomicReference<>();
        AtomicLong sentWhenCloseReturned = new AtomicLong(-1);
        OutboxRelay relay = OutboxRelay.builder(gated).scheduler(scheduler).executor(Runnable::run)
                .pollInterval(Duration.ofDays(365)).retention(RETENTION).purgeEvery(INTERVAL).publisher(m -> {
                    if (m.topic().equals("closer")) { // as a transport closing under the relay's poll closes it
                        self.get().close();
                        sentWhenCloseReturned.set(outboxRows("SENT"));
                    }
                    return CompletableFuture.completedFuture(null);
                }).build();
        self.set(relay);
        relay.start(); // publishes the 600 rows
        scheduler.advance(RETENTION);
        CountDownLatch release = new CountDownLatch(1);
        Thread purging = purgeHeldInItsFirstBatchUntil(release);
        append("closer", 1);
        Thread polling = new Thread(relay::wakeUp, "polling"); // its poll publishes the row that closes the relay
        polling.start();
        Awaitility.await().atMost(Duration.ofSeconds(60)).until(() -> polling.getState() == Thread.State.TIMED_WAITING
                || polling.getState() == Thread.State.TERMINATED);

        release.countDown();
        polling.join();
        purging.join();

        assertEquals(100, sentWhenCloseReturned.get(), "close() returned once the batch in progress was deleted");
        scheduler.advance(Duration.ofHours(3));
        assertEquals(100, database.queryLong("SELECT COUNT(*) FROM ss_outbox WHERE status = 'SENT' AND topic = 'notes'"),
                "no purge runs after close()");
    }

    @Test
    void relaysOnTwoNodesPurgingAtOnceDeleteTheOldRowsOnceAndKeepTheNewer() throws Exception {
        append("notes", 3);
        VirtualScheduler otherClock = new VirtualScheduler(scheduler.now());
        // Node A's purge holds its batch's transaction open (its rows locked) until node B's waits for them.
        CountDownLatch release = new CountDownLatch(1);
        AtomicBoolean holdCommit = new AtomicBoolean();
        CountDownLatch committing = new CountDownLatch(1);
        DataSource nodeA = Around.wrap(DataSource.class, database.dataSource(), (method, proceed) -> {
            Object result = proceed.call();
            if (!method.equals("getConnection")) {
                return result;
            }
            return Around.wrap(Connection.class, (Connection) result, (m, p) -> {
                if (m.equals("commit") && holdCommit.getAndSet(false)) {
                    committing.countDown();
                    assertTrue(release.await(60, TimeUnit.SECONDS), "node B's purge waits for the rows");
                }
                return p.call();
            });
        });
        OutboxRelay a = relay(nodeA).build();
        OutboxRelay b = OutboxRelay.builder(database.dataSource()).scheduler(otherClock).executor(Runnable::run)
                .metrics(metrics).pollInterval(Duration.ofDays(365)).retention(RETENTION).purgeEvery(INTERVAL)
                .publisher(m -> CompletableFuture.completedFuture(null)).build();
        a.start(); // publishes the rows
        b.start();
        scheduler.advance(RETENTION);
        otherClock.advance(RETENTION);
        scheduler.advance(Duration.ofMinutes(5));
        otherClock.advance(Duration.ofMinutes(5));
        append("notes", 2);
        a.relayPending(); // sent 65 minutes after the first ones

        holdCommit.set(true);
        Thread nodeAPurging = new Thread(() -> scheduler.advance(Duration.ofMinutes(5)), "node A");
        nodeAPurging.start();
        assertTrue(committing.await(60, TimeUnit.SECONDS), "node A deleted its batch and is about to commit");
        Thread nodeBPurging = new Thread(() -> otherClock.advance(Duration.ofMinutes(5)), "node B");
        nodeBPurging.start();
        Awaitility.await().atMost(Duration.ofSeconds(60)).until(() -> database.sessionsWaitingForALock() > 0);
        release.countDown();
        nodeAPurging.join();
        nodeBPurging.join();

        assertEquals(2, outboxRows("SENT"), "the old rows are gone, the newer ones kept");
        int failures = metrics.count(OutboxRelay.PURGE_FAILURES_METRIC + "{relay=default}");
        scheduler.advance(INTERVAL);
        otherClock.advance(INTERVAL);
        assertEquals(failures, metrics.count(OutboxRelay.PURGE_FAILURES_METRIC + "{relay=default}"),
                "the next runs of both succeed (a run that lost the race, if any, was only counted and logged)");
        assertEquals(2, outboxRows("SENT"));
        a.close();
        b.close();
    }

    @Test
    void aRelayNeverStartedArmsNoPurge() {
        append("notes", 2);
        OutboxRelay relay = relay(database.dataSource()).build();
        relay.relayPending(); // sent at T0, without start()

        assertEquals(0, scheduler.pendingTasks(), "nothing is armed before start()");
        scheduler.advance(Duration.ofHours(3));

        assertEquals(2, outboxRows("SENT"), "no purge ran");
        relay.close();
    }

    @Test
    void aPurgeGivenNoRetentionKeepsRowsSevenDaysAsAnOrchestratorKeepsFinishedSagas() {
        append("notes", 1);
        OutboxRelay relay = OutboxRelay.builder(database.dataSource()).scheduler(scheduler).executor(Runnable::run)
                .pollInterval(Duration.ofDays(365)).purgeEvery(Duration.ofHours(1))
                .publisher(m -> CompletableFuture.completedFuture(null)).build();
        relay.start(); // sent at T0
        JdbcInbox inbox = JdbcInbox.builder(database.dataSource()).scheduler(scheduler).purgeEvery(Duration.ofHours(1))
                .build();
        markProcessed(inbox, "m-1"); // processed at T0

        scheduler.advance(Duration.ofDays(7)); // the run at T0 + 7 days deletes what is older than T0

        assertEquals(1, outboxRows("SENT"));
        assertEquals(1, inboxRows());
        scheduler.advance(Duration.ofHours(1));
        assertEquals(0, outboxRows("SENT"), "deleted once older than 7 days");
        assertEquals(0, inboxRows(), "deleted once older than 7 days");
        relay.close();
        inbox.close();
    }

    @Test
    void aScheduledPurgeWithAMissingZeroOrNegativeDurationOrNoSchedulerIsRefusedBeforeAnythingIsScheduled() {
        assertThrows(ConfigurationException.class, () -> relay(database.dataSource()).retention(null).build());
        assertThrows(ConfigurationException.class, () -> relay(database.dataSource()).purgeEvery(null).build());
        ConfigurationException zero = assertThrows(ConfigurationException.class, () -> relay(database.dataSource())
                .retention(Duration.ZERO).build());
        assertTrue(zero.getMessage().contains("retention must be positive, but was PT0S"), zero.getMessage());
        assertThrows(ConfigurationException.class, () -> relay(database.dataSource())
                .purgeEvery(Duration.ofMinutes(-1)).build());
        ConfigurationException alone = assertThrows(ConfigurationException.class, () -> OutboxRelay
                .builder(database.dataSource()).scheduler(scheduler).publisher(m -> CompletableFuture.completedFuture(null))
                .retention(RETENTION).build());
        assertTrue(alone.getMessage().contains("it would purge nothing"), alone.getMessage());

        ConfigurationException inbox = assertThrows(ConfigurationException.class,
                () -> JdbcInbox.builder(database.dataSource()).retention(Duration.ZERO));
        assertTrue(inbox.getMessage().contains("retention must be positive, but was PT0S"), inbox.getMessage());
        assertThrows(ConfigurationException.class, () -> JdbcInbox.builder(database.dataSource()).purgeEvery(null));
        assertThrows(ConfigurationException.class,
                () -> JdbcInbox.builder(database.dataSource()).purgeEvery(Duration.ZERO));
        assertThrows(ConfigurationException.class,
                () -> JdbcInbox.builder(database.dataSource()).purgeEvery(INTERVAL).build(), "no scheduler");
        assertThrows(ConfigurationException.class, () -> JdbcInbox.builder(database.dataSource()).scheduler(scheduler)
                .retention(RETENTION).build(), "a retention without purgeEvery");
        assertThrows(ConfigurationException.class, () -> JdbcInbox.builder(database.dataSource()).scheduler(scheduler)
                .clock(scheduler.clock()).purgeEvery(INTERVAL).build(), "a clock and a scheduler");

        ConfigurationException dedup = assertThrows(ConfigurationException.class,
                () -> JdbcDeduplicationStore.builder(database.dataSource()).purgeEvery(Duration.ZERO));
        assertTrue(dedup.getMessage().contains("purgeInterval must be positive, but was PT0S"), dedup.getMessage());
        assertThrows(ConfigurationException.class,
                () -> JdbcDeduplicationStore.builder(database.dataSource()).purgeEvery(INTERVAL).build(), "no scheduler");
        assertThrows(ConfigurationException.class,
                () -> JdbcDeduplicationStore.builder(database.dataSource()).scheduler(scheduler).build(), "no purgeEvery");
        assertEquals(0, scheduler.pendingTasks(), "nothing was scheduled");
    }

    private void markProcessed(JdbcInbox inbox, String... ids) {
        tx.run(c -> {
            for (String id : ids) {
                assertTrue(inbox.markProcessed(c, "billing", id));
            }
        });
    }

    private long inboxRows() {
        return database.queryLong("SELECT COUNT(*) FROM ss_inbox");
    }

    @Test
    void theInboxPurgesRowsProcessedLongerAgoThanItsRetentionAndKeepsNewerOnes() {
        JdbcInbox inbox = JdbcInbox.builder(database.dataSource()).scheduler(scheduler).retention(RETENTION)
                .purgeEvery(INTERVAL).build();
        markProcessed(inbox, "m-1", "m-2", "m-3");
        scheduler.advance(Duration.ofMinutes(45));
        markProcessed(inbox, "m-4");

        scheduler.advance(Duration.ofMinutes(25)); // T0 + 70 min: runs at 60 (nothing) and 70 (before T0 + 10 min)

        assertEquals(1, inboxRows());
        assertTrue(inbox.isProcessed("billing", "m-4"));
        assertFalse(inbox.isProcessed("billing", "m-1"));
        inbox.close();
    }

    @Test
    void aFailedInboxPurgeIsCountedAndRetriedAtTheNextIntervalAndNoneRunsAfterClose() {
        JdbcInbox inbox = JdbcInbox.builder(gated).scheduler(scheduler).retention(RETENTION).purgeEvery(INTERVAL)
                .metrics(metrics).build();
        markProcessed(inbox, "m-1");
        scheduler.advance(RETENTION);
        unreachable.set(true);
        scheduler.advance(INTERVAL);
        assertEquals(1, inboxRows(), "the run failed");
        assertEquals(1, metrics.count(JdbcInbox.PURGE_FAILURES_METRIC + "{inbox=default}"));
        unreachable.set(false);
        markProcessed(inbox, "m-2");

        scheduler.advance(INTERVAL);

        assertEquals(1, inboxRows(), "the next run deleted the old row");
        assertEquals(1, metrics.count(JdbcInbox.PURGE_FAILURES_METRIC + "{inbox=default}"), "the next run succeeded");
        inbox.close();
        scheduler.advance(Duration.ofHours(3));
        assertEquals(1, inboxRows(), "no purge runs after close()");
        assertTrue(inbox.isProcessed("billing", "m-2"), "the inbox itself goes on working");
    }

    @Test
    void theDeduplicationStorePurgesExpiredKeysAndEndedClaimsAndKeepsLiveKeysAndClaimsInProgress() {
        JdbcDeduplicationStore store = JdbcDeduplicationStore.builder(gated).window(RETENTION).metrics(metrics)
                .scheduler(scheduler).purgeEvery(INTERVAL).build();
        Instant t0 = scheduler.now();
        assertEquals(ClaimOutcome.ACQUIRED, store.tryClaim("done-old", "a", t0, Duration.ofMinutes(1)));
        assertTrue(store.complete("done-old", "a", t0));
        assertEquals(ClaimOutcome.ACQUIRED, store.tryClaim("abandoned", "a", t0, Duration.ofMinutes(1)));
        assertEquals(ClaimOutcome.ACQUIRED, store.tryClaim("in-progress", "a", t0, Duration.ofHours(5)));
        scheduler.advance(Duration.ofMinutes(45));
        assertEquals(ClaimOutcome.ACQUIRED, store.tryClaim("done-new", "a", scheduler.now(), Duration.ofMinutes(1)));
        assertTrue(store.complete("done-new", "a", scheduler.now()));
        unreachable.set(true);
        scheduler.advance(Duration.ofMinutes(25)); // runs at 50 (unreachable), 60, 70
        assertEquals(3, metrics.count(JdbcDeduplicationStore.PURGE_FAILURES_METRIC + "{store=default}"));
        unreachable.set(false);

        scheduler.advance(INTERVAL); // T0 + 80 min

        assertEquals(1, metrics.count(JdbcDeduplicationStore.EVICTIONS_METRIC + "{reason=expired, store=default}"));
        assertEquals(2, database.queryLong("SELECT COUNT(*) FROM ss_dedup"));
        assertTrue(store.isDone("done-new", scheduler.now()));
        assertEquals(ClaimOutcome.IN_PROGRESS, store.tryClaim("in-progress", "b", scheduler.now(), Duration.ofMinutes(1)));
        store.close();
        scheduler.advance(Duration.ofHours(3));
        assertEquals(2, database.queryLong("SELECT COUNT(*) FROM ss_dedup"), "no purge runs after close()");
    }

    /**
     * Stops the thread of the purge run due one interval from now (a ThreadDeath from its first connection): asserts
     * that the run throws it on and says at WARN that the purge of {@code what} stops; then that no run follows it.
     */
    private void assertAPurgeWhoseThreadIsStoppedRunsNoMore(String what, Runnable keptRows) throws Throwable {
        stopThread.set(true);
        String log = CapturedLog.ofThisThread(() -> assertThrows(ThreadDeath.class, () -> scheduler.advance(INTERVAL),
                "thrown on, as ThreadDeath's Javadoc asks"));
        assertTrue(log.contains("WARN io.streamsaga.time.Scheduler - " + what + ": the scheduled purge"
                + " stops for good, its thread stopped (java.lang.ThreadDeath)"), log);
        scheduler.advance(Duration.ofHours(3));
        keptRows.run();
    }

    @Test
    @SuppressWarnings("removal") // ThreadDeath: what Thread.stop throws in the stopped thread, on the JDKs that have it
    void aRelayPurgeWhoseThreadIsStoppedSaysSoAndRunsNoMoreAsTheRelaysPollDoes() throws Throwable {
        append("notes", 3);
        OutboxRelay relay = relay(gated).build();
        relay.start(); // sent at T0
        scheduler.advance(RETENTION);

        assertAPurgeWhoseThreadIsStoppedRunsNoMore("outbox relay 'default': sent rows older than PT1H",
                () -> assertEquals(3, outboxRows("SENT"), "no purge ran after it"));
        relay.close();
    }

    @Test
    @SuppressWarnings("removal")
    void anInboxPurgeWhoseThreadIsStoppedSaysSoAndRunsNoMore() throws Throwable {
        JdbcInbox inbox = JdbcInbox.builder(gated).scheduler(scheduler).retention(RETENTION).purgeEvery(INTERVAL)
                .build();
        markProcessed(inbox, "m-1");
        scheduler.advance(RETENTION);

        assertAPurgeWhoseThreadIsStoppedRunsNoMore("inbox 'default': rows processed more than PT1H ago",
                () -> assertEquals(1, inboxRows(), "no purge ran after it"));
        inbox.close();
    }

    @Test
    @SuppressWarnings("removal")
    void aDeduplicationStorePurgeWhoseThreadIsStoppedSaysSoAndRunsNoMore() throws Throwable {
        JdbcDeduplicationStore store = JdbcDeduplicationStore.builder(gated).window(RETENTION).scheduler(scheduler)
                .purgeEvery(INTERVAL).build();
        scheduler.advance(RETENTION.minus(INTERVAL));
        assertEquals(ClaimOutcome.ACQUIRED, store.tryClaim("done", "a", scheduler.now(), Duration.ofMinutes(1)));
        assertTrue(store.complete("done", "a", scheduler.now())); // expires 10 minutes after the run stopped

        assertAPurgeWhoseThreadIsStoppedRunsNoMore("deduplication store 'default': expired, evicted and abandoned keys",
                () -> assertEquals(1, database.queryLong("SELECT COUNT(*) FROM ss_dedup"), "no purge ran after it"));
        store.close();
    }

    @Test
    void inboxesOfOneProcessAreToldApartByNameInThePurgesLogAndFailureMetric() throws Throwable {
        JdbcInbox orders = JdbcInbox.builder(gated).name("orders").scheduler(scheduler).retention(RETENTION)
                .purgeEvery(INTERVAL).metrics(metrics).build();
        JdbcInbox billing = JdbcInbox.builder(database.dataSource()).name("billing").scheduler(scheduler)
                .retention(RETENTION).purgeEvery(INTERVAL).metrics(metrics).build();
        unreachable.set(true); // the orders inbox's database only

        String log = CapturedLog.ofThisThread(() -> scheduler.advance(INTERVAL));

        assertEquals(1, metrics.count(JdbcInbox.PURGE_FAILURES_METRIC + "{inbox=orders}"));
        assertEquals(0, metrics.count(JdbcInbox.PURGE_FAILURES_METRIC + "{inbox=billing}"));
        assertTrue(log.contains("WARN io.streamsaga.jdbc.internal.PeriodicPurge - inbox 'orders': rows processed more"
                + " than PT1H ago: purge failed"), log);
        assertFalse(log.contains("'billing'"), log);
        ConfigurationException blank = assertThrows(ConfigurationException.class,
                () -> JdbcInbox.builder(database.dataSource()).name(" "));
        assertTrue(blank.getMessage().contains("inbox name must be 1 to 100 characters"), blank.getMessage());
        orders.close();
        billing.close();
    }

    @Test
    void aPurgeYieldsTheSchedulersThreadBetweenBatchesSoATimerDueMeanwhileRunsBeforeItsNextBatch() {
        append("notes", 1001); // three batches
        OutboxRelay relay = relay(database.dataSource()).build();
        relay.start(); // sent at T0
        scheduler.advance(RETENTION.plus(INTERVAL).minusMinutes(1)); // the run at T0 + 70 min deletes them
        AtomicLong sentWhenTheTimerRan = new AtomicLong(-1);
        // Another component's timer on the same scheduler (a saga's timeout, say), due with the purge, armed after it
        scheduler.schedule(Duration.ofMinutes(1), () -> sentWhenTheTimerRan.set(outboxRows("SENT")));

        scheduler.advance(Duration.ofMinutes(1));

        assertEquals(501, sentWhenTheTimerRan.get(), "the timer ran after the purge's first batch, not after all three");
        assertEquals(0, outboxRows("SENT"), "the purge's run went on to its end");
        relay.close();
    }

    @Test
    void aRelayClosedBetweenTwoBatchesOfAPurgeStartsNoFurtherBatchAndLeavesNothingScheduled() {
        append("notes", 1001); // three batches
        OutboxRelay relay = relay(database.dataSource()).build();
        relay.start(); // sent at T0
        scheduler.advance(RETENTION.plus(INTERVAL).minusMinutes(1)); // the run at T0 + 70 min deletes them
        AtomicLong sentWhenClosed = new AtomicLong(-1);
        // Due with the purge, armed after it: runs between its first and second batches
        scheduler.schedule(Duration.ofMinutes(1), () -> {
            relay.close();
            sentWhenClosed.set(outboxRows("SENT"));
        });

        scheduler.advance(Duration.ofMinutes(1));

        assertEquals(501, sentWhenClosed.get(), "closed after the run's first batch");
        assertEquals(501, outboxRows("SENT"), "no batch after close()");
        assertEquals(0, scheduler.pendingTasks(), "neither the run's next batch nor a next run is left scheduled");
        scheduler.advance(Duration.ofHours(3));
        assertEquals(501, outboxRows("SENT"), "no purge runs after close()");
    }

    @Test
    void aRunWhoseSecondBatchFailsIsCountedOnceAndTheNextIntervalDeletesTheRest() {
        append("notes", 1001); // three batches
        OutboxRelay relay = relay(gated).build();
        relay.start(); // sent at T0
        scheduler.advance(RETENTION.plus(INTERVAL).minusMinutes(1)); // the run at T0 + 70 min deletes them
        // Due with the purge, armed after it: the database goes away between its first and second batches
        scheduler.schedule(Duration.ofMinutes(1), () -> unreachable.set(true));

        scheduler.advance(Duration.ofMinutes(1));

        assertEquals(501, outboxRows("SENT"), "the run ended at its failed second batch");
        assertEquals(1, metrics.count(OutboxRelay.PURGE_FAILURES_METRIC + "{relay=default}"), "one failed run, once");
        unreachable.set(false);
        scheduler.advance(INTERVAL.minusSeconds(1));
        assertEquals(501, outboxRows("SENT"), "the next run comes one interval after the failed batch");
        scheduler.advance(Duration.ofSeconds(1));
        assertEquals(0, outboxRows("SENT"), "the next run deleted the rest");
        assertEquals(1, metrics.count(OutboxRelay.PURGE_FAILURES_METRIC + "{relay=default}"));
        relay.close();
    }
}
