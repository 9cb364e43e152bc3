package io.streamsaga.jdbc.saga;

import io.streamsaga.codec.JsonEventCodec;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.jdbc.JdbcException;
import io.streamsaga.jdbc.JdbcSchema;
import io.streamsaga.jdbc.JdbcTransactions;
import io.streamsaga.jdbc.outbox.DuplicateOutboxMessageException;
import io.streamsaga.jdbc.outbox.JdbcOutbox;
import io.streamsaga.jdbc.testing.DatabaseExtension;
import io.streamsaga.jdbc.testing.TestDatabase;
import io.streamsaga.message.Message;
import io.streamsaga.saga.ConcurrentSagaUpdateException;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.TransitionType;
import io.streamsaga.saga.spi.SagaWriteRefusedException;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static io.streamsaga.jdbc.saga.JdbcSagaStoreTest.T0;
import static io.streamsaga.jdbc.saga.JdbcSagaStoreTest.saga;
import static io.streamsaga.jdbc.saga.JdbcSagaStoreTest.transition;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The unique keys the stores tell apart (the saga's id, the outbox's message id) keep their meaning under other names
 * than the library's schema files give them (a DBA renaming them, a migration tool of the application's creating the
 * tables): a violation is recognised by its table and column, not by the constraint's name; subclasses pick PostgreSQL
 * or H2.
 */
abstract class RenamedKeysTest {
    @RegisterExtension
    final DatabaseExtension db = DatabaseExtension.of(kind());

    abstract TestDatabase.Kind kind();

    private final JsonEventCodec codec = new JsonEventCodec(TypeRegistry.empty());
    private final Message held = Message.builder("payment-commands").id("held-id").key("s-1").type("charge")
            .payload(new byte[]{'{', '}'}).build();

    @BeforeEach
    void setUp() {
        JdbcSchema.of(db.database().dataSource()).migrate();
        renameKey("ss_saga", "saga_id", "pk_saga_by_dba");
        renameKey("ss_outbox", "message_id", "uq_outbox_message_by_dba");
    }

    @Test
    void anOutboxAppendOfAnIdItHoldsIsRefusedAsADuplicateMessageUnderARenamedKey() {
        JdbcOutbox outbox = JdbcOutbox.builder(db.database().dataSource()).codec(codec).build();
        JdbcTransactions tx = new JdbcTransactions(db.database().dataSource());
        tx.run(c -> outbox.append(c, held));

        DuplicateOutboxMessageException refused = assertThrows(DuplicateOutboxMessageException.class,
                () -> tx.run(c -> outbox.append(c, held)));
        assertEquals("held-id", refused.messageId());
        assertEquals("payment-commands", refused.topic());
    }

    @Test
    void aSagaWriteMeetingAMessageIdTheOutboxHoldsIsRefusedNamingItUnderARenamedKeyAloneAndUnderGroupCommit() {
        new JdbcTransactions(db.database().dataSource()).run(c ->
                JdbcOutbox.builder(db.database().dataSource()).codec(codec).build().append(c, held));
        for (JdbcSagaStore store : List.of(JdbcSagaStore.builder(db.database().dataSource()).transactionalMessages().build(),
                JdbcSagaStore.builder(db.database().dataSource()).transactionalMessages().groupCommit(8).build())) {
            SagaWriteRefusedException refused = assertThrows(SagaWriteRefusedException.class,
                    () -> store.insert(saga("s-1", "o-1", SagaStatus.RUNNING, T0, 1),
                            transition("s-1", 1, TransitionType.SAGA_STARTED), List.of(held)),
                    "not the saga id taken, nor a plain database failure");
            assertEquals("held-id", assertInstanceOf(DuplicateOutboxMessageException.class, refused.getCause()).messageId());
            assertTrue(store.find("s-1").isEmpty(), "nothing of the write is stored");
        }
    }

