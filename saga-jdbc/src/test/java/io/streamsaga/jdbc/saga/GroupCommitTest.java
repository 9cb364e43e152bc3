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
