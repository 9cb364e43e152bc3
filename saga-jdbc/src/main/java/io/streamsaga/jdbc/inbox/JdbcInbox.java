package io.streamsaga.jdbc.inbox;

import io.streamsaga.StreamSagaException;
import io.streamsaga.jdbc.internal.Sql;
import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.EventHandler;
import io.streamsaga.jdbc.JdbcException;
import io.streamsaga.jdbc.JdbcTransactions;
import io.streamsaga.jdbc.internal.Columns;
import io.streamsaga.jdbc.internal.PeriodicPurge;
import io.streamsaga.jdbc.internal.SchemaCheck;
import io.streamsaga.metrics.MetricsRecorder;
import io.streamsaga.time.Scheduler;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import javax.sql.DataSource;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.SQLTransientException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.Objects;

/**
 * The inbox: makes a consumer's database effect happen once per message id and consumer group, although
 * the bus delivers at least once (redeliveries after a crash, relay duplicates, retries).
 *
 * <p>The consumer's own writes and the inbox row go in one transaction: if the message id was already
 * recorded for the group, the effect is skipped; if the transaction fails, neither the effect nor the
 * inbox row exists and the redelivery does the work. Effects outside the database (an e-mail, an HTTP
 * call) are not covered: they happen at least once and must be idempotent themselves.
 *
 * <pre>{@code
 * bus.subscribe("billing", "order-created", OrderCreated.class,
 *         inbox.handler((event, ctx, connection) -> insertInvoice(connection, event)));
 * }</pre>
 *
 * <p>Rows are kept for a retention period the application chooses; {@link #purgeProcessedBefore} removes
 * old ones in bounded batches, and an inbox built with {@link Builder#purgeEvery} does so on its scheduler (a message
 * redelivered after its row was purged would be applied again, so keep rows longer than the transport's redelivery
 * horizon). {@link #close()} stops that purge; an inbox without one has nothing to close. Thread-safe.
 */
