package io.streamsaga.jdbc.saga;

import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.jdbc.CommitOutcomeUnknownException;
import io.streamsaga.jdbc.JdbcSchema;
import io.streamsaga.jdbc.testing.Around;
import io.streamsaga.jdbc.testing.DatabaseExtension;
import io.streamsaga.jdbc.testing.TestDatabase;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaException;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.TransitionType;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import javax.sql.DataSource;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;

import static io.streamsaga.jdbc.saga.JdbcSagaStoreTest.T0;
import static io.streamsaga.jdbc.saga.JdbcSagaStoreTest.saga;
import static io.streamsaga.jdbc.saga.JdbcSagaStoreTest.transition;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A commit whose outcome is unknown (the connection lost after {@code COMMIT} was sent: the database committed, the
 * answer never came) is reported as such, not as another writer's conflict, and the saga it held is finished by
 * {@code recover()} from what was stored, each step run once; subclasses pick PostgreSQL or H2.
 */
abstract class AmbiguousCommitTest {
    record Order(String orderId) {
    }

    @RegisterExtension
    final DatabaseExtension db = DatabaseExtension.of(kind());

    abstract TestDatabase.Kind kind();

    /** Armed, the next commit commits and then fails as a lost connection would (once). */
    private final AtomicBoolean loseTheNextCommitsAnswer = new AtomicBoolean();
    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final List<String> effects = new CopyOnWriteArrayList<>();
    private DataSource losingAnswers;

    @BeforeEach
    void setUp() {
        JdbcSchema.of(db.database().dataSource()).migrate();
        losingAnswers = answerLosing(db.database().dataSource());
    }

    @AfterEach
    void tearDown() {
        scheduler.close();
    }

    @Test
    void aCommitWhoseAnswerIsLostIsReportedAsOfUnknownOutcomeNotAsAConflictWithAndWithoutGroupCommit() {
        for (String id : List.of("alone", "grouped")) {
            JdbcSagaStore store = id.equals("alone") ? JdbcSagaStore.create(losingAnswers)
                    : JdbcSagaStore.builder(losingAnswers).groupCommit(8).build();
            loseTheNextCommitsAnswer.set(true);
            CommitOutcomeUnknownException insert = assertThrows(CommitOutcomeUnknownException.class, () -> store.insert(
                    saga(id, "o", SagaStatus.RUNNING, T0, 1), transition(id, 1, TransitionType.SAGA_STARTED)));
            assertEquals("08006", insert.sqlState());
            assertTrue(insert.isRetriable());
            assertEquals(1, store.find(id).orElseThrow().version(), "the insert was committed");

            loseTheNextCommitsAnswer.set(true);
            assertThrows(CommitOutcomeUnknownException.class, () -> store.update(
                    saga(id, "o", SagaStatus.COMPLETED, T0, 2), transition(id, 2, TransitionType.SAGA_COMPLETED)));
            assertEquals(SagaStatus.COMPLETED, store.find(id).orElseThrow().status(), "the update was committed");
            assertEquals(2, store.history(id).size());
        }
    }

    @Test
    void aSagaWhoseCommittedWriteWasReportedOfUnknownOutcomeStopsForRecoverWhichFinishesItRunningEachStepOnce() {
        SagaDefinition<Order> order = SagaDefinition.builder("order", Order.class)
                .step("reserve").action((d, ctx) -> {
                    effects.add("reserve");
                    loseTheNextCommitsAnswer.set(true); // the write holding reserve's success is committed, its answer lost
                    return d;
                })
                .step("charge").action((d, ctx) -> {
                    effects.add("charge");
                    return d;
                })
                .build();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().register(order)
                .store(JdbcSagaStore.builder(losingAnswers).groupCommit(8).build()).scheduler(scheduler).build();
        try {
            CompletableFuture<SagaResult<Order>> result =
                    orchestrator.start(order, "s-1", null, new Order("o-1")).toCompletableFuture();

            CompletionException stopped = assertThrows(CompletionException.class, result::join);
            SagaException storeFailure = assertInstanceOf(SagaException.class, stopped.getCause(),
                    "not a ConcurrentSagaUpdateException: no other orchestrator drives the saga");
            assertInstanceOf(CommitOutcomeUnknownException.class, storeFailure.getCause());
            assertTrue(storeFailure.isRetriable(), "a store failure, for recover()");
            assertEquals(List.of("reserve"), effects);

            SagaOrchestrator.RecoveryReport report = orchestrator.recover();
            assertEquals(List.of("s-1"), report.resumed());
            assertEquals(SagaOutcome.COMPLETED, orchestrator.result("s-1").toCompletableFuture().join().outcome());
            assertEquals(List.of("reserve", "charge"), effects, "reserve's stored success is not run again");
        } finally {
            orchestrator.close();
        }
    }

    /** Connections of {@code target} whose commit, when armed, commits and then throws as a connection lost then. */
    private DataSource answerLosing(DataSource target) {
        return Around.wrap(DataSource.class, target, (method, proceed) -> {
            Object handedOut = proceed.call();
            return handedOut instanceof Connection c ? Around.wrap(Connection.class, c, (m, call) -> {
                Object result = call.call();
                if (m.equals("commit") && loseTheNextCommitsAnswer.getAndSet(false)) {
                    throw new SQLException("An I/O error occurred while sending to the backend (simulated: the"
                            + " connection was lost after COMMIT was sent)", "08006");
                }
                return result;
            }) : handedOut;
        });
    }
}
