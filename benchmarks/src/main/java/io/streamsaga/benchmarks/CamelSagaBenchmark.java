package io.streamsaga.benchmarks;

import org.apache.camel.CamelContext;
import org.apache.camel.CamelExecutionException;
import org.apache.camel.ProducerTemplate;
import org.apache.camel.builder.RouteBuilder;
import org.apache.camel.impl.DefaultCamelContext;
import org.apache.camel.model.SagaPropagation;
import org.apache.camel.saga.InMemorySagaService;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The same 3-step saga as {@link SagaBenchmark} on Apache Camel's Saga EIP with its
 * {@link InMemorySagaService}: three {@code direct:} participant routes with MANDATORY propagation, each
 * incrementing a counter in a {@link ConcurrentHashMap}, with compensation routes that decrement it. In the
 * failing variant step 3 throws; Camel runs compensations asynchronously, so the benchmark waits until both
 * have run before the next saga. Camel needs at least 10 one-second warm-up iterations to settle.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 10, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "-Dorg.slf4j.simpleLogger.log.org.apache.camel=off")
@State(Scope.Thread)
public class CamelSagaBenchmark {
    final ConcurrentHashMap<String, Long> counters = new ConcurrentHashMap<>();
    final AtomicLong compensations = new AtomicLong();
    private CamelContext camel;
    private ProducerTemplate template;
    private final SagaBenchmark.Data data = new SagaBenchmark.Data(42);

    /** {@code default}: Camel's default error handler, as an application gets it; {@code none}: the saga EIP alone. */
    @Param({"default", "none"})
    public String errorHandler;

    @Setup
    public void setUp() throws Exception {
        camel = new DefaultCamelContext();
        camel.addService(new InMemorySagaService());
        camel.addRoutes(new RouteBuilder() {
            @Override
            public void configure() {
                if (errorHandler.equals("none")) {
                    errorHandler(noErrorHandler()); // no logging or redelivery: the saga EIP alone
                }
                from("direct:saga").saga().to("direct:one").to("direct:two").to("direct:three");
                from("direct:saga-failing").saga().to("direct:one").to("direct:two").to("direct:three-failing");
                step("one");
                step("two");
                step("three");
                from("direct:three-failing").saga().propagation(SagaPropagation.MANDATORY)
                        .process(exchange -> {
                            throw SagaBenchmark.DECLINED;
                        });
            }

            private void step(String name) {
                from("direct:" + name).saga().propagation(SagaPropagation.MANDATORY)
                        .compensation("direct:undo-" + name)
                        .process(exchange -> counters.merge(name, 1L, Long::sum));
                from("direct:undo-" + name).process(exchange -> {
                    counters.merge(name, -1L, Long::sum);
                    compensations.incrementAndGet();
                });
            }
        });
        camel.start();
        template = camel.createProducerTemplate();
    }

    @TearDown
    public void tearDown() {
        camel.stop();
    }

    @Benchmark
    public Object camelSuccess() {
        return template.requestBody("direct:saga", data);
    }

    @Benchmark
    public long camelCompensate() {
        long before = compensations.get();
        try {
            template.requestBody("direct:saga-failing", data);
            throw new IllegalStateException("the failing saga succeeded");
        } catch (CamelExecutionException expected) {
            // step 3 failed; Camel compensates steps 2 and 1 asynchronously
        }
        while (compensations.get() < before + 2) {
            Thread.onSpinWait();
        }
        return compensations.get();
    }
}
