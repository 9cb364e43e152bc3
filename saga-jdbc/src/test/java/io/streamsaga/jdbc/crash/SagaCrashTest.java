package io.streamsaga.jdbc.crash;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.PublishException;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.jdbc.JdbcSchema;
import io.streamsaga.jdbc.inbox.JdbcInbox;
import io.streamsaga.jdbc.outbox.OutboxRelay;
import io.streamsaga.jdbc.saga.JdbcSagaStore;
import io.streamsaga.jdbc.testing.DatabaseExtension;
import io.streamsaga.jdbc.testing.TestDatabase;
import io.streamsaga.message.Message;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.time.Scheduler;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.File;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Real crashes: a child JVM ({@link OrderSagaWorker}) runs a steady stream of order sagas against the
 * embedded PostgreSQL server and is killed with SIGKILL at random moments, at least 20 times; every new
 * child first recovers what its predecessor left with a fresh orchestrator (every other child writes with
 * group commit, so kills also hit batched transactions). Meanwhile this process relays
 * the outbox to a bus whose acknowledgements get lost now and then (so messages go out twice), and a
 * consumer applies them through the inbox. At the end a fresh orchestrator recovers the rest, and the
 * invariants are checked against the application's own tables.
 */
class SagaCrashTest {
    private static final Logger log = LoggerFactory.getLogger(SagaCrashTest.class);
    private static final int KILLS = Math.max(20, Integer.getInteger("streamsaga.crash.kills", 20));

    @RegisterExtension
    final DatabaseExtension db = DatabaseExtension.postgres();

    @Test
    void sagasKilledAtRandomMomentsEndTerminalWithEachCompensationOnceInReverseOrderAndEveryMessageDeliveredOnce()
            throws Exception {
        TestDatabase database = db.database();
        JdbcSchema.of(database.dataSource()).migrate();
        CrashOrderSaga.createApplicationTables(database.dataSource());
        SplittableRandom random = new SplittableRandom(20261126L);

        try (Scheduler scheduler = Scheduler.system();
             InMemoryTransport transport = InMemoryTransport.builder().build();
             EventBus bus = EventBus.builder(transport).types(CrashOrderSaga.types()).scheduler(scheduler).build()) {
            AtomicInteger deliveries = new AtomicInteger();
            JdbcInbox inbox = JdbcInbox.create(database.dataSource(), scheduler.clock());
            bus.subscribe("billing", CrashOrderSaga.TOPIC, Message.class, inbox.handler((message, ctx, c) -> {
                try (PreparedStatement ps = c.prepareStatement(
                        "INSERT INTO app_delivery (message_id, consumer_group) VALUES (?, ?)")) {
                    ps.setString(1, message.id());
                    ps.setString(2, ctx.group());
                    ps.executeUpdate();
                }
            }));
            bus.subscribe("raw-counter", CrashOrderSaga.TOPIC, Message.class, (m, ctx) -> deliveries.incrementAndGet());
            // every 15th acknowledgement is lost after the message went out: the relay publishes it again
            AtomicInteger sends = new AtomicInteger();
            OutboxRelay.MessagePublisher lossyAcks = m -> bus.publish(m).thenCompose(position -> sends.incrementAndGet() % 15 == 0
                    ? CompletableFuture.failedFuture(new PublishException(m.topic(), "acknowledgement lost", null, true))
                    : CompletableFuture.completedFuture(position));
            OutboxRelay relay = startRelay(database, lossyAcks, scheduler);

            int kills = 0;
            for (int i = 0; i < KILLS; i++) {
                long before = database.queryLong("SELECT COUNT(*) FROM app_order_request");
                long target = before + 3 + random.nextInt(25);
                Process child = startChild(database, i);
                try {
                    await().atMost(Duration.ofSeconds(90)).pollInterval(Duration.ofMillis(20)).until(() -> !child.isAlive()
                            || database.queryLong("SELECT COUNT(*) FROM app_order_request") >= target);
                    assertTrue(child.isAlive(), "child " + i + " died on its own; see target/crash-child-" + i + ".log");
                } finally {
                    child.destroyForcibly(); // SIGKILL on Unix
                    child.waitFor(30, TimeUnit.SECONDS);
                }
                kills++;
                if (i % 7 == 3) { // the relay process "restarts" too
                    relay.close();
                    relay = startRelay(database, lossyAcks, scheduler);
                }
            }

            long unfinishedAfterKills = database.queryLong(
                    "SELECT COUNT(*) FROM ss_saga WHERE status IN ('RUNNING', 'COMPENSATING')");
            try (SagaOrchestrator recovery = SagaOrchestrator.builder().store(JdbcSagaStore.create(database.dataSource()))
                    .scheduler(scheduler).register(CrashOrderSaga.definition(database.dataSource())).build()) {
                recovery.recover();
                await().atMost(Duration.ofSeconds(60)).until(() -> recovery.findByStatus(SagaStatus.RUNNING,
                        SagaStatus.COMPENSATING).isEmpty());
            }
            OutboxRelay finalRelay = relay;
            await().atMost(Duration.ofSeconds(60)).until(() ->
                    database.queryLong("SELECT COUNT(*) FROM ss_outbox WHERE status <> 'SENT'") == 0
                            && database.queryLong("SELECT COUNT(DISTINCT message_id) FROM app_delivery")
                            == database.queryLong("SELECT COUNT(*) FROM ss_outbox"));
            finalRelay.close();

            Map<String, Integer> outcomes = checkEverySagaAgainstTheApplicationTables(database);
            long messages = database.queryLong("SELECT COUNT(*) FROM ss_outbox");
            long effects = database.queryLong("SELECT COUNT(*) FROM app_effect");
            assertEquals(effects, messages, "one outbox message per effect, written in the effect's transaction");
            assertEquals(messages, database.queryLong("SELECT COUNT(*) FROM app_delivery"),
                    "the inbox let each message through exactly once");
            assertTrue(deliveries.get() >= messages);
            assertTrue(kills >= 20, "at least 20 kills");
            assertEquals(0, database.queryLong("SELECT COUNT(*) FROM ss_saga WHERE status NOT IN ('COMPLETED', 'COMPENSATED')"));
            log.info("crash test: {} SIGKILLs; {} sagas unfinished after the last kill, all recovered; outcomes {}; "
                            + "{} outbox messages, {} deliveries on the bus ({} duplicates), {} applied through the inbox",
                    kills, unfinishedAfterKills, outcomes, messages, deliveries.get(), deliveries.get() - messages,
                    database.queryLong("SELECT COUNT(*) FROM app_delivery"));
        }
    }

