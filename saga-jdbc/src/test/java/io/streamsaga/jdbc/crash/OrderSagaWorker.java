package io.streamsaga.jdbc.crash;

import io.streamsaga.jdbc.saga.JdbcSagaStore;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.time.Scheduler;
import org.postgresql.ds.PGSimpleDataSource;

import java.sql.PreparedStatement;
import java.util.SplittableRandom;
import java.util.UUID;

/**
 * The child process of {@link SagaCrashTest}: recovers what the previous (killed) process left unfinished
 * with a fresh orchestrator, then runs order sagas on three threads until it is killed. About a third
 * of the sagas fail at step 2 or 3. Every other process (odd seed) runs the saga store with group
 * commit, so kills also land in the middle of batched transactions and the next process recovers what a
 * batch left. Arguments: JDBC URL, user, random seed.
 */
public final class OrderSagaWorker {
    private OrderSagaWorker() {
    }

    public static void main(String[] args) throws Exception {
        PGSimpleDataSource dataSource = new PGSimpleDataSource();
        dataSource.setURL(args[0]);
        dataSource.setUser(args[1]);
        long seed = Long.parseLong(args[2]);
        SagaDefinition<CrashOrderSaga.OrderData> definition = CrashOrderSaga.definition(dataSource);
        SagaOrchestrator orchestrator = SagaOrchestrator.builder()
                .store(JdbcSagaStore.builder(dataSource).groupCommit(seed % 2 == 0 ? 1 : 16).build())
                .scheduler(Scheduler.system()).register(definition).build();
        orchestrator.recover();
        for (int t = 0; t < 3; t++) {
            SplittableRandom random = new SplittableRandom(seed * 31 + t);
            Thread thread = new Thread(() -> {
                while (true) {
                    String sagaId = UUID.randomUUID().toString();
                    int roll = random.nextInt(6);
                    int failAt = roll == 0 ? 2 : roll == 1 ? 3 : 0;
                    try (var c = dataSource.getConnection();
                         PreparedStatement ps = c.prepareStatement("INSERT INTO app_order_request (saga_id, fail_at) VALUES (?, ?)")) {
                        ps.setString(1, sagaId);
                        ps.setInt(2, failAt);
                        ps.executeUpdate();
                        orchestrator.start(definition, sagaId, sagaId, new CrashOrderSaga.OrderData(sagaId, failAt))
                                .toCompletableFuture().join();
                    } catch (Exception e) {
                        // keep going: the parent checks the outcome in the database
                    }
                }
            }, "saga-worker-" + t);
            thread.start();
        }
    }
}
