package io.streamsaga.benchmarks;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import io.streamsaga.jdbc.JdbcSchema;
import io.streamsaga.jdbc.saga.JdbcSagaStore;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaResult;
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;

import java.sql.Connection;
import java.sql.Statement;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * Durable sagas per second on a local PostgreSQL 17 (embedded, {@code fsync} and
 * {@code synchronous_commit} on, so every commit waits for its log flush): a 3-step saga with local
 * no-op steps on the JDBC saga store, with one transaction per transition ({@code naive}) against group
 * commit ({@code group}: up to 1,000 transitions of concurrent sagas per transaction, 4 lanes). A saga
 * writes 8 transitions (start; each step started and succeeded; completed).
 *
 * <p>Realistic concurrency, the same for both: 256 sagas in flight at once (256 JMH threads, each
 * driving one saga after another, as 256 request threads of a service would), over a HikariCP pool of
 * 10 connections (its default), which is what bounds the naive way in a real service. Change it with
 * {@code -t}.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 5)
@Measurement(iterations = 3, time = 5)
@Fork(1)
@Threads(256)
@State(Scope.Benchmark)
public class DurableSagaBenchmark {

    /** Saga data. */
    public record OrderData(String orderId, long amount) {
    }

    /**
     * {@code naive}: one transaction per transition; {@code group}: group commit (up to 1,000 per batch) on
     * the default 4 lanes; {@code group-N} (with {@code -p mode=...}): on N lanes.
     */
    @Param({"naive", "group"})
    public String mode;

    /**
     * {@code true}: the schema as {@code migrate()} leaves it; {@code false} (with {@code -p nameStatusIndex=true,false}):
     * without schema version 11's index on (saga name, status), to measure what maintaining it costs a saga's writes.
     */
    @Param({"true"})
    public boolean nameStatusIndex;

    private EmbeddedPostgres postgres;
    private HikariDataSource dataSource;
    private SagaOrchestrator orchestrator;
    private SagaDefinition<OrderData> saga;

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        postgres = EmbeddedPostgres.builder().setLocaleConfig("locale", "C").setPGStartupWait(Duration.ofSeconds(60))
                .setServerConfig("fsync", "on").setServerConfig("synchronous_commit", "on")
                .setServerConfig("max_connections", "50").start();
        HikariConfig config = new HikariConfig();
        config.setJdbcUrl(postgres.getJdbcUrl("postgres", "postgres"));
        config.setMaximumPoolSize(10);
        config.setConnectionTimeout(60_000);
        // pgjdbc sends a batch of INSERTs as multi-row INSERTs (group commit's history rows); no effect on naive.
        config.addDataSourceProperty("reWriteBatchedInserts", "true");
        dataSource = new HikariDataSource(config);
        JdbcSchema.of(dataSource).migrate();
        if (!nameStatusIndex) {
            try (Connection connection = dataSource.getConnection(); Statement statement = connection.createStatement()) {
                statement.execute("DROP INDEX ss_saga_name_status");
            }
        }
        saga = SagaDefinition.builder("order", OrderData.class).dataType("order-data")
                .step("create-order").action((d, ctx) -> d).compensation((d, ctx) -> { })
                .step("reserve-inventory").action((d, ctx) -> d).compensation((d, ctx) -> { })
                .step("process-payment").action((d, ctx) -> d).compensation((d, ctx) -> { })
                .build();
        orchestrator = SagaOrchestrator.builder()
                .store(mode.equals("naive") ? JdbcSagaStore.create(dataSource)
                        : JdbcSagaStore.builder(dataSource).groupCommit(1_000)
                        .groupCommitLanes(mode.equals("group") ? 4 : Integer.parseInt(mode.substring("group-".length()))).build())
                .register(saga).build();
    }

    @Benchmark
    public SagaResult<OrderData> durableSaga() {
        return orchestrator.start(saga, new OrderData("o-1", 100)).toCompletableFuture().join();
    }

    @TearDown(Level.Trial)
    public void tearDown() throws Exception {
        orchestrator.close();
        dataSource.close();
        postgres.close();
    }
}