    private static OutboxRelay startRelay(TestDatabase database, OutboxRelay.MessagePublisher publisher, Scheduler scheduler) {
        OutboxRelay relay = OutboxRelay.builder(database.dataSource()).publisher(publisher).scheduler(scheduler)
                .pollInterval(Duration.ofMillis(50)).batchSize(50).backoff(io.streamsaga.retry.RetryPolicy.builder()
                        .initialBackoff(Duration.ofMillis(10)).maxBackoff(Duration.ofMillis(100)).build())
                .build();
        relay.start();
        return relay;
    }

    private static Process startChild(TestDatabase database, int index) throws Exception {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> command = List.of(java, "-Xmx128m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
                "-Djava.io.tmpdir=" + System.getProperty("java.io.tmpdir"),
                "-cp", System.getProperty("java.class.path"), OrderSagaWorker.class.getName(),
                database.jdbcUrl(), database.user(), Integer.toString(index));
        File logFile = new File("target/crash-child-" + index + ".log");
        return new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(logFile).start();
    }

    /**
     * For every order the application asked for, from its own tables: either nothing happened (the process
     * died before the saga was stored), or it completed (every step done, nothing undone), or it failed at
     * its chosen step and each earlier step was undone exactly once, in reverse order.
     */
    private static Map<String, Integer> checkEverySagaAgainstTheApplicationTables(TestDatabase database) throws Exception {
        Map<String, Integer> outcomes = new HashMap<>();
        try (Connection c = database.dataSource().getConnection();
             PreparedStatement requests = c.prepareStatement("SELECT saga_id, fail_at FROM app_order_request ORDER BY saga_id");
             PreparedStatement effects = c.prepareStatement("SELECT step, kind FROM app_effect WHERE saga_id = ? ORDER BY seq");
             ResultSet rs = requests.executeQuery()) {
            while (rs.next()) {
                String sagaId = rs.getString(1);
                int failAt = rs.getInt(2);
                effects.setString(1, sagaId);
                List<String> done = new ArrayList<>();
                List<String> undone = new ArrayList<>();
                try (ResultSet e = effects.executeQuery()) {
                    while (e.next()) {
                        (e.getString(2).equals("DO") ? done : undone).add(e.getString(1));
                    }
                }
                List<String> steps = CrashOrderSaga.STEPS;
                String outcome;
                if (done.isEmpty() && undone.isEmpty()) {
                    // killed between the application's request row and the saga's first write
                    outcome = "never-started";
                    assertEquals(0, database.queryLong("SELECT COUNT(*) FROM ss_saga WHERE saga_id = '" + sagaId + "'"),
                            "saga " + sagaId + " is stored but its first step never took effect");
                } else if (failAt == 0) {
                    outcome = "completed";
                    assertEquals(steps, done, "saga " + sagaId + " did every step once, in order");
                    assertEquals(List.of(), undone, "saga " + sagaId + " completed, so nothing was undone");
                } else {
                    outcome = "compensated";
                    List<String> expectedDone = steps.subList(0, failAt - 1);
                    assertEquals(expectedDone, done, "saga " + sagaId + " did the steps before step " + failAt);
                    List<String> reversed = new ArrayList<>(expectedDone);
                    java.util.Collections.reverse(reversed);
                    assertEquals(reversed, undone, "saga " + sagaId + " undid each done step once, in reverse order");
                }
                outcomes.merge(outcome, 1, Integer::sum);
            }
        }
        return outcomes;
    }
}
