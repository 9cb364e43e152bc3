package io.streamsaga.jdbc.crash;

import io.streamsaga.codec.JsonEventCodec;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.jdbc.JdbcTransactions;
import io.streamsaga.jdbc.outbox.JdbcOutbox;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.StepContext;

import javax.sql.DataSource;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.Statement;
import java.util.List;

/**
 * The application of the crash test: a three-step order saga whose every step and compensation writes
 * its effect to the application's own table, idempotently by the step's idempotency key, together with
 * an outgoing event in the same transaction (transactional outbox). A saga fails at a chosen step
 * ({@code failAt} 2 or 3; 0 for none), so the steps before it must be compensated in reverse order.
 */
final class CrashOrderSaga {
    static final List<String> STEPS = List.of("create-order", "reserve-inventory", "process-payment");
    static final String TOPIC = "order-events";

    /** The saga data. */
    record OrderData(String orderId, int failAt) {
    }

    /** The event every effect emits through the outbox. */
    record OrderStepEvent(String sagaId, String step, String kind) {
    }

    private CrashOrderSaga() {
    }

    static TypeRegistry types() {
        return TypeRegistry.builder().register("order-step-event", 1, OrderStepEvent.class).build();
    }

    static void createApplicationTables(DataSource dataSource) {
        new JdbcTransactions(dataSource).run(c -> {
            try (Statement s = c.createStatement()) {
                s.execute("CREATE TABLE app_order_request (saga_id VARCHAR(64) PRIMARY KEY, fail_at INTEGER NOT NULL)");
                s.execute("CREATE TABLE app_effect (seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
                        + " effect_key VARCHAR(200) NOT NULL UNIQUE, saga_id VARCHAR(64) NOT NULL,"
                        + " step VARCHAR(50) NOT NULL, kind VARCHAR(4) NOT NULL)");
                s.execute("CREATE TABLE app_delivery (seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
                        + " message_id VARCHAR(200) NOT NULL, consumer_group VARCHAR(50) NOT NULL)");
            }
        });
    }

    static SagaDefinition<OrderData> definition(DataSource dataSource) {
        JdbcTransactions tx = new JdbcTransactions(dataSource);
        JdbcOutbox outbox = JdbcOutbox.builder(dataSource).codec(new JsonEventCodec(types())).build();
        SagaDefinition.Builder<OrderData> builder = SagaDefinition.builder("crash-order", OrderData.class)
                .version(1).dataType("crash-order-data");
        SagaDefinition.StepBuilder<OrderData> step = null;
        for (int i = 0; i < STEPS.size(); i++) {
            int number = i + 1;
            String name = STEPS.get(i);
            step = (step == null ? builder.step(name) : step.step(name))
                    .action((data, ctx) -> {
                        if (data.failAt() == number) {
                            throw new IllegalStateException(name + " declined for " + data.orderId());
                        }
                        tx.run(c -> effect(c, outbox, ctx, ctx.idempotencyKey(), "DO"));
                        return data;
                    })
                    .retry(RetryPolicy.NONE)
                    .compensation((data, ctx) -> tx.run(c -> effect(c, outbox, ctx, ctx.idempotencyKey() + "/undo", "UNDO")));
        }
        return step.build();
    }

    /** Writes the effect once per key; the event goes out only with the first write. */
    private static void effect(Connection c, JdbcOutbox outbox, StepContext ctx, String key, String kind) throws Exception {
        try (PreparedStatement ps = c.prepareStatement("MERGE INTO app_effect e USING (VALUES (CAST(? AS VARCHAR(200))))"
                + " AS s(effect_key) ON e.effect_key = s.effect_key WHEN NOT MATCHED THEN"
                + " INSERT (effect_key, saga_id, step, kind) VALUES (s.effect_key, ?, ?, ?)")) {
            ps.setString(1, key);
            ps.setString(2, ctx.sagaId());
            ps.setString(3, ctx.step());
            ps.setString(4, kind);
            if (ps.executeUpdate() == 1) {
                outbox.append(c, TOPIC, ctx.sagaId(), new OrderStepEvent(ctx.sagaId(), ctx.step(), kind));
            }
        }
    }
}
