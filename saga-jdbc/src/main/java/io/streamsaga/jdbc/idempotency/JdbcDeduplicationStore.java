package io.streamsaga.jdbc.idempotency;

import io.streamsaga.Sha256;
import io.streamsaga.StreamSagaException;
import io.streamsaga.ConfigurationException;
import io.streamsaga.idempotency.spi.ClaimOutcome;
import io.streamsaga.idempotency.spi.DeduplicationStore;
import io.streamsaga.jdbc.JdbcException;
import io.streamsaga.jdbc.JdbcTransactions;
import io.streamsaga.jdbc.StaleVersionException;
import io.streamsaga.jdbc.internal.Columns;
import io.streamsaga.jdbc.internal.PeriodicPurge;
import io.streamsaga.jdbc.internal.Sql;
import io.streamsaga.metrics.MetricsRecorder;
import io.streamsaga.jdbc.internal.SchemaCheck;
import io.streamsaga.spi.StoredKeys;
import io.streamsaga.time.Scheduler;

import javax.sql.DataSource;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.Objects;

/**
 * A {@link DeduplicationStore} in a relational database (table {@code ss_dedup}, schema version 2), shared
 * by every process that uses the same database and store name: claims are atomic across processes.
 *
 * <p>How: a claim inserts the key's row with {@code MERGE ... WHEN NOT MATCHED} (of two concurrent
 * inserts one wins; the loser sees a unique-key violation and re-reads); an existing row is read
 * {@code FOR UPDATE} and changed with a version-checked update. A completion takes the next number of the
 * store's counter ({@code ss_dedup_store}); a done key more than {@code maxEntries} completions behind the
 * counter counts as evicted at once, so the bound holds without counting rows. Rows past the window or
 * the bound, and claims whose lease ended, are deleted by {@link #purge} in bounded batches (call it
 * periodically, or have the store do so with {@link Builder#purgeEvery}; until then they only take space).
 * Completions of one store serialise on its counter row;
 * give busy consumers their own store name. A done row keeps the owner that completed it. A claim or completion that
 * fails retriably is repeated, also after a commit whose outcome is unknown (the connection lost after
 * {@code COMMIT}): a claim's repeat finds the owner's claim and renews it, and a completion's repeat that finds the row
 * done by this owner at the version its committed attempt wrote returns true, not false as for a claim another owner
 * took over.
 *
 * <p>Keys of any length and content are accepted. A key of up to 500 characters (the column's width) is stored as
 * it is; a longer one as its first 428 characters, {@code #sha256:} and the hex SHA-256 of the whole key (500
 * characters), so two long keys share a row only if their SHA-256 collide. A key holding U+0000 (NUL), which
 * PostgreSQL cannot store in text, is stored the same way with the characters before its first NUL (at most 428)
 * as the prefix, on both databases (an earlier version stored it as any other key, which H2 did: on H2 such a
 * key stored before an upgrade maps to another row after it, and its message is handled once more if delivered
 * again). A key holding a lone surrogate (malformed UTF-16, which UTF-8 and so PostgreSQL's driver turn into '?')
 * is stored the same way with the characters before it as the prefix, its digest taken over its UTF-16 form, so
 * keys differing only there stay apart on both databases; such a key stored before an upgrade maps to another row
 * after it, as a key with a NUL does on H2. A key stored as it is could share the row of another only by being exactly
 * that mapped form (its prefix, the mark and its digest), which no message id or key function produces by chance.
 * The owner (up to 200 characters) and the store name (up to 100) are stored as they are: a longer one, or one
 * holding U+0000 or a lone surrogate, is refused with a {@link ConfigurationException} before any SQL (PostgreSQL's
 * driver would write the surrogate as {@code '?'}, and two owners differing only there would be one); as no claim
 * has such an owner,
 * {@link #release} and {@link #complete} by one change nothing (complete returns false), on both databases.
 *
 * <p>Time comes from the caller, as the SPI requires (the scheduled purge's from its scheduler). Thread-safe.
 */
