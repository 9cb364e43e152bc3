package io.streamsaga.jdbc.claimcheck;

import io.streamsaga.StreamSagaException;
import io.streamsaga.ConfigurationException;
import io.streamsaga.claimcheck.ClaimCheckException;
import io.streamsaga.claimcheck.PayloadReference;
import io.streamsaga.claimcheck.spi.PayloadStore;
import io.streamsaga.jdbc.JdbcException;
import io.streamsaga.jdbc.JdbcTransactions;
import io.streamsaga.jdbc.internal.Columns;
import io.streamsaga.jdbc.internal.Sql;
import io.streamsaga.jdbc.internal.SchemaCheck;
import io.streamsaga.spi.StoredKeys;

import javax.sql.DataSource;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Supplier;

/**
 * A {@link PayloadStore} in a relational database (tables {@code ss_payload} and {@code ss_payload_holder},
 * schema version 5, holders up to 500 characters since version 7): claim-checked payloads shared by every process on the database. PostgreSQL keeps
 * content as {@code BYTEA} (up to 1 GB), H2 as {@code BLOB}.
 *
 * <p>A put refreshes an existing payload's time with an update (the content of a content-addressed id is
 * never sent twice) or inserts it; a concurrent first insert of the same id loses on the primary key and
 * is repeated as an update. A release locks the payload row, so it never races with a put adding a
 * holder: the payload is deleted only with its last holder. Expired payloads are deleted in bounded
 * batches. Database failures are retriable {@link ClaimCheckException}s. A holder that is blank, over 500
 * characters or holds U+0000 (which PostgreSQL cannot store) or a lone surrogate (which PostgreSQL's driver writes as
 * {@code '?'}: two holders differing only there would be one) is refused with a {@code ConfigurationException} before
 * any SQL; a release by such a holder releases nothing. Thread-safe.
 */
public final class JdbcPayloadStore implements PayloadStore {
    private static final int BATCH = 500;
    private static final int MAX_TRIES = 3;

    private final JdbcTransactions tx;

    private JdbcPayloadStore(DataSource dataSource) {
        this.tx = new JdbcTransactions(dataSource);
    }

    /** A store over the tables of {@code dataSource} (created by {@code JdbcSchema.migrate()}). */
    public static JdbcPayloadStore create(DataSource dataSource) {
        Objects.requireNonNull(dataSource, "dataSource");
        SchemaCheck.requireMigrated(dataSource, "JdbcPayloadStore");
        return new JdbcPayloadStore(dataSource);
    }

    @Override
    public void put(String id, byte[] content, String holder, Instant now) {
        PayloadReference.requireValidId(id);
        Objects.requireNonNull(content, "content");
        ConfigurationException.require(holder != null && !holder.isBlank(), "holder must not be blank, but was %s",
                StreamSagaException.quote(holder));
        Columns.requireFits(holder, StoredKeys.MAX_HOLDER_LENGTH, "holder", "");
        Objects.requireNonNull(now, "now");
        guarded(id, "store", () -> {
            for (int tries = 1; ; tries++) {
                try {
                    tx.run(c -> {
                        if (!touch(c, id, now)) {
                            try (PreparedStatement ps = c.prepareStatement(
                                    "INSERT INTO ss_payload (id, content, stored_at) VALUES (?, ?, ?)")) {
                                ps.setString(1, id);
                                ps.setBytes(2, content);
                                Sql.setInstant(ps, 3, now);
                                ps.executeUpdate();
                            }
                        }
                        try (PreparedStatement ps = c.prepareStatement("MERGE INTO ss_payload_holder h USING (VALUES"
                                + " (CAST(? AS VARCHAR(128)), CAST(? AS VARCHAR(500)))) AS s(id, holder)"
                                + " ON h.id = s.id AND h.holder = s.holder"
                                + " WHEN NOT MATCHED THEN INSERT (id, holder) VALUES (s.id, s.holder)")) {
                            ps.setString(1, id);
                            ps.setString(2, holder);
                            ps.executeUpdate();
                        }
                    });
                    return null;
                } catch (JdbcException e) {
                    // another process inserted the same id (or the same holder) at the same moment
                    if (!"23505".equals(e.sqlState()) || tries >= MAX_TRIES) {
                        throw e;
                    }
                }
            }
        });
    }