    @Test
    void aSagaInsertedMeanwhileByAnotherWriterIsAConcurrentUpdateUnderARenamedKey() throws Exception {
        // H2's MERGE waits on a table lock that no session view shows and times out (HYT00) instead of meeting the key
        Assumptions.assumeTrue(kind() == TestDatabase.Kind.POSTGRES, "the race is staged on PostgreSQL only");
        JdbcSagaStore store = JdbcSagaStore.create(db.database().dataSource());
        ExecutorService writer = Executors.newSingleThreadExecutor();
        try (Connection other = db.database().dataSource().getConnection()) {
            other.setAutoCommit(false); // the other writer's insert, not committed yet
            store.writeOne(other, store.toWrite(true, saga("s-1", "theirs", SagaStatus.RUNNING, T0, 1),
                    List.of(transition("s-1", 1, TransitionType.SAGA_STARTED))));
            Future<?> mine = writer.submit(() -> store.insert(saga("s-1", "mine", SagaStatus.RUNNING, T0, 1),
                    transition("s-1", 1, TransitionType.SAGA_STARTED)));
            Awaitility.await().atMost(Duration.ofSeconds(60))
                    .until(() -> mine.isDone() || db.database().sessionsWaitingForALock() > 0);
            other.commit();

            ExecutionException lost = assertThrows(ExecutionException.class, () -> mine.get(60, TimeUnit.SECONDS));
            assertInstanceOf(ConcurrentSagaUpdateException.class, lost.getCause(),
                    () -> "the unique violation of the saga's key, not a plain database failure: " + lost.getCause());
            assertEquals("theirs", store.find("s-1").orElseThrow().businessKey());
        } finally {
            writer.shutdownNow();
        }
    }

    @Test
    void anotherUniqueViolationOfASagaInsertStaysAPlainDatabaseFailure() {
        // an index of the application's own on the business key: its violation is not the saga id taken
        db.database().execute("CREATE UNIQUE INDEX app_saga_business_key ON ss_saga (business_key)");
        JdbcSagaStore store = JdbcSagaStore.create(db.database().dataSource());
        store.insert(saga("s-1", "o-1", SagaStatus.RUNNING, T0, 1), transition("s-1", 1, TransitionType.SAGA_STARTED));

        JdbcException failed = assertThrows(JdbcException.class, () -> store.insert(
                saga("s-2", "o-1", SagaStatus.RUNNING, T0, 1), transition("s-2", 1, TransitionType.SAGA_STARTED)));
        assertEquals("23505", failed.sqlState());
    }

    @Test
    void anotherUniqueViolationWhoseValueHoldsTheSagaKeysDescriptionStaysAPlainDatabaseFailure() {
        // The violated key is told by the message's description of it, which comes before the values: a business key
        // holding PostgreSQL's or H2's description of the saga's key was taken for its violation, "a saga with this id
        // is already stored" (ConcurrentSagaUpdateException) though none was
        db.database().execute("CREATE UNIQUE INDEX app_saga_business_key ON ss_saga (business_key)");
        JdbcSagaStore store = JdbcSagaStore.create(db.database().dataSource());
        String businessKey = "o-1 (saga_id)=(s-1) ss_saga(saga_id) ss_saga_pkey";
        store.insert(saga("s-1", businessKey, SagaStatus.RUNNING, T0, 1), transition("s-1", 1, TransitionType.SAGA_STARTED));

        JdbcException failed = assertThrows(JdbcException.class, () -> store.insert(
                saga("s-2", businessKey, SagaStatus.RUNNING, T0, 1), transition("s-2", 1, TransitionType.SAGA_STARTED)));
        assertEquals("23505", failed.sqlState());
    }

    /** Renames the primary or unique key of {@code table} on {@code column} alone to {@code name}. */
    private void renameKey(String table, String column, String name) {
        String current;
        try (Connection c = db.database().dataSource().getConnection(); PreparedStatement ps = c.prepareStatement(
                "SELECT tc.constraint_name FROM information_schema.table_constraints tc"
                        + " JOIN information_schema.key_column_usage k ON k.constraint_schema = tc.constraint_schema"
                        + " AND k.constraint_name = tc.constraint_name"
                        + " WHERE tc.table_schema = CURRENT_SCHEMA AND tc.table_name = ? AND k.column_name = ?"
                        + " AND tc.constraint_type IN ('PRIMARY KEY', 'UNIQUE')")) {
            ps.setString(1, table);
            ps.setString(2, column);
            try (ResultSet rs = ps.executeQuery()) {
                assertTrue(rs.next(), "a key of " + table + " on " + column);
                current = rs.getString(1);
            }
        } catch (java.sql.SQLException e) {
            throw new IllegalStateException(e);
        }
        db.database().execute("ALTER TABLE " + table + " RENAME CONSTRAINT \"" + current + "\" TO " + name);
    }
}