public final class JdbcDeduplicationStore implements DeduplicationStore, AutoCloseable {
    /** Counter of keys deleted by {@link #purge}, tagged {@code store} and {@code reason}. */
    public static final String EVICTIONS_METRIC = "streamsaga_dedup_evictions_total";
    /** Counter of failed runs of the scheduled purge ({@link Builder#purgeEvery}), tagged {@code store}. */
    public static final String PURGE_FAILURES_METRIC = "streamsaga_dedup_purge_failures_total";
    private static final int MAX_TRIES = 5;
    /** The width of {@code ss_dedup.dedup_key}. */
    private static final int KEY_COLUMN = 500;
    /** The width of {@code ss_dedup.owner}: the limit every deduplication store holds an owner to. */
    private static final int OWNER_COLUMN = StoredKeys.MAX_DEDUP_OWNER_LENGTH;
    /** Separates the kept prefix of a long key from its digest. */
    private static final String DIGEST_MARK = "#sha256:";

    private final JdbcTransactions tx;
    private final String name;
    private final Duration window;
    private final long maxEntries;
    private final MetricsRecorder metrics;
    /** The scheduled purge and the scope it runs in; null without one. */
    private final PeriodicPurge scheduledPurge;
    private final Scheduler purges;

    private JdbcDeduplicationStore(Builder b) {
        this.tx = new JdbcTransactions(b.dataSource);
        this.name = b.name;
        this.window = b.window;
        this.maxEntries = b.maxEntries;
        this.metrics = MetricsRecorder.guarded(b.metrics);
        if (b.purgeInterval == null) {
            this.purges = null;
            this.scheduledPurge = null;
        } else {
            this.purges = Scheduler.scoped(b.scheduler, "deduplication store '" + name + "' purge");
            this.scheduledPurge = new PeriodicPurge(purges, b.purgeInterval, "deduplication store '" + name
                    + "': expired, evicted and abandoned keys", this::purge, metrics, PURGE_FAILURES_METRIC,
                    Map.of("store", name));
            scheduledPurge.start();
        }
    }

    public static Builder builder(DataSource dataSource) {
        return new Builder(dataSource);
    }

    /** The store name: several stores share the tables, each with its own keys and bounds. */
    public String name() {
        return name;
    }

    @Override
    public ClaimOutcome tryClaim(String key, String owner, Instant now, Duration lease) {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(owner, "owner");
        Columns.requireFits(owner, OWNER_COLUMN, "owner", " for JdbcDeduplicationStore");
        Objects.requireNonNull(now, "now");
        ConfigurationException.require(lease != null && !lease.isNegative() && !lease.isZero(),
                "lease must be positive, but was %s", lease);
        String stored = storedKey(key);
        return retrying("claim", () -> tx.inTransaction(c -> claim(c, stored, owner, now, lease)));
    }

