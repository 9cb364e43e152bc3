package io.streamsaga.jdbc.saga;

import io.streamsaga.jdbc.JdbcSchema;
import io.streamsaga.jdbc.testing.DatabaseExtension;
import io.streamsaga.saga.ConcurrentSagaUpdateException;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.TransitionType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static io.streamsaga.jdbc.saga.JdbcSagaStoreTest.T0;
import static io.streamsaga.jdbc.saga.JdbcSagaStoreTest.saga;
import static io.streamsaga.jdbc.saga.JdbcSagaStoreTest.transition;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Group commit on PostgreSQL: many writers share transactions, each still sees its own outcome. */
class GroupCommitTest {
    @RegisterExtension
    final DatabaseExtension db = DatabaseExtension.postgres();

    @Test
    void anErrorDuringABatchStillGivesEveryWriterOfTheBatchItsOutcome() throws Exception {
        // GroupCommit: the committer "completes each writer with its own outcome and wakes it". An Error (not an
        // Exception) during a batch escaped to the committer alone and left the batch's other writers parked for ever.
        JdbcSchema.of(db.database().dataSource()).migrate();
        javax.sql.DataSource real = db.database().dataSource();
        java.util.concurrent.atomic.AtomicInteger connections = new java.util.concurrent.atomic.AtomicInteger();
        java.util.concurrent.atomic.AtomicBoolean armed = new java.util.concurrent.atomic.AtomicBoolean();
        CountDownLatch firstBatchMayGo = new CountDownLatch(1);
        javax.sql.DataSource failingOnce = (javax.sql.DataSource) java.lang.reflect.Proxy.newProxyInstance(
                getClass().getClassLoader(), new Class<?>[]{javax.sql.DataSource.class}, (proxy, method, args) -> {
                    if (armed.get() && method.getName().equals("getConnection")) {
                        int n = connections.incrementAndGet();
                        if (n == 1) {
                            firstBatchMayGo.await(); // the first batch (one write) holds the lane while others queue
                        } else if (n == 2) {
                            throw new AssertionError("simulated Error in the second batch");
                        }
                    }
                    try {
                        return method.invoke(real, args);
                    } catch (java.lang.reflect.InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
        JdbcSagaStore store = JdbcSagaStore.builder(failingOnce).groupCommit(16).groupCommitLanes(1).build();
        armed.set(true); // the build's schema check took a connection; the batches' ones count from here
        List<java.util.concurrent.FutureTask<Void>> writes = new ArrayList<>();
        List<Thread> writers = new ArrayList<>();
        for (String id : List.of("s-a", "s-b", "s-c")) {
            java.util.concurrent.FutureTask<Void> write = new java.util.concurrent.FutureTask<>(() -> {
                store.insert(saga(id, "k", SagaStatus.RUNNING, T0, 1), transition(id, 1, TransitionType.SAGA_STARTED));
                return null;
            });
            Thread writer = new Thread(write, "writer-" + id);
            writes.add(write);
            writers.add(writer);
            writer.start();
            if (writers.size() == 1) {
                org.awaitility.Awaitility.await().atMost(java.time.Duration.ofSeconds(30)).until(() -> connections.get() == 1);
            }
        }
        // s-b and s-c are queued and parked on the group commit: they go into the second batch together
        org.awaitility.Awaitility.await().atMost(java.time.Duration.ofSeconds(30)).until(() ->
                java.util.concurrent.locks.LockSupport.getBlocker(writers.get(1)) instanceof GroupCommit
                        && java.util.concurrent.locks.LockSupport.getBlocker(writers.get(2)) instanceof GroupCommit);
        firstBatchMayGo.countDown();

        for (java.util.concurrent.FutureTask<Void> write : writes) {
            try {
                write.get(30, TimeUnit.SECONDS);
            } catch (java.util.concurrent.ExecutionException tolerated) {
                // an outcome: the write failed (its own Error), rather than never returning
            }
        }
        for (String id : List.of("s-a", "s-b", "s-c")) {
            assertEquals(1L, db.database().queryLong("SELECT COUNT(*) FROM ss_saga WHERE saga_id = '" + id + "'"),
                    id + ": the batch's Error was not its write's fault; tried alone, it is stored");
        }
    }

    @Test
    void concurrentWritersAreBatchedAndEachTransitionIsStoredOnceWithConflictsReportedToTheirOwnWriter()
            throws Exception {
        JdbcSchema.of(db.database().dataSource()).migrate();
        JdbcSagaStore store = JdbcSagaStore.builder(db.database().dataSource()).groupCommit(16).build();
        int writers = 8;
        int sagasEach = 25;
        ExecutorService pool = Executors.newFixedThreadPool(writers);
        try {
            CountDownLatch start = new CountDownLatch(1);
            List<Future<Integer>> conflicts = new ArrayList<>();
            for (int w = 0; w < writers; w++) {
                int writer = w;
                conflicts.add(pool.submit(() -> {
                    start.await();
                    int refused = 0;
                    for (int i = 0; i < sagasEach; i++) {
                        String id = "s-" + writer + "-" + i;
                        store.insert(saga(id, "w" + writer, SagaStatus.RUNNING, T0, 1), transition(id, 1, TransitionType.SAGA_STARTED));
                        store.update(saga(id, "w" + writer, SagaStatus.COMPLETED, T0, 2), transition(id, 2, TransitionType.SAGA_COMPLETED));
                        try {
                            store.update(saga(id, "w" + writer, SagaStatus.RUNNING, T0, 2), transition(id, 2, TransitionType.STEP_STARTED));
                        } catch (ConcurrentSagaUpdateException expected) {
                            refused++;
                        }
                    }
                    return refused;
                }));
            }
            start.countDown();
            for (Future<Integer> refused : conflicts) {
                assertEquals(sagasEach, refused.get(60, TimeUnit.SECONDS), "every stale update is refused to its writer");
            }
        } finally {
            pool.shutdownNow();
        }
        assertEquals(writers * sagasEach, db.database().queryLong("SELECT COUNT(*) FROM ss_saga WHERE status = 'COMPLETED'"));
        assertEquals(2L * writers * sagasEach, db.database().queryLong("SELECT COUNT(*) FROM ss_saga_transition"));
        assertThrows(ConcurrentSagaUpdateException.class, () -> store.insert(saga("s-0-0", "x", SagaStatus.RUNNING, T0, 1),
                transition("s-0-0", 1, TransitionType.SAGA_STARTED)));
    }
}