public final class JdbcInbox implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(JdbcInbox.class);
    /** Counter of failed runs of the scheduled purge ({@link Builder#purgeEvery}), tagged {@code inbox} ({@link Builder#name}). */
    public static final String PURGE_FAILURES_METRIC = "streamsaga_inbox_purge_failures_total";

    private final JdbcTransactions tx;
    private final Clock clock;
    /** The scheduled purge and the scope it runs in; null without one. */
    private final PeriodicPurge purge;
    private final Scheduler purges;

    private JdbcInbox(Builder b) {
        this.tx = new JdbcTransactions(b.dataSource);
        this.clock = b.clock != null ? b.clock : b.scheduler != null ? b.scheduler.clock() : Clock.systemUTC();
        if (b.purgeInterval == null) {
            this.purges = null;
            this.purge = null;
        } else {
            Duration retention = b.retention;
            this.purges = Scheduler.scoped(b.scheduler, "inbox '" + b.name + "' purge");
            this.purge = new PeriodicPurge(purges, b.purgeInterval, "inbox '" + b.name + "': rows processed more than "
                    + retention + " ago", (now, maxRows) -> purgeProcessedBefore(now.minus(retention), maxRows),
                    MetricsRecorder.guarded(b.metrics), PURGE_FAILURES_METRIC, Map.of("inbox", b.name));
            purge.start();
        }
    }

    /** An inbox over the tables of {@code dataSource}, stamping rows with {@code clock}; nothing is purged by itself. */
    public static JdbcInbox create(DataSource dataSource, Clock clock) {
        return builder(dataSource).clock(clock).build();
    }

    /** A builder of an inbox over the tables of {@code dataSource}: its clock, and a scheduled purge. */
    public static Builder builder(DataSource dataSource) {
        return new Builder(dataSource);
    }

    /**
     * Records {@code messageId} as processed by {@code group} in the caller's transaction.
     *
     * @return true when this is the first time (do the effect), false for a duplicate (skip it)
     * @throws JdbcException when the insert fails, including a concurrent first delivery of the same
     *                       message on another node (SQL state 23505, retriable): roll back, and the
     *                       redelivery will see a duplicate
     * @throws ConfigurationException before any SQL when the group is over 255 or the message id over 500 characters,
     *                                or either holds U+0000 (which PostgreSQL cannot store) or a lone surrogate
     *                                (which PostgreSQL's driver writes as {@code '?'}: another message's id differing
     *                                only there would be taken as processed); inside {@link #handler} the delivery is
     *                                then dead-lettered (not retriable); also when {@code connection} is in
     *                                auto-commit mode, where the row would be committed alone, the message taken as
     *                                processed whether the caller's effect commits or not (taken when PostgreSQL's
     *                                driver says a transaction is open on it, an XA branch say)
     */
    public boolean markProcessed(Connection connection, String group, String messageId) {
        Objects.requireNonNull(connection, "connection");
        // Plain ifs: the quotes are built only for a refusal, not on every message marked.
        if (group == null || group.isBlank()) {
            throw new ConfigurationException("group must not be blank, but was " + StreamSagaException.quote(group));
        }
        if (messageId == null || messageId.isBlank()) {
            throw new ConfigurationException("message id must not be blank, but was " + StreamSagaException.quote(messageId));
        }
        // The columns' widths: a longer value would be cut to a prefix that another message may share.
        Columns.requireFits(group, 255, "group", " for the inbox");
        Columns.requireFits(messageId, 500, "message id", " for the inbox");
        Sql.requireTransaction(connection, "JdbcInbox.markProcessed");
        try (PreparedStatement ps = connection.prepareStatement(
                "MERGE INTO ss_inbox i USING (VALUES (CAST(? AS VARCHAR(255)), CAST(? AS VARCHAR(500)),"
                        + " CAST(? AS TIMESTAMP WITH TIME ZONE))) AS s(consumer_group, message_id, processed_at)"
                        + " ON i.consumer_group = s.consumer_group AND i.message_id = s.message_id"
                        + " WHEN NOT MATCHED THEN INSERT (consumer_group, message_id, processed_at)"
                        + " VALUES (s.consumer_group, s.message_id, s.processed_at)")) {
            ps.setString(1, group);
            ps.setString(2, messageId);
            Sql.setInstant(ps, 3, clock.instant());
            return ps.executeUpdate() == 1;
        } catch (SQLException e) {
            String what = "cannot record message " + messageId + " of group " + group + " in the inbox";
            if ("23505".equals(e.getSQLState())) {
                // a concurrent first delivery committed the row: retriable, the retry sees the duplicate
                throw JdbcException.of(what, new SQLTransientException(e.getMessage(), e.getSQLState(), e));
            }
            throw JdbcException.of(what, e);
        }
    }

    /** Whether {@code group} has processed {@code messageId}. */
    public boolean isProcessed(String group, String messageId) {
        if (Columns.holdsUnstorable(group) || Columns.holdsUnstorable(messageId)) {
            return false; // markProcessed refuses such values: never recorded (PostgreSQL would fail or answer for '?')
        }
        return tx.inTransaction(connection -> {
            try (PreparedStatement ps = connection.prepareStatement(
                    "SELECT 1 FROM ss_inbox WHERE consumer_group = ? AND message_id = ?")) {
                ps.setString(1, group);
                ps.setString(2, messageId);
                try (ResultSet rs = ps.executeQuery()) {
                    return rs.next();
                }
            }
        });
    }

    /**
     * An event handler that runs {@code handler} once per message id for the subscribing group: the inbox
     * row and the handler's writes commit together; a duplicate is acknowledged without calling it. What
     * the handler throws is rethrown unchanged (after the rollback), so the bus retries and dead-letters
     * as usual; a failure of the transaction itself (no connection, a failed commit) as a {@link JdbcException},
     * retriable as its SQL state says, but a commit whose outcome is unknown, a retriable
     * {@link io.streamsaga.jdbc.CommitOutcomeUnknownException} whatever its SQL state (a redelivery finds the inbox row
     * when the commit happened).
     */
    public <T> EventHandler<T> handler(InboxHandler<T> handler) {
        Objects.requireNonNull(handler, "handler");
        return (event, context) -> {
            Exception[] handlers = new Exception[1];
            try {
                tx.call(connection -> {
                    if (markProcessed(connection, context.group(), context.message().id())) {
                        try {
                            handler.handle(event, context, connection);
                        } catch (Exception e) {
                            handlers[0] = e;
                            throw e;
                        }
                    } else {
                        log.debug("group {} already processed message {}; skipping the duplicate", context.group(),
                                context.message().id());
                    }
                    return null;
                });
            } catch (SQLException e) {
                if (e == handlers[0]) {
                    throw e; // the handler's own, unchanged
                }
                // the transaction's own (no connection, a failed commit): typed, retriable as its SQL state says
                throw JdbcException.of("the inbox transaction of message " + context.message().id() + " for group "
                        + context.group() + " failed", e);
            }
        };
    }

    /**
     * Deletes at most {@code maxRows} inbox rows processed before {@code before}, oldest first, and returns
     * how many. Bounded, so it never holds long locks; call it until it returns 0.
     */
    public int purgeProcessedBefore(Instant before, int maxRows) {
        Objects.requireNonNull(before, "before"); // as NULL in SQL it would match no row: nothing purged
        ConfigurationException.require(maxRows > 0, "maxRows must be positive, but was %s", maxRows);
        return tx.inTransaction(connection -> {
            try (PreparedStatement ps = connection.prepareStatement(
                    "DELETE FROM ss_inbox WHERE (consumer_group, message_id) IN (SELECT consumer_group, message_id"
                            + " FROM ss_inbox WHERE processed_at < ? ORDER BY processed_at LIMIT ?)")) {
                Sql.setInstant(ps, 1, before);
                ps.setInt(2, maxRows);
                return ps.executeUpdate();
            }
        });
    }

    /**
     * Stops the scheduled purge, if any: cancels its next run and waits (up to the scheduler's
     * {@link Scheduler#closeWait()}) for one in progress on another thread, which starts no further batch. The inbox
     * itself goes on working: rows are then kept until {@link #purgeProcessedBefore}.
     */
    @Override
    public void close() {
        if (purge != null) {
            purge.stop();
            purges.close();
        }
    }

    /** Rows currently kept. */
    public long size() {
        return tx.inTransaction(connection -> {
            try (PreparedStatement ps = connection.prepareStatement("SELECT COUNT(*) FROM ss_inbox");
                 ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getLong(1);
            }
        });
    }

    /** Builds a {@link JdbcInbox}; not thread-safe. */
    public static final class Builder {
        /** The orchestrator's default retention of finished sagas, and the deduplication store's window. */
        private static final Duration DEFAULT_RETENTION = Duration.ofDays(7);
        private final DataSource dataSource;
        private Clock clock;
        private Scheduler scheduler;
        private Duration retention;
        private Duration purgeInterval;
        private MetricsRecorder metrics = MetricsRecorder.NOOP;
        private String name = "default";

        private Builder(DataSource dataSource) {
            this.dataSource = Objects.requireNonNull(dataSource, "dataSource");
        }

        /** The clock stamping rows (default: the {@link #scheduler}'s, else the system UTC clock). Not with a scheduler. */
        public Builder clock(Clock clock) {
            this.clock = Objects.requireNonNull(clock, "clock");
            return this;
        }

        /**
         * The scheduler the {@link #purgeEvery scheduled purge} runs on, whose clock stamps rows and gives each run's
         * cutoff (required with {@link #purgeEvery}). Not with {@link #clock}: rows stamped by one clock and purged by
         * another's time would be kept too long or too short.
         */
        public Builder scheduler(Scheduler scheduler) {
            this.scheduler = Objects.requireNonNull(scheduler, "scheduler");
            return this;
        }

        /**
         * How long a processed message's row is kept before the scheduled purge ({@link #purgeEvery}) deletes it
         * (default 7 days, as an orchestrator's {@code retention} of finished sagas): positive, and longer than any
         * redelivery of the message can arrive (the transport's retention plus the relay's worst outage), or a late
         * duplicate is applied again; one of {@link ConfigurationException#MAX_DURATION} or more keeps every row.
         * Without {@link #purgeEvery} it would purge nothing, and {@link #build()} refuses it.
         */
        public Builder retention(Duration retention) {
            this.retention = ConfigurationException.requirePositiveAge(retention, "retention");
            return this;
        }

        /**
         * Deletes rows processed longer than the {@link #retention} ago every {@code interval} on the
         * {@link #scheduler} (as an orchestrator's {@code purgeEvery} deletes finished sagas): each run deletes every
         * row processed before its start minus the retention, 500 rows per transaction, until none is left. A failed
         * run is logged and counted ({@link JdbcInbox#PURGE_FAILURES_METRIC}), and the next interval tries again. Inboxes on several nodes may all purge: each deletes what
         * is still there. {@link JdbcInbox#close()} cancels the next run and waits for one in progress, which starts
         * no further batch. The interval must be positive.
         */
        public Builder purgeEvery(Duration interval) {
            this.purgeInterval = ConfigurationException.requirePositive(interval, "purgeInterval");
            return this;
        }

        /**
         * The inbox's name (default {@code default}), 1 to 100 characters, in its scheduled purge's log lines and the
         * {@code inbox} tag of {@link JdbcInbox#PURGE_FAILURES_METRIC}, so that several inboxes of one process (over
         * several databases) are told apart; it is stored nowhere: inboxes of one database share its table whatever
         * their names. Any other is refused at the call with a {@link ConfigurationException}.
         */
        public Builder name(String name) {
            ConfigurationException.require(name != null && !name.isBlank() && name.length() <= 100,
                    "inbox name must be 1 to 100 characters, but was %s", StreamSagaException.quote(name));
            this.name = name;
            return this;
        }

        /** Where failed runs of the scheduled purge are counted (default: nowhere, only logged). */
        public Builder metrics(MetricsRecorder metrics) {
            this.metrics = Objects.requireNonNull(metrics, "metrics");
            return this;
        }

        /**
         * Builds the inbox; with {@link #purgeEvery}, its first purge runs one interval later.
         *
         * @throws ConfigurationException when {@link #purgeEvery} was given without a {@link #scheduler}, a
         *                                {@link #retention} without {@link #purgeEvery}, or both a clock and a
         *                                scheduler (all before any SQL), or the schema is older
         */
        public JdbcInbox build() {
            ConfigurationException.require(clock == null || scheduler == null, "an inbox takes its time from a clock or"
                    + " from a scheduler, but was given both");
            ConfigurationException.require(purgeInterval == null || scheduler != null,
                    "an inbox's scheduled purge needs a scheduler to run on (scheduler(scheduler))");
            ConfigurationException.require(retention == null || purgeInterval != null, "an inbox's retention is how long"
                    + " its scheduled purge keeps rows, but no purgeEvery(interval) was given: it would purge nothing");
            if (purgeInterval != null && retention == null) {
                retention = DEFAULT_RETENTION;
            }
            SchemaCheck.requireMigrated(dataSource, "JdbcInbox"); // the only SQL, after every other check
            return new JdbcInbox(this);
        }
    }
}