    private ClaimOutcome claim(Connection c, String key, String owner, Instant now, Duration lease) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("MERGE INTO ss_dedup d USING (VALUES (CAST(? AS VARCHAR(100)),"
                + " CAST(? AS VARCHAR(500)))) AS s(store_name, dedup_key)"
                + " ON d.store_name = s.store_name AND d.dedup_key = s.dedup_key"
                + " WHEN NOT MATCHED THEN INSERT (store_name, dedup_key, owner, lease_until, version)"
                + " VALUES (s.store_name, s.dedup_key, ?, ?, 0)")) {
            ps.setString(1, name);
            ps.setString(2, key);
            ps.setString(3, owner);
            Sql.setInstant(ps, 4, now.plus(lease));
            if (ps.executeUpdate() == 1) {
                return ClaimOutcome.ACQUIRED;
            }
        }
        Row row = lockRow(c, key);
        if (row == null) {
            // deleted between the merge and the read (a purge): the caller's retry inserts it
            throw new StaleVersionException("ss_dedup", key, -1);
        }
        if (row.doneAt != null && isLive(c, row, now)) {
            return ClaimOutcome.DONE;
        }
        if (row.doneAt == null && !owner.equals(row.owner) && row.leaseUntil.isAfter(now)) {
            return ClaimOutcome.IN_PROGRESS;
        }
        // free: never done or forgotten, or claimed by us, or the holder's lease ended
        try (PreparedStatement ps = c.prepareStatement("UPDATE ss_dedup SET owner = ?, lease_until = ?, done_at = NULL,"
                + " done_seq = NULL, version = version + 1 WHERE store_name = ? AND dedup_key = ? AND version = ?")) {
            ps.setString(1, owner);
            Sql.setInstant(ps, 2, now.plus(lease));
            ps.setString(3, name);
            ps.setString(4, key);
            ps.setLong(5, row.version);
            if (ps.executeUpdate() != 1) {
                throw new StaleVersionException("ss_dedup", key, row.version);
            }
        }
        return ClaimOutcome.ACQUIRED;
    }

    @Override
    public boolean complete(String key, String owner, Instant now) {
        Objects.requireNonNull(now, "now");
        String stored = storedKey(key);
        // The version an attempt's update gave the row (-1: none yet). A commit whose outcome is unknown is retried: a
        // repeat finding the row done by this owner at that version finds that attempt's commit, which happened.
        long[] written = {-1};
        return retrying("complete", () -> tx.inTransaction(c -> {
            Row row = lockRow(c, stored);
            if (row != null && row.doneAt != null && row.version == written[0] && owner.equals(row.owner)) {
                return true;
            }
            if (row == null || row.doneAt != null || !owner.equals(row.owner)) {
                return false;
            }
            long seq = nextDoneSeq(c);
            // the owner is kept on the done row: who completed it, for the repeat above
            try (PreparedStatement ps = c.prepareStatement("UPDATE ss_dedup SET lease_until = NULL,"
                    + " done_at = ?, done_seq = ?, version = version + 1"
                    + " WHERE store_name = ? AND dedup_key = ? AND version = ?")) {
                Sql.setInstant(ps, 1, now);
                ps.setLong(2, seq);
                ps.setString(3, name);
                ps.setString(4, stored);
                ps.setLong(5, row.version);
                if (ps.executeUpdate() != 1) {
                    throw new StaleVersionException("ss_dedup", stored, row.version);
                }
            }
            written[0] = row.version + 1;
            return true;
        }));
    }

    @Override
    public void release(String key, String owner) {
        String stored = storedKey(key);
        if (Columns.holdsUnstorable(owner)) {
            return; // tryClaim refuses such an owner: it holds no claim (PostgreSQL would fail or answer for '?')
        }
        tx.run(c -> {
            try (PreparedStatement ps = c.prepareStatement("DELETE FROM ss_dedup WHERE store_name = ? AND dedup_key = ?"
                    + " AND owner = ? AND done_at IS NULL")) {
                ps.setString(1, name);
                ps.setString(2, stored);
                ps.setString(3, owner);
                ps.executeUpdate();
            }
        });
    }

    @Override
    public boolean isDone(String key, Instant now) {
        String stored = storedKey(key);
        return tx.inTransaction(c -> {
            try (PreparedStatement ps = c.prepareStatement("SELECT owner, lease_until, done_at, done_seq, version"
                    + " FROM ss_dedup WHERE store_name = ? AND dedup_key = ?")) {
                ps.setString(1, name);
                ps.setString(2, stored);
                try (ResultSet rs = ps.executeQuery()) {
                    if (!rs.next()) {
                        return false;
                    }
                    Row row = Row.read(rs);
                    return row.doneAt != null && isLive(c, row, now);
                }
            }
        });
    }

    @Override
    public Duration window() {
        return window;
    }

    @Override
    public long maxEntries() {
        return maxEntries;
    }

    /**
     * Deletes at most {@code maxRows} rows that no longer count: done keys past the window or behind the
     * {@code maxEntries} bound, and claims whose lease ended before {@code now}. Returns how many; call it
     * until it returns less than {@code maxRows}.
     */
    public int purge(Instant now, int maxRows) {
        Objects.requireNonNull(now, "now");
        ConfigurationException.require(maxRows > 0, "maxRows must be positive, but was %s", maxRows);
        return tx.inTransaction(c -> {
            long threshold = doneCount(c) - maxEntries;
            int expired = delete(c, "done_at IS NOT NULL AND done_at <= ?", now.minus(window), null, maxRows);
            int capacity = expired < maxRows
                    ? delete(c, "done_seq IS NOT NULL AND done_seq <= ?", null, threshold, maxRows - expired) : 0;
            int dead = expired + capacity < maxRows
                    ? delete(c, "done_at IS NULL AND lease_until < ?", now, null, maxRows - expired - capacity) : 0;
            for (int i = 0; i < expired; i++) {
                metrics.increment(EVICTIONS_METRIC, Map.of("store", name, "reason", "expired"));
            }
            for (int i = 0; i < capacity; i++) {
                metrics.increment(EVICTIONS_METRIC, Map.of("store", name, "reason", "capacity"));
            }
            return expired + capacity + dead;
        });
    }

    /**
     * Stops the scheduled purge, if any: cancels its next run and waits (up to the scheduler's
     * {@link Scheduler#closeWait()}) for one in progress on another thread, which starts no further batch. The store
     * itself goes on working: its outdated rows are then deleted only by {@link #purge}.
     */
    @Override
    public void close() {
        if (scheduledPurge != null) {
            scheduledPurge.stop();
            purges.close();
        }
    }

    private int delete(Connection c, String condition, Instant at, Long seq, int limit) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("DELETE FROM ss_dedup WHERE (store_name, dedup_key) IN"
                + " (SELECT store_name, dedup_key FROM ss_dedup WHERE store_name = ? AND " + condition
                + " LIMIT ?)")) {
            ps.setString(1, name);
            if (at != null) {
                Sql.setInstant(ps, 2, at);
            } else {
                ps.setLong(2, seq);
            }
            ps.setInt(3, limit);
            return ps.executeUpdate();
        }
    }

    /**
     * The key as stored: itself up to the column's {@value #KEY_COLUMN} characters; a longer key (a default
     * {@code IdempotentConsumer} key is the group, a slash and a message id, which may itself be 500 characters)
     * as its first characters, {@value #DIGEST_MARK} and the hex SHA-256 of its UTF-8 bytes, exactly
     * {@value #KEY_COLUMN} characters. Cutting it to the width instead would have made every key sharing a prefix
     * one row. Keys of up to {@value #KEY_COLUMN} characters are stored as before, so rows written before keep
     * their meaning. A key holding U+0000, which PostgreSQL's text types cannot store (H2's can: the two would
     * differ), or a lone surrogate, which PostgreSQL's driver sends as '?', is stored the same way with the
     * characters before the first of them as the prefix; the digest of a key holding a lone surrogate hashes its
     * UTF-16 form instead ({@link Sha256#hexOfText}).
     */
    static String storedKey(String key) {
        Objects.requireNonNull(key, "key");
        int unstorable = Columns.firstUnstorable(key);
        if (key.length() <= KEY_COLUMN && unstorable < 0) {
            return key;
        }
        int prefix = KEY_COLUMN - DIGEST_MARK.length() - 64;
        if (unstorable >= 0 && unstorable < prefix) {
            prefix = unstorable;
        } else if (Character.isHighSurrogate(key.charAt(prefix - 1))) {
            prefix--; // never half a character: PostgreSQL would store a replacement for it
        }
        return key.substring(0, prefix) + DIGEST_MARK + Sha256.hexOfText(key);
    }

    /** Done within the window and not more than maxEntries completions behind the store's counter. */
    private boolean isLive(Connection c, Row row, Instant now) throws SQLException {
        return row.doneAt.plus(window).isAfter(now) && row.doneSeq > doneCount(c) - maxEntries;
    }

    private Row lockRow(Connection c, String key) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT owner, lease_until, done_at, done_seq, version"
                + " FROM ss_dedup WHERE store_name = ? AND dedup_key = ? FOR UPDATE")) {
            ps.setString(1, name);
            ps.setString(2, key);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? Row.read(rs) : null;
            }
        }
    }

    private long doneCount(Connection c) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT done_count FROM ss_dedup_store WHERE store_name = ?")) {
            ps.setString(1, name);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? rs.getLong(1) : 0;
            }
        }
    }

    private long nextDoneSeq(Connection c) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("MERGE INTO ss_dedup_store t USING (VALUES (CAST(? AS VARCHAR(100))))"
                + " AS s(store_name) ON t.store_name = s.store_name"
                + " WHEN MATCHED THEN UPDATE SET done_count = t.done_count + 1"
                + " WHEN NOT MATCHED THEN INSERT (store_name, done_count) VALUES (s.store_name, 1)")) {
            ps.setString(1, name);
            ps.executeUpdate();
        }
        return doneCount(c);
    }

    /**
     * Repeats an operation that lost a race (unique key, stale version, serialization, deadlock, lock timeout) or failed
     * retriably otherwise, a commit whose outcome is unknown ({@link io.streamsaga.jdbc.CommitOutcomeUnknownException})
     * included: an operation repeated must then read back what its committed attempt stored (a claim's repeat finds the
     * owner's own claim and renews it; a completion's finds the row done by the owner at the version it wrote).
     */
    private <T> T retrying(String operation, java.util.function.Supplier<T> attempt) {
        for (int tries = 1; ; tries++) {
            try {
                return attempt.get();
            } catch (StaleVersionException e) {
                if (tries >= MAX_TRIES) {
                    throw e;
                }
            } catch (JdbcException e) {
                boolean raced = "23505".equals(e.sqlState()) || e.isRetriable();
                if (!raced || tries >= MAX_TRIES) {
                    throw e;
                }
            }
        }
    }

    private record Row(String owner, Instant leaseUntil, Instant doneAt, long doneSeq, long version) {
        static Row read(ResultSet rs) throws SQLException {
            return new Row(rs.getString("owner"), Sql.getInstant(rs, "lease_until"), Sql.getInstant(rs, "done_at"),
                    rs.getLong("done_seq"), rs.getLong("version"));
        }
    }

    /** Builds a {@link JdbcDeduplicationStore}; not thread-safe. */
    public static final class Builder {
        private final DataSource dataSource;
        private String name = "default";
        private Duration window = Duration.ofDays(7);
        private long maxEntries = 10_000_000;
        private MetricsRecorder metrics = MetricsRecorder.NOOP;
        private Duration purgeInterval;
        private Scheduler scheduler;

        private Builder(DataSource dataSource) {
            this.dataSource = Objects.requireNonNull(dataSource, "dataSource");
        }

        /** The store's name (default {@code default}); 1 to 100 characters, without U+0000 or a lone surrogate. */
        public Builder name(String name) {
            ConfigurationException.require(name != null && !name.isBlank() && name.length() <= 100,
                    "store name must be 1 to 100 characters, but was %s", StreamSagaException.quote(name));
            Columns.requireFits(name, 100, "store name", "");
            this.name = name;
            return this;
        }

        /**
         * How long a done key is remembered (default 7 days, Kafka's default retention). Positive; an age, so one longer
         * than {@link ConfigurationException#MAX_DURATION} ({@code ChronoUnit.FOREVER.getDuration()}, to cover a
         * transport that keeps every record) is taken as that ({@link ConfigurationException#requirePositiveAge}).
         */
        public Builder window(Duration window) {
            this.window = ConfigurationException.requirePositiveAge(window, "window");
            return this;
        }

        /** How many done keys count at most (default 10,000,000). */
        public Builder maxEntries(long maxEntries) {
            ConfigurationException.require(maxEntries >= 1, "maxEntries must be 1 or more, but was %s", maxEntries);
            this.maxEntries = maxEntries;
            return this;
        }

        /** Where purged keys are counted. */
        public Builder metrics(MetricsRecorder metrics) {
            this.metrics = Objects.requireNonNull(metrics, "metrics");
            return this;
        }

        /**
         * The scheduler the {@link #purgeEvery scheduled purge} runs on and takes its time from (required with it,
         * refused without it: the store's own calls take their time from the caller, as the SPI requires).
         */
        public Builder scheduler(Scheduler scheduler) {
            this.scheduler = Objects.requireNonNull(scheduler, "scheduler");
            return this;
        }

        /**
         * Runs {@link JdbcDeduplicationStore#purge} every {@code interval} on the {@link #scheduler}, at its clock's
         * time (as an orchestrator's {@code purgeEvery} deletes finished sagas; the store's {@link #window} is its
         * retention): each run deletes the done keys past the window or the {@link #maxEntries} bound and the claims
         * whose lease ended, 500 rows per transaction, until none is left. A failed run is logged and counted
         * ({@link JdbcDeduplicationStore#PURGE_FAILURES_METRIC}), and the next interval tries again. Stores of the same
         * name on several nodes may all purge: each deletes what is still there. {@link JdbcDeduplicationStore#close()}
         * cancels the next run and waits for one in progress, which starts no further batch. The interval must be
         * positive.
         */
        public Builder purgeEvery(Duration interval) {
            this.purgeInterval = ConfigurationException.requirePositive(interval, "purgeInterval");
            return this;
        }

        /**
         * Builds the store; with {@link #purgeEvery}, its first purge runs one interval later.
         *
         * @throws ConfigurationException when {@link #purgeEvery} was given without a {@link #scheduler} or the other
         *                                way round (before any SQL), or the schema is older
         */
        public JdbcDeduplicationStore build() {
            ConfigurationException.require((purgeInterval == null) == (scheduler == null), "a scheduled purge needs"
                    + " both purgeEvery(interval) and scheduler(scheduler), but was given purge interval %s and scheduler"
                    + " %s", purgeInterval, scheduler);
            SchemaCheck.requireMigrated(dataSource, "JdbcDeduplicationStore");
            return new JdbcDeduplicationStore(this);
        }
    }
}
