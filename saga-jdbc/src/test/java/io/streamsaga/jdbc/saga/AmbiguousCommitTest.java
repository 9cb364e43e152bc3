package io.streamsaga.jdbc.saga;

import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.jdbc.CommitOutcomeUnknownException;
import io.streamsaga.jdbc.JdbcException;
import io.streamsaga.jdbc.JdbcSchema;
import io.streamsaga.jdbc.testing.Around;
import io.streamsaga.jdbc.testing.DatabaseExtension;
import io.streamsaga.jdbc.testing.TestDatabase;
import io.streamsaga.saga.ConcurrentSagaUpdateException;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaException;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.TransitionType;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import javax.sql.DataSource;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

import static io.streamsaga.jdbc.saga.JdbcSagaStoreTest.T0;
import static io.streamsaga.jdbc.saga.JdbcSagaStoreTest.saga;
import static io.streamsaga.jdbc.saga.JdbcSagaStoreTest.transition;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
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
    /** Armed, the next close of a connection closes it and then fails (once). */
    private final AtomicBoolean failTheNextClose = new AtomicBoolean();
    /**
     * Armed, the connection is closed right after the next insert of history rows (once), before its transaction's
     * {@code COMMIT}: as a pool closes a connection it takes for abandoned, or aborts at its shutdown.
     */
    private final AtomicBoolean closeAfterTheNextHistoryInsert = new AtomicBoolean();
    /** Armed, the next commit waits for {@link #heldCommitMayGo} (once), and then commits and answers. */
    private final AtomicBoolean holdTheNextCommit = new AtomicBoolean();
    private final CountDownLatch heldCommitMayGo = new CountDownLatch(1);
    private final AtomicInteger heldCommits = new AtomicInteger();
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
    void aWriteWhoseConnectionWasClosedBeforeItsCommitFailsAsNotStoredAloneAndIsWrittenAgainAloneUnderGroupCommit() {
        // The connection was closed before COMMIT could be sent on it: nothing of the transaction was committed (a
        // session that ends with its transaction open rolls it back). Reported as of unknown outcome, a write under
        // group commit was not tried again (the batch "may be stored"): its run stopped for recover() as after a
        // commit that may have happened, and a start's caller was told its saga might be stored.
        JdbcSagaStore alone = JdbcSagaStore.create(losingAnswers);
        closeAfterTheNextHistoryInsert.set(true);
        JdbcException failed = assertThrows(JdbcException.class, () -> alone.insert(
                saga("alone", "o", SagaStatus.RUNNING, T0, 1), transition("alone", 1, TransitionType.SAGA_STARTED)));
        assertFalse(failed instanceof CommitOutcomeUnknownException, "nothing was committed: " + failed);
        assertTrue(failed.isRetriable(), "a new connection may succeed: " + failed);
        assertTrue(alone.find("alone").isEmpty());

        JdbcSagaStore grouped = JdbcSagaStore.builder(losingAnswers).groupCommit(8).build();
        closeAfterTheNextHistoryInsert.set(true);
        grouped.insert(saga("grouped", "o", SagaStatus.RUNNING, T0, 1), transition("grouped", 1, TransitionType.SAGA_STARTED));
        assertEquals(1, grouped.find("grouped").orElseThrow().version(), "written again alone, on another connection");
        assertEquals(1, grouped.history("grouped").size());
    }

    @Test
    void aWriteWhoseConnectionFailsToCloseAfterTheCommitIsReportedStoredNotAsAFailureOrAConflictWithAndWithoutGroupCommit() {
        // The commit succeeded: what closing the connection throws after it (a pool failing to reset the connection
        // it takes back, say) is no failure of the write. Thrown, the write was a failure alone and, under group
        // commit, each write of the batch was tried again alone and met its own committed row as another writer's.
        for (String id : List.of("alone", "grouped")) {
            JdbcSagaStore store = id.equals("alone") ? JdbcSagaStore.create(losingAnswers)
                    : JdbcSagaStore.builder(losingAnswers).groupCommit(8).build();
            failTheNextClose.set(true);
            store.insert(saga(id, "o", SagaStatus.RUNNING, T0, 1), transition(id, 1, TransitionType.SAGA_STARTED));
            failTheNextClose.set(true);
            store.update(saga(id, "o", SagaStatus.COMPLETED, T0, 2), transition(id, 2, TransitionType.SAGA_COMPLETED));
            assertEquals(SagaStatus.COMPLETED, store.find(id).orElseThrow().status());
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

    @Test
    void aWriteRefusedAsAConflictInABatchWhoseCommitOutcomeIsUnknownIsStillReportedAsTheConflictItIs() throws Exception {
        // Nothing of a write the batch refused as stale (another writer's version stored) or as a start of a saga
        // stored already is in the batch's transaction, committed or not: its writer's outcome is that conflict, known
        // whatever the commit did. Only the batch's other writes may be stored.
        JdbcSagaStore store = JdbcSagaStore.builder(losingAnswers).groupCommit(8).groupCommitLanes(1).build();
        for (String id : List.of("s-1", "s-2", "s-3")) {
            store.insert(saga(id, "o", SagaStatus.RUNNING, T0, 1), transition(id, 1, TransitionType.SAGA_STARTED));
        }
        holdTheNextCommit.set(true);
        List<FutureTask<Void>> writes = new ArrayList<>();
        List<Thread> writers = new ArrayList<>();
        List<Runnable> work = List.of(
                () -> store.insert(saga("s-0", "o", SagaStatus.RUNNING, T0, 1), transition("s-0", 1, TransitionType.SAGA_STARTED)),
                () -> store.update(saga("s-1", "o", SagaStatus.COMPLETED, T0, 3), transition("s-1", 3, TransitionType.SAGA_COMPLETED)),
                () -> store.insert(saga("s-2", "o", SagaStatus.RUNNING, T0, 1), transition("s-2", 1, TransitionType.SAGA_STARTED)),
                () -> store.update(saga("s-3", "o", SagaStatus.COMPLETED, T0, 2), transition("s-3", 2, TransitionType.SAGA_COMPLETED)));
        for (Runnable w : work) {
            FutureTask<Void> write = new FutureTask<>(w, null);
            Thread writer = new Thread(write, "writer-" + writers.size());
            writes.add(write);
            writers.add(writer);
            writer.start();
            if (writers.size() == 1) { // s-0's batch, alone, holds the lane in its commit while the others queue
                Awaitility.await().atMost(Duration.ofSeconds(30)).until(() -> heldCommits.get() == 1);
            }
        }
        Awaitility.await().atMost(Duration.ofSeconds(30)).until(() -> writers.subList(1, writers.size()).stream()
                .allMatch(t -> LockSupport.getBlocker(t) instanceof GroupCommit));
        loseTheNextCommitsAnswer.set(true); // the next batch's: s-1's stale update, s-2's start again, s-3's update
        heldCommitMayGo.countDown();

        writes.get(0).get(30, TimeUnit.SECONDS);
        ExecutionException stale = assertThrows(ExecutionException.class, () -> writes.get(1).get(30, TimeUnit.SECONDS));
        assertInstanceOf(ConcurrentSagaUpdateException.class, stale.getCause(), "s-1: stored at version 1, not 2");
        ExecutionException started = assertThrows(ExecutionException.class, () -> writes.get(2).get(30, TimeUnit.SECONDS));
        assertInstanceOf(ConcurrentSagaUpdateException.class, started.getCause(), "s-2: stored already");
        ExecutionException unknown = assertThrows(ExecutionException.class, () -> writes.get(3).get(30, TimeUnit.SECONDS));
        assertInstanceOf(CommitOutcomeUnknownException.class, unknown.getCause(), "s-3: its update may be stored");
        assertEquals(1, store.find("s-1").orElseThrow().version());
        assertEquals(SagaStatus.COMPLETED, store.find("s-3").orElseThrow().status(), "the batch was committed");
    }

    /** Connections of {@code target} whose commit, when armed, commits and then throws as a connection lost then. */
    private DataSource answerLosing(DataSource target) {
        return Around.wrap(DataSource.class, target, (method, proceed) -> {
            Object handedOut = proceed.call();
            return handedOut instanceof Connection c ? Around.wrap(Connection.class, c, (m, call) -> {
                if (m.equals("close") && failTheNextClose.getAndSet(false)) {
                    call.call();
                    throw new SQLException("simulated: the connection was closed, and then its close failed", "08006");
                }
                if (m.equals("prepareStatement") && closeAfterTheNextHistoryInsert.get()) {
                    PreparedStatement statement = (PreparedStatement) call.call();
                    return Around.wrap(PreparedStatement.class, statement, (sm, execute) -> {
                        Object done = execute.call();
                        if (sm.startsWith("execute") && statement.toString().contains("ss_saga_transition")
                                && closeAfterTheNextHistoryInsert.getAndSet(false)) {
                            c.close();
                        }
                        return done;
                    });
                }
                if (m.equals("commit") && holdTheNextCommit.getAndSet(false)) {
                    heldCommits.incrementAndGet();
                    heldCommitMayGo.await();
                    return call.call();
                }
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
