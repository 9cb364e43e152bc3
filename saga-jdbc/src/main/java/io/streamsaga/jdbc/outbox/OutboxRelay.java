package io.streamsaga.jdbc.outbox;

import io.streamsaga.jdbc.internal.Sql;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.streamsaga.ConfigurationException;
import io.streamsaga.StreamSagaException;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.TransportClosedException;
import io.streamsaga.jdbc.JdbcException;
import io.streamsaga.jdbc.JdbcTransactions;
import io.streamsaga.message.Message;
import io.streamsaga.metrics.MetricsRecorder;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.spi.SimulatedProcessCrash;
import io.streamsaga.spi.Transport;
import io.streamsaga.time.Scheduler;
import io.streamsaga.jdbc.internal.Columns;
import io.streamsaga.jdbc.internal.Locks;
import io.streamsaga.jdbc.internal.PeriodicPurge;
import io.streamsaga.jdbc.internal.SchemaCheck;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import javax.sql.DataSource;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Random;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Publishes the outbox's committed rows to the bus (or straight to a transport), at least once and in
 * order per key, and marks them sent.
 *
 * <p>How it keeps its promises:
 * <ul>
 *   <li><b>Order.</b> Rows are published one at a time in sequence order, each awaited before the next;
 *       a batch stops at the first retriable failure, so no later row (of any key) overtakes it. One lock
 *       row ({@code ss_outbox_lock}, selected {@code FOR UPDATE}) makes relays on several nodes take
 *       turns instead of interleaving; a batch runs at {@code READ COMMITTED} whatever the pool's isolation level,
 *       so the relay that waited for the lock sees the rows the other one marked sent.</li>
 *   <li><b>At least once.</b> A row is marked sent only after the transport acknowledged it, in the
 *       transaction that holds the lock. A relay that crashes before committing leaves its rows pending,
 *       and the next relay publishes them again: consumers see duplicates (same message id), which the
 *       inbox filters.</li>
 *   <li><b>Broker outage.</b> A retriable publish failure (any exception or {@link Error} but a non-retriable
 *       {@link StreamSagaException}, a {@link VirtualMachineError} other than a {@link StackOverflowError} and a
 *       {@link ThreadDeath}; or a database failure) is recorded on the row
 *       and the relay polls again after a backoff from its {@link RetryPolicy} (only the delays are used:
 *       the relay never gives up on a retriable failure), through the {@link Scheduler}.</li>
 *   <li><b>A {@link VirtualMachineError}</b> (an {@link OutOfMemoryError}, say) in a poll rolls its batch back without
 *       writing anything more (the row is left as it was), is logged at ERROR with its stack trace, counts as a
 *       failed poll ({@link #consecutiveFailures()}) and the relay polls again after the backoff: it is not thrown to
 *       the executor, where it ended the poll and with it the relay, unseen. {@link #relayPending()} throws it. An
 *       Error thrown while it is logged (the heap still exhausted) fails the poll as well: the relay counts it, polls
 *       again after the backoff, and then that second Error goes on to the executor.</li>
 *   <li><b>A {@link ThreadDeath}</b> (the polling thread stopped with {@code Thread.stop}) rolls its batch back without
 *       writing anything more and is thrown on, as its Javadoc asks of whoever catches it: that poll schedules no next
 *       one (logged at WARN; {@link #wakeUp()} polls again), and {@link #relayPending()} throws it.</li>
 *   <li><b>Poison rows.</b> A non-retriable rejection marks the row FAILED with the error (logged, kept,
 *       counted by {@link JdbcOutbox#failedCount()}), and the relay goes on with the next row; so does a row that
 *       cannot be read as a message (written by other SQL, or corrupted), which every batch would fail on.</li>
 *   <li><b>Closed transport.</b> A {@link TransportClosedException} (the transport, or the bus's, was closed
 *       before the relay) is not the row's fault: the row stays PENDING, untouched, and the relay stops as if
 *       {@linkplain #close() closed}, leaving the backlog to the next relay.</li>
 * </ul>
 *
 * <p>{@link #start()} polls every {@code pollInterval}; {@link #wakeUp()} polls now (call it after
 * committing a transaction that appended, for low latency); {@link #relayPending()} publishes on the
 * calling thread (tests, shutdown hooks). Polls run on the relay's executor, one at a time. Thread-safe.
 */
public final class OutboxRelay implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(OutboxRelay.class);
    /** Counter of rows published and marked sent, tagged {@code relay}. */
    public static final String PUBLISHED_METRIC = "streamsaga_outbox_published_total";
    /** Counter of failed publish attempts, tagged {@code relay} and {@code kind} ({@code retriable} or {@code rejected}). */
    public static final String FAILURES_METRIC = "streamsaga_outbox_publish_failures_total";
    /** Counter of failed runs of the scheduled purge ({@link Builder#purgeEvery}), tagged {@code relay}. */
    public static final String PURGE_FAILURES_METRIC = "streamsaga_outbox_purge_failures_total";

    private final Config config;
    private final JdbcTransactions tx;
    private final Executor executor;
    private final ExecutorService ownedExecutor;
    private final ObjectMapper json = new ObjectMapper();
    private final Random random = new Random();
    /** Held by the poll or {@link #relayPending} in progress; close() waits for it. */
    private final ReentrantLock pollLock = new ReentrantLock();
    /** The relay's polls on the configured scheduler, which others may share: close() cancels the next one. */
    private final Scheduler polls;
    /** The scheduled purge of sent rows, on {@link #polls}; null without one. */
    private final PeriodicPurge purge;
    private final Object scheduleLock = new Object();
    private volatile boolean started;
    private volatile boolean closed;
    private volatile int consecutiveFailures;
    private Scheduler.Cancellable nextPoll;
    /** Whether a refused reschedule was logged; under scheduleLock. */
    private boolean refusalLogged;
    private boolean lockRowEnsured;

    private OutboxRelay(Config config, Executor executor) {
        this.config = config;
        // Read committed whatever the pool's level: the batch reads the outbox after waiting for the lock, and must see
        // the rows another node's relay marked sent meanwhile (at REPEATABLE READ it published them all again).
        this.tx = new JdbcTransactions(config.dataSource()).withIsolation(Connection.TRANSACTION_READ_COMMITTED);
        this.polls = Scheduler.scoped(config.scheduler(), "outbox relay '" + config.name() + "'");
        this.purge = config.purgeInterval() == null ? null : new PeriodicPurge(polls, config.purgeInterval(),
                "outbox relay '" + config.name() + "': sent rows older than " + config.retention(),
                (now, maxRows) -> OutboxRows.purgeSent(tx, now.minus(config.retention()), maxRows),
                config.metrics(), PURGE_FAILURES_METRIC, Map.of("relay", config.name()));
        if (executor == null) {
            this.ownedExecutor = Executors.newSingleThreadExecutor(r -> {
                Thread t = new Thread(r, "streamsaga-outbox-relay-" + config.name());
                t.setDaemon(true);
                return t;
            });
            this.executor = ownedExecutor;
        } else {
            this.ownedExecutor = null;
            this.executor = executor;
        }
    }

    /** Starts a relay for the outbox tables of {@code dataSource}. */
    public static Builder builder(DataSource dataSource) {
        return new Builder(dataSource);
    }

    /** Where the relay publishes: completes when the message is durable on the transport. */
    @FunctionalInterface
    public interface MessagePublisher {
        CompletionStage<?> publish(Message message);
    }

    /**
     * Immutable relay configuration.
     *
     * @param dataSource     the database holding the outbox
     * @param publisher      where rows are published
     * @param scheduler      time for polling and backoff
     * @param name           the relay's lock name, 1 to 100 characters without U+0000 or a lone surrogate; relays with
     *                       the same name take turns
     * @param batchSize      rows read and marked per transaction
     * @param pollInterval   delay between polls when the outbox is empty
     * @param backoff        delays after failures (attempt limits are ignored), from an {@code initialBackoff} of at
     *                       least 1 ms
     * @param publishTimeout how long to wait for one acknowledgement before treating it as failed
     * @param metrics        where published rows and failures are counted; kept {@link MetricsRecorder#guarded guarded}
     * @param retention      how long sent rows are kept before the scheduled purge deletes them, positive; null
     *                       without a scheduled purge
     * @param purgeInterval  how often the scheduled purge runs, positive; null (with {@code retention}) without one
     */
    public record Config(DataSource dataSource, MessagePublisher publisher, Scheduler scheduler, String name,
                         int batchSize, Duration pollInterval, RetryPolicy backoff, Duration publishTimeout,
                         MetricsRecorder metrics, Duration retention, Duration purgeInterval) {
        public Config {
            metrics = MetricsRecorder.guarded(Objects.requireNonNull(metrics, "metrics")); // what it throws: logged, ignored
            Objects.requireNonNull(dataSource, "dataSource");
            ConfigurationException.require(publisher != null, "an outbox relay needs a publisher (eventBus, transport or publisher)");
            Objects.requireNonNull(scheduler, "scheduler");
            ConfigurationException.require(name != null && !name.isBlank() && name.length() <= 100,
                    "relay name must be 1 to 100 characters, but was %s", StreamSagaException.quote(name));
            Columns.requireFits(name, 100, "relay name", "");
            ConfigurationException.require(batchSize > 0, "batchSize must be positive, but was %s", batchSize);
            ConfigurationException.require(pollInterval != null && pollInterval.compareTo(Duration.ofMillis(1)) >= 0,
                    "pollInterval must be at least 1 ms, but was %s", pollInterval);
            ConfigurationException.requirePositive(pollInterval, "pollInterval");
            Objects.requireNonNull(backoff, "backoff");
            // Its delays are what keeps a relay from hammering a broker that is down (and the row, and the log).
            ConfigurationException.require(backoff.initialBackoff().compareTo(Duration.ofMillis(1)) >= 0,
                    "backoff must wait at least 1 ms after a failed poll, but its initialBackoff was %s",
                    backoff.initialBackoff());
            ConfigurationException.require(publishTimeout != null && publishTimeout.compareTo(Duration.ofMillis(1)) >= 0,
                    "publishTimeout must be at least 1 ms, but was %s", publishTimeout);
            ConfigurationException.requirePositive(publishTimeout, "publishTimeout");
            // A retention without an interval would purge nothing while the application believes it does.
            ConfigurationException.require((retention == null) == (purgeInterval == null), "a scheduled purge of"
                    + " sent rows needs both a retention and a purge interval, but was given retention %s and purge"
                    + " interval %s", retention, purgeInterval);
            if (retention != null) { // null: sent rows are deleted only by JdbcOutbox.purgeSent
                // Positive: a sent row deleted at once no longer keeps its message id from being appended again.
                retention = ConfigurationException.requirePositiveAge(retention, "retention");
                ConfigurationException.requirePositive(purgeInterval, "purgeInterval");
            }
        }
    }

    /** This relay's configuration. */
    public Config config() {
        return config;
    }

    /** Failed polls in a row (0 after a successful one). */
    public int consecutiveFailures() {
        return consecutiveFailures;
    }

    /**
     * Starts polling: the first poll runs at once on the relay's executor; and the scheduled purge of sent rows, when
     * configured ({@link Builder#purgeEvery}), whose first run is one interval later (armed by the first call; a relay
     * never started purges nothing).
     */
    public void start() {
        ConfigurationException.require(!closed, "relay '%s' is closed", config.name());
        synchronized (scheduleLock) {
            if (!started && purge != null) {
                purge.start();
            }
            started = true;
        }
        wakeUp();
    }

    /** Polls now instead of waiting for the next interval (no-op until {@link #start()}). */
    public void wakeUp() {
        if (!started || closed) {
            return;
        }
        synchronized (scheduleLock) {
            if (nextPoll != null) {
                nextPoll.cancel();
                nextPoll = null;
            }
        }
        execute();
    }

    /** Hands a poll to the executor; once closed, the relay's own executor is shut down and this is a no-op. */
    private void execute() {
        try {
            executor.execute(this::poll);
        } catch (RejectedExecutionException e) {
            if (!closed) {
                throw e;
            }
        }
    }

    /**
     * Publishes every pending row on the calling thread, batch after batch, until none is left, a
     * publish fails or the relay is closed; returns how many rows were published.
     *
     * @throws JdbcException when the database cannot be reached
     */
    public int relayPending() {
        pollLock.lock();
        try {
            int published = 0;
            while (!closed) { // checked under the lock: once close() has returned, nothing starts
                BatchResult r = relayBatch();
                published += r.published;
                if (r.failed || r.fetched < config.batchSize()) {
                    break;
                }
            }
            return published;
        } finally {
            pollLock.unlock();
        }
    }

    private void poll() {
        if (closed) {
            return;
        }
        Duration delay = null; // null: no next poll (closed meanwhile, a test's process dying, the thread stopped)
        pollLock.lock();
        try {
            if (closed) { // checked under the lock: once close() has returned, nothing starts
                return;
            }
            // Failed until the batches say otherwise: whatever escapes below fails the poll too, such as a second Error
            // thrown by the log call for the first (the heap still exhausted), which ended the poll before it
            // rescheduled itself and stopped the relay for good.
            boolean failed = true;
            boolean crashed = false;
            try {
                BatchResult r;
                do {
                    r = relayBatch();
                } while (!r.failed && r.fetched == config.batchSize() && !closed);
                failed = r.failed;
            } catch (SimulatedProcessCrash | ThreadDeath e) {
                // A test's process dying here, or this thread stopped (Thread.stop, whose ThreadDeath a catcher must
                // rethrow so that the thread dies): nothing of the poll runs on, and no next poll
                crashed = true;
                if (e instanceof ThreadDeath) { // its executor's thread dies of it unseen (ThreadGroup ignores it)
                    log.warn("outbox relay '{}': its polling stops, its thread stopped ({}); wakeUp() polls again",
                            config.name(), e.toString());
                }
                throw e;
            } catch (RuntimeException | Error e) {
                // An Error too, a VirtualMachineError included: a poll that ends without rescheduling itself stops the
                // relay for good, unseen. An OutOfMemoryError is often one huge message or a burst the process survives;
                // if the process is dying, the next poll does not matter.
                if (e instanceof VirtualMachineError) {
                    log.error("outbox relay '{}' could not poll; nothing of the batch was marked, and it polls again after"
                            + " its backoff", config.name(), e);
                } else {
                    log.warn("outbox relay '{}' could not poll: {}", config.name(), e.toString());
                }
            } finally {
                if (!crashed) {
                    delay = delayAfter(failed);
                }
            }
        } finally {
            pollLock.unlock();
            if (delay != null) {
                scheduleNext(delay); // what the log threw, if anything, goes on to the executor after this
            }
        }
    }

    /** The delay before the next poll after one that {@code failed} or not; counts the failures in a row. */
    private Duration delayAfter(boolean failed) {
        if (!failed) {
            consecutiveFailures = 0;
            return config.pollInterval();
        }
        consecutiveFailures++;
        Duration delay = config.backoff().delayBefore(consecutiveFailures + 1, random);
        return delay.toMillis() < 1 ? Duration.ofMillis(1) : delay;
    }

    private void scheduleNext(Duration delay) {
        synchronized (scheduleLock) {
            if (closed) {
                return;
            }
            if (nextPoll != null) {
                nextPoll.cancel();
            }
            try {
                nextPoll = polls.schedule(delay, () -> {
                    if (!closed) {
                        execute();
                    }
                });
            } catch (RejectedExecutionException e) {
                // The scheduler (a bus's own) was closed before this relay: the poll runs on the relay's executor,
                // not on a task of the scope (which would log it so itself), and would hand the refusal to it.
                nextPoll = null;
                if (!closed && !refusalLogged) {
                    refusalLogged = true;
                    log.warn("outbox relay '{}': its scheduler was closed before it, so its timers stop (close the"
                            + " components built on a bus before the bus)", config.name());
                }
            }
        }
    }

    private record BatchResult(int fetched, int published, boolean failed, boolean transportClosed) {
    }

    private BatchResult relayBatch() {
        ensureLockRow();
        BatchResult result = tx.inTransaction(connection -> {
            lock(connection);
            List<PendingRow> rows = pending(connection);
            List<Long> sent = new ArrayList<>(rows.size());
            boolean failed = false;
            boolean transportClosed = false;
            for (PendingRow pending : rows) {
                if (closed) {
                    break;
                }
                if (pending.unreadable() != null) {
                    // a poison row: the same read fails at every batch, and would hold back every row after it for good
                    recordFailure(connection, pending.sequence(), pending.unreadable(), false);
                    config.metrics().increment(FAILURES_METRIC, Map.of("relay", config.name(), "kind", "rejected"));
                    log.error("outbox relay '{}': outbox row {} cannot be read and is marked FAILED: {}", config.name(),
                            pending.sequence(), pending.unreadable().toString());
                    continue;
                }
                OutboxRow row = pending.row();
                if (pending != rows.get(0)) {
                    // The transaction sat idle while the last row was acknowledged: a server may have ended the session
                    // meanwhile (PostgreSQL's idle_in_transaction_session_timeout), and the lock with it, so that another
                    // node's relay took the batch. Selecting the lock row again fails then, before this row goes out
                    // after that relay's, and restarts the idle timer otherwise.
                    selectLockRow(connection);
                }
                Throwable error = publish(row.message());
                if (error == null) {
                    sent.add(row.sequence());
                    continue;
                }
                if (isTransportClosed(error)) {
                    // not the row's fault: it stays PENDING, untouched, for a relay that can still publish
                    transportClosed = true;
                    break;
                }
                boolean retriable = !(error instanceof StreamSagaException sse) || sse.isRetriable();
                recordFailure(connection, row.sequence(), error, retriable);
                config.metrics().increment(FAILURES_METRIC, Map.of("relay", config.name(),
                        "kind", retriable ? "retriable" : "rejected"));
                if (retriable) {
                    log.warn("outbox relay '{}' could not publish {} (attempt {}), will retry: {}", config.name(),
                            row.message(), row.attempts() + 1, error.toString());
                    failed = true;
                    break;
                }
                log.error("outbox relay '{}': {} was rejected for good and is marked FAILED: {}", config.name(),
                        row.message(), error.toString());
            }
            markSent(connection, sent);
            return new BatchResult(rows.size(), sent.size(), failed, transportClosed);
        });
        if (result.transportClosed) {
            log.warn("outbox relay '{}' stops: its transport is closed; the pending rows stay pending for the next relay",
                    config.name());
            close();
        }
        // counted once committed: a relay that dies before the commit has marked nothing sent
        for (int i = 0; i < result.published; i++) {
            config.metrics().increment(PUBLISHED_METRIC, Map.of("relay", config.name()));
        }
        return result;
    }

    private Throwable publish(Message message) {
        try {
            config.publisher().publish(message).toCompletableFuture()
                    .get(config.publishTimeout().toMillis(), TimeUnit.MILLISECONDS);
            return null;
        } catch (ExecutionException e) {
            return e.getCause() != null ? e.getCause() : e;
        } catch (TimeoutException e) {
            return new StreamSagaException("no acknowledgement within " + config.publishTimeout(), e, true);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new StreamSagaException("interrupted while publishing", e, true);
        } catch (RuntimeException | Error e) {
            if (isProcessDying(e)) {
                // Nothing more is written in the batch's transaction, which rolls back: nothing is marked, and the
                // next poll (logged, after the backoff) or the next relay publishes the row again.
                throw e;
            }
            // An Error too (an interceptor's AssertionError or StackOverflowError, a codec's NoClassDefFoundError) is
            // the row's failure, retried after the backoff: thrown on, it ended the poll, which never rescheduled itself.
            return e;
        }
    }

    /**
     * Whether {@code e} says the process may be dying (or a test says so) or the thread is being stopped (a
     * {@link ThreadDeath}), to be thrown on out of the batch, which then writes nothing more: a VirtualMachineError but
     * a StackOverflowError, which unwound the recursion that overflowed and leaves the thread and the process sound.
     */
    private static boolean isProcessDying(Throwable e) {
        return e instanceof SimulatedProcessCrash || e instanceof ThreadDeath
                || e instanceof VirtualMachineError && !(e instanceof StackOverflowError);
    }

    private static boolean isTransportClosed(Throwable error) {
        for (Throwable e = error; e != null; e = e.getCause()) {
            if (e instanceof TransportClosedException) {
                return true;
            }
        }
        return false;
    }

    private void ensureLockRow() {
        if (lockRowEnsured) {
            return;
        }
        try {
            tx.run(this::insertLockRow);
        } catch (JdbcException e) {
            // another node inserted the same lock row at the same moment: it exists now
            if (!"23505".equals(e.sqlState())) {
                throw e;
            }
        }
        lockRowEnsured = true;
    }

    private void insertLockRow(Connection connection) throws SQLException {
        try (PreparedStatement ps = connection.prepareStatement("MERGE INTO ss_outbox_lock l USING (VALUES (CAST(? AS VARCHAR(100))))"
                + " AS s(name) ON l.name = s.name WHEN NOT MATCHED THEN INSERT (name) VALUES (s.name)")) {
            ps.setString(1, config.name());
            ps.executeUpdate();
        }
    }

    /**
     * Locks the relay's row for this transaction. A row deleted since it was written (an operator clearing what looks
     * like stale locks) is written again in this transaction, which then holds it: locking no row kept no other relay
     * of the name out, and both published the same rows. Two relays writing it again at once: the second fails on the
     * key (a retriable failure of its poll) or waits for the first and locks the row it committed.
     */
    private void lock(Connection connection) throws SQLException {
        if (!selectLockRow(connection)) {
            log.warn("outbox relay '{}': its lock row in ss_outbox_lock was deleted; writing it again", config.name());
            insertLockRow(connection);
            selectLockRow(connection);
        }
    }

    private boolean selectLockRow(Connection connection) throws SQLException {
        try (PreparedStatement ps = connection.prepareStatement("SELECT name FROM ss_outbox_lock WHERE name = ? FOR UPDATE")) {
            ps.setString(1, config.name());
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next();
            }
        }
    }

    /** A pending row as read: the row, or why it cannot be read (then null). */
    private record PendingRow(long sequence, OutboxRow row, Exception unreadable) {
    }

    private List<PendingRow> pending(Connection connection) throws SQLException {
        try (PreparedStatement ps = connection.prepareStatement(
                OutboxRows.SELECT + " WHERE status = 'PENDING' ORDER BY seq LIMIT ?")) {
            ps.setInt(1, config.batchSize());
            List<PendingRow> rows = new ArrayList<>();
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    long sequence = rs.getLong("seq");
                    try {
                        rows.add(new PendingRow(sequence, OutboxRows.read(rs, json), null));
                    } catch (OutboxRows.UnreadableRow e) {
                        rows.add(new PendingRow(sequence, null, e));
                    } catch (RuntimeException e) {
                        // written by other SQL than the outbox's (a trigger) or corrupted: a message that cannot be built
                        rows.add(new PendingRow(sequence, null, OutboxRows.unreadable(sequence, e)));
                    }
                }
            }
            return rows;
        }
    }

    private void markSent(Connection connection, List<Long> sequences) throws SQLException {
        if (sequences.isEmpty()) {
            return;
        }
        try (PreparedStatement ps = connection.prepareStatement(
                "UPDATE ss_outbox SET status = 'SENT', sent_at = ? WHERE seq = ?")) {
            java.time.Instant now = config.scheduler().clock().instant();
            for (Long seq : sequences) {
                Sql.setInstant(ps, 1, now);
                ps.setLong(2, seq);
                ps.addBatch();
            }
            ps.executeBatch();
        }
    }

    private void recordFailure(Connection connection, long sequence, Throwable error, boolean retriable)
            throws SQLException {
        try (PreparedStatement ps = connection.prepareStatement(
                "UPDATE ss_outbox SET attempts = attempts + 1, last_error = ?, status = ? WHERE seq = ?")) {
            ps.setString(1, Columns.text(error.toString(), 2000));
            ps.setString(2, retriable ? "PENDING" : "FAILED");
            ps.setLong(3, sequence);
            ps.executeUpdate();
        }
    }

    /**
     * Stops polling; the outbox rows stay as they are. A poll or {@link #relayPending} in progress on another thread
     * finishes its current row (publishes it and marks it sent, or records its failure) and starts no other:
     * close() waits for it, up to its scheduler's {@link Scheduler#closeWait()} in all (10 s unless the scheduler
     * says otherwise; then logs a warning), so that once it has
     * returned the relay publishes and marks nothing more; called on an interrupted thread, it waits all the same
     * and returns with the interrupt flag set. Called from the relay's own poll or {@link #relayPending} (its transport closed), it waits
     * for no poll: one scheduled meanwhile waits for that poll's lock, then starts nothing. The scheduled purge
     * ({@link Builder#purgeEvery}) runs no more: its next run is cancelled, and one in progress on another thread, which
     * starts no further batch, is waited for within the same bound, also when called from the relay's own poll.
     */
    @Override
    public void close() {
        closed = true;
        if (purge != null) {
            purge.stop(); // a purge in progress starts no further batch; polls.close() waits for it
        }
        synchronized (scheduleLock) {
            if (nextPoll != null) {
                nextPoll.cancel();
                nextPoll = null;
            }
        }
        // From the relay's own poll or relayPending (its transport closed), under the relay's lock: a scheduled poll
        // running on another thread (the scheduler's, on a caller-runs executor) waits for that lock, then starts
        // nothing; waiting for it here would wait for this thread until the timeout.
        boolean underOwnLock = pollLock.isHeldByCurrentThread();
        // One bound for both waits: on a caller-runs executor the scheduled task that polls is the poll in progress,
        // which polls.close() waits for; waiting for its lock again after that gave up would double the wait.
        // The scheduler's closeWait(), as the scoped polls read and checked it when the relay was built.
        long deadline = System.nanoTime() + polls.closeWait().toNanos();
        if (!underOwnLock) {
            polls.close();
        }
        if (ownedExecutor != null) {
            ownedExecutor.shutdown();
        }
        if (!underOwnLock) {
            awaitPollInProgress(deadline);
        }
        if (purge != null) {
            // Also from the relay's own poll, which polls.close() was skipped for: the purge takes no poll lock, so a
            // batch in progress on another thread ends without this thread, and is waited for as the promise says.
            purge.awaitIdle(deadline);
        }
    }

    /**
     * Waits until {@code deadline} (a {@link System#nanoTime()}) for a poll in progress. An interrupted caller waits
     * all the same and gets its interrupt back, as the library's schedulers do: nothing is published after close().
     */
    private void awaitPollInProgress(long deadline) {
        if (!Locks.awaitUnlocked(pollLock, deadline)) {
            log.warn("outbox relay '{}': close() stopped waiting after {} for a poll still publishing a row",
                    config.name(), polls.closeWait());
        }
    }

    /**
     * Builds an {@link OutboxRelay}; not thread-safe. Give it exactly one place to publish to: {@link #eventBus},
     * {@link #transport} or {@link #publisher} (calling the same one twice keeps the last value); two different
     * ones are a {@link ConfigurationException} at {@link #build()}, in either order. The order of the other
     * calls does not matter: a {@link #scheduler} or {@link #metrics} given explicitly wins over the bus's,
     * which are taken only when the bus is the relay's publisher.
     */
    public static final class Builder {
        private final DataSource dataSource;
        private EventBus bus;
        private Transport transport;
        private MessagePublisher publisher;
        private Scheduler scheduler;
        private Executor executor;
        private String name = "default";
        private int batchSize = 100;
        private Duration pollInterval = Duration.ofMillis(500);
        private RetryPolicy backoff = RetryPolicy.builder().maxAttempts(Integer.MAX_VALUE)
                .initialBackoff(Duration.ofMillis(200)).multiplier(2).maxBackoff(Duration.ofSeconds(30)).build();
        private Duration publishTimeout = Duration.ofSeconds(30);
        private MetricsRecorder metrics;
        private Duration retention = Duration.ofDays(7); // the orchestrator's default retention of finished sagas
        private boolean retentionGiven;
        private Duration purgeInterval;

        private Builder(DataSource dataSource) {
            this.dataSource = Objects.requireNonNull(dataSource, "dataSource");
        }

        /**
         * Publishes through the bus (interceptors, correlation headers); also takes its scheduler and metrics
         * recorder unless {@link #scheduler} or {@link #metrics} is given (before or after). Not with
         * {@link #transport} or {@link #publisher}.
         */
        public Builder eventBus(EventBus bus) {
            this.bus = Objects.requireNonNull(bus, "bus");
            return this;
        }

        /** Publishes straight to a transport (payloads stay encoded bytes). Not with {@link #eventBus} or {@link #publisher}. */
        public Builder transport(Transport transport) {
            this.transport = Objects.requireNonNull(transport, "transport");
            return this;
        }

        /** Publishes with any function. Not with {@link #eventBus} or {@link #transport}. */
        public Builder publisher(MessagePublisher publisher) {
            this.publisher = Objects.requireNonNull(publisher, "publisher");
            return this;
        }

        /** Time for polling and backoff (required unless taken from {@link #eventBus}). */
        public Builder scheduler(Scheduler scheduler) {
            this.scheduler = Objects.requireNonNull(scheduler, "scheduler");
            return this;
        }

        /** Where polls run; by default a daemon thread owned by the relay. Tests may pass {@code Runnable::run}. */
        public Builder executor(Executor executor) {
            this.executor = Objects.requireNonNull(executor, "executor");
            return this;
        }

        /**
         * The relay's name (default {@code default}), 1 to 100 characters without U+0000 (NUL, which PostgreSQL's
         * text cannot store) or a lone surrogate (which PostgreSQL's driver writes as {@code '?'}): the name of its
         * lock row in {@code ss_outbox_lock}; any other is refused by {@link #build()} with a
         * {@link ConfigurationException}, on both databases. Relays with the same name, on
         * any node, take turns; give every relay of one outbox the same name, or two relays publish the same rows.
         */
        public Builder name(String name) {
            this.name = name;
            return this;
        }

        /**
         * How many rows one transaction reads, publishes and marks (default 100, at least 1). A full batch is
         * followed by the next one at once; the lock row is held for a batch, so smaller batches let relays of
         * other nodes take turns sooner.
         */
        public Builder batchSize(int batchSize) {
            this.batchSize = batchSize;
            return this;
        }

        /**
         * After {@link OutboxRelay#start()}, how long the relay waits before polling again once it found fewer rows
         * than a batch (default 500 ms, at least 1 ms); {@link OutboxRelay#wakeUp()} polls sooner.
         */
        public Builder pollInterval(Duration pollInterval) {
            this.pollInterval = pollInterval;
            return this;
        }

        /**
         * Backoff delays after failed polls; the relay keeps retrying whatever {@code maxAttempts} says. An
         * {@code initialBackoff} under 1 ms is refused by {@link #build()}: the relay would retry at once, a thousand
         * times a second in a broker outage.
         */
        public Builder backoff(RetryPolicy backoff) {
            this.backoff = Objects.requireNonNull(backoff, "backoff");
            return this;
        }

        /** Where published rows and failures are counted (default: the bus's recorder, else none). */
        public Builder metrics(MetricsRecorder metrics) {
            this.metrics = Objects.requireNonNull(metrics, "metrics");
            return this;
        }

        /**
         * How long the relay waits for the acknowledgement of one published row (default 30 s, at least 1 ms); a row
         * not acknowledged by then counts as a retriable failure: it stays pending and the relay backs off (it may still
         * arrive, and again with the retry: a duplicate with the same message id, which the inbox filters).
         */
        public Builder publishTimeout(Duration publishTimeout) {
            this.publishTimeout = publishTimeout;
            return this;
        }

        /**
         * How long sent rows are kept before the scheduled purge ({@link #purgeEvery}) deletes them (default 7 days,
         * as an orchestrator's {@code retention} of finished sagas): positive, as a row deleted at once no longer
         * refuses its message id ({@link DuplicateOutboxMessageException} does only while the row exists), so keep
         * sent rows as long as a message id may be appended again; one of {@link ConfigurationException#MAX_DURATION}
         * or more keeps every row. Without {@link #purgeEvery} it would purge nothing, and {@link #build()} refuses it.
         */
        public Builder retention(Duration retention) {
            this.retention = retention;
            this.retentionGiven = true;
            return this;
        }

        /**
         * Deletes sent rows older than the {@link #retention} every {@code interval} once the relay is
         * {@linkplain OutboxRelay#start() started}, on its scheduler (as an orchestrator's {@code purgeEvery} deletes
         * finished sagas): each run deletes every row sent before its start minus the retention, 500 rows per
         * transaction, until none is left; pending and failed rows are never deleted. A failed run is logged and
         * counted ({@link OutboxRelay#PURGE_FAILURES_METRIC}), and the next interval tries again; the relay polls on
         * regardless. Relays on several nodes may all purge: each deletes what is still there.
         * {@link OutboxRelay#close()} cancels the next run and waits for one in progress, which starts no further
         * batch. Positive ({@link ConfigurationException} at {@link #build()}). Without it, sent rows stay until
         * {@link JdbcOutbox#purgeSent} deletes them.
         */
        public Builder purgeEvery(Duration interval) {
            this.purgeInterval = interval;
            return this;
        }

        /**
         * Builds the relay.
         *
         * @throws ConfigurationException if two of eventBus, transport and publisher were given, or none, or
         *                                no scheduler (nor a bus to take it from), or a setting is out of range (all
         *                                refused before any SQL), or the schema is older
         */
        public OutboxRelay build() {
            List<String> sources = new ArrayList<>();
            if (bus != null) {
                sources.add("eventBus(bus)");
            }
            if (transport != null) {
                sources.add("transport(transport)");
            }
            if (publisher != null) {
                sources.add("publisher(publisher)");
            }
            ConfigurationException.require(!sources.isEmpty(),
                    "an outbox relay needs a place to publish to (eventBus, transport or publisher), but none was set");
            ConfigurationException.require(sources.size() == 1, "an outbox relay publishes to one place, but was given "
                    + String.join(" and ", sources) + ": keep one of them");
            MessagePublisher target = bus != null ? bus::publish : transport != null ? transport::send : publisher;
            Scheduler time = scheduler != null ? scheduler : bus != null ? bus.scheduler() : null;
            MetricsRecorder recorder = metrics != null ? metrics : bus != null ? bus.metrics() : MetricsRecorder.NOOP;
            ConfigurationException.require(time != null, "an outbox relay needs a scheduler (or an eventBus to take it from)");
            ConfigurationException.require(!retentionGiven || purgeInterval != null, "an outbox relay's retention is"
                    + " how long its scheduled purge keeps sent rows, but no purgeEvery(interval) was given: it would"
                    + " purge nothing");
            Config config = new Config(dataSource, target, time, name, batchSize, pollInterval, backoff,
                    publishTimeout, recorder, purgeInterval == null ? null : retention, purgeInterval);
            SchemaCheck.requireMigrated(dataSource, "OutboxRelay"); // the only SQL, after every other check
            return new OutboxRelay(config, executor);
        }
    }
}