    private static boolean touch(Connection c, String id, Instant now) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("UPDATE ss_payload SET stored_at = ? WHERE id = ?")) {
            Sql.setInstant(ps, 1, now);
            ps.setString(2, id);
            return ps.executeUpdate() == 1;
        }
    }

    @Override
    public Optional<byte[]> get(String id) {
        PayloadReference.requireValidId(id);
        return guarded(id, "read", () -> tx.inTransaction(c -> {
            try (PreparedStatement ps = c.prepareStatement("SELECT content FROM ss_payload WHERE id = ?")) {
                ps.setString(1, id);
                try (ResultSet rs = ps.executeQuery()) {
                    return rs.next() ? Optional.of(rs.getBytes(1)) : Optional.<byte[]>empty();
                }
            }
        }));
    }

    @Override
    public boolean release(String id, String holder) {
        PayloadReference.requireValidId(id);
        if (Columns.holdsUnstorable(holder)) {
            return false; // put refuses such a holder: none holds the payload (PostgreSQL would fail or answer for '?')
        }
        return guarded(id, "release", () -> tx.inTransaction(c -> {
            try (PreparedStatement ps = c.prepareStatement("SELECT id FROM ss_payload WHERE id = ? FOR UPDATE")) {
                ps.setString(1, id);
                try (ResultSet rs = ps.executeQuery()) {
                    if (!rs.next()) {
                        return false;
                    }
                }
            }
            try (PreparedStatement ps = c.prepareStatement("DELETE FROM ss_payload_holder WHERE id = ? AND holder = ?")) {
                ps.setString(1, id);
                ps.setString(2, holder);
                if (ps.executeUpdate() == 0) {
                    return false;
                }
            }
            try (PreparedStatement ps = c.prepareStatement("SELECT COUNT(*) FROM ss_payload_holder WHERE id = ?")) {
                ps.setString(1, id);
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    if (rs.getLong(1) > 0) {
                        return false;
                    }
                }
            }
            try (PreparedStatement ps = c.prepareStatement("DELETE FROM ss_payload WHERE id = ?")) {
                ps.setString(1, id);
                return ps.executeUpdate() == 1;
            }
        }));
    }

    /** Deletes every payload last stored before {@code cutoff}, batch after bounded batch. */
    @Override
    public int deleteStoredBefore(Instant cutoff) {
        Objects.requireNonNull(cutoff, "cutoff");
        int total = 0;
        while (true) {
            int deleted = deleteStoredBefore(cutoff, BATCH);
            total += deleted;
            if (deleted < BATCH) {
                return total;
            }
        }
    }

    /** Deletes at most {@code maxPayloads} payloads last stored before {@code cutoff}, oldest first, in one transaction. */
    @Override
    public int deleteStoredBefore(Instant cutoff, int maxPayloads) {
        Objects.requireNonNull(cutoff, "cutoff"); // as NULL in SQL it would match no row: nothing deleted
        ConfigurationException.require(maxPayloads > 0, "maxPayloads must be positive, but was %s", maxPayloads);
        return guarded(null, "expire", () -> tx.inTransaction(c -> {
            List<String> ids = new ArrayList<>();
            try (PreparedStatement ps = c.prepareStatement(
                    "SELECT id FROM ss_payload WHERE stored_at < ? ORDER BY stored_at LIMIT ? FOR UPDATE")) {
                Sql.setInstant(ps, 1, cutoff);
                ps.setInt(2, maxPayloads);
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        ids.add(rs.getString(1));
                    }
                }
            }
            for (String table : List.of("ss_payload_holder", "ss_payload")) {
                try (PreparedStatement ps = c.prepareStatement("DELETE FROM " + table + " WHERE id = ?")) {
                    for (String id : ids) {
                        ps.setString(1, id);
                        ps.addBatch();
                    }
                    if (!ids.isEmpty()) {
                        ps.executeBatch();
                    }
                }
            }
            return ids.size();
        }));
    }

    private static <T> T guarded(String id, String operation, Supplier<T> work) {
        try {
            return work.get();
        } catch (JdbcException e) {
            throw ClaimCheckException.storeFailure(id, operation, e);
        }
    }
}
