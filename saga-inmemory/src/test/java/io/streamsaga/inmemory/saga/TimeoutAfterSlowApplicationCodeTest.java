package io.streamsaga.inmemory.saga;

import io.streamsaga.bus.EventBus;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.metrics.MetricsRecorder;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaInterceptor;
import io.streamsaga.saga.SagaListener;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.TransitionType;
import io.streamsaga.saga.spi.SagaStore;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A step's timeout counts from the start of its attempt (docs/sagas.md), not from the engine's last reading of the
 * clock: application code that takes its time on the driving thread between two attempts (a listener hearing of the
 * step before, an interceptor's {@code after()} ending it, the group's merge taking its result, here for a minute of
 * virtual time through {@code scheduler.sleep}) leaves the next attempt its whole timeout. The next step, quick, has a
 * timeout of ten seconds: it must not time out, nor its saga compensate or fail.
 */
class TimeoutAfterSlowApplicationCodeTest {
    record Trip(String id) {
    }

    private static final Duration TIMEOUT = Duration.ofSeconds(10);
    private static final Duration SLOW = Duration.ofMinutes(1);

    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final EventBus bus = EventBus.builder(transport).scheduler(scheduler).retryPolicy(RetryPolicy.NONE).build();
    private final InMemorySagaStore store = new InMemorySagaStore();
    private final List<String> ran = new CopyOnWriteArrayList<>();

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    /** An orchestrator whose listener takes a minute to hear of the start of compensation and of step "order". */
    private SagaOrchestrator orchestrator(SagaDefinition<Trip> definition) {
        return builder()
                .listener(new SagaListener() {
                    @Override
                    public void onStepCompleted(SagaInstance instance, String step) {
                        if (step.equals("order")) {
                            scheduler.sleep(SLOW); // an audit write, say, that takes a minute
                        }
                    }

                    @Override
                    public void onCompensationStarting(SagaInstance instance) {
                        scheduler.sleep(SLOW);
                    }
                })
                .register(definition).build();
    }

    /** Members of a parallel group run on the calling thread, as in the test kit. */
    private SagaOrchestrator.Builder builder() {
        return SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler).parallelExecutor(Runnable::run);
    }

    /** No attempt of the saga timed out (nor any compensation failed), and it ended {@code status}. */
    private void assertNothingTimedOutAndItEnded(SagaStatus status) {
        List<TransitionType> timedOut = store.history("trip-1").stream().map(t -> t.type())
                .filter(t -> t == TransitionType.STEP_TIMED_OUT || t == TransitionType.COMPENSATION_FAILED).toList();
        assertEquals(List.of(), timedOut, store.history("trip-1").toString());
        assertEquals(status, store.find("trip-1").orElseThrow().status());
    }

    @Test
    void aQuickParallelMemberAfterASlowListenerDoesNotTimeOut() {
        SagaDefinition<Trip> definition = SagaDefinition.builder("trip", Trip.class)
                .step("order").action((trip, ctx) -> trip).compensation((trip, ctx) -> ran.add("undo order"))
                .parallel(group -> {
                    group.step("flight").action((trip, ctx) -> trip).compensation((trip, ctx) -> ran.add("undo flight"))
                            .timeout(TIMEOUT).retry(RetryPolicy.NONE);
                    group.step("hotel").action((trip, ctx) -> trip).compensation((trip, ctx) -> ran.add("undo hotel"));
                })
                .build();
        try (SagaOrchestrator orchestrator = orchestrator(definition)) {
            orchestrator.start(definition, "trip-1", null, new Trip("t"));
            scheduler.advance(SLOW);

            assertNothingTimedOutAndItEnded(SagaStatus.COMPLETED);
            assertEquals(List.of(), ran);
        }
    }

    @Test
    void anAsynchronousActionStartedAfterASlowListenerHasItsWholeTimeout() {
        CompletableFuture<Trip> booked = new CompletableFuture<>();
        SagaDefinition<Trip> definition = SagaDefinition.builder("trip", Trip.class)
                .step("order").action((trip, ctx) -> trip).compensation((trip, ctx) -> ran.add("undo order"))
                .step("flight").asyncAction((trip, ctx) -> booked).compensation((trip, ctx) -> ran.add("undo flight"))
                .timeout(TIMEOUT).retry(RetryPolicy.NONE)
                .build();
        try (SagaOrchestrator orchestrator = orchestrator(definition)) {
            orchestrator.start(definition, "trip-1", null, new Trip("t"));
            scheduler.advance(TIMEOUT.minusSeconds(1)); // within its ten seconds
            booked.complete(new Trip("t"));
            scheduler.advance(SLOW);

            assertNothingTimedOutAndItEnded(SagaStatus.COMPLETED);
            assertEquals(List.of(), ran);
        }
    }

    @Test
    void aQuickParallelMembersCompensationAfterASlowListenerDoesNotTimeOut() {
        SagaDefinition<Trip> definition = SagaDefinition.builder("trip", Trip.class)
                .parallel(group -> {
                    group.step("flight").action((trip, ctx) -> trip).compensation((trip, ctx) -> ran.add("undo flight"))
                            .compensationRetry(RetryPolicy.NONE).timeout(TIMEOUT);
                    group.step("hotel").action((trip, ctx) -> trip).compensation((trip, ctx) -> ran.add("undo hotel"));
                })
                .step("pay").action((trip, ctx) -> {
                    throw new IllegalStateException("card declined");
                }).retry(RetryPolicy.NONE)
                .build();
        try (SagaOrchestrator orchestrator = orchestrator(definition)) {
            orchestrator.start(definition, "trip-1", null, new Trip("t"));
            scheduler.advance(SLOW);

            assertNothingTimedOutAndItEnded(SagaStatus.COMPENSATED);
            assertTrue(ran.containsAll(List.of("undo hotel", "undo flight")), ran.toString());
        }
    }

    @Test
    void aParallelMemberStartedAfterASlowInterceptorEndedTheOneBeforeHasItsWholeTimeout() {
        SagaDefinition<Trip> definition = SagaDefinition.builder("trip", Trip.class)
                .parallel(group -> {
                    // a timeout longer than its interceptor's minute: its timer never falls due
                    group.step("flight").action((trip, ctx) -> trip).compensation((trip, ctx) -> ran.add("undo flight"))
                            .timeout(SLOW.multipliedBy(2)).retry(RetryPolicy.NONE);
                    group.step("hotel").action((trip, ctx) -> trip).compensation((trip, ctx) -> ran.add("undo hotel"))
                            .timeout(TIMEOUT).retry(RetryPolicy.NONE);
                })
                .build();
        SagaInterceptor slowAfterFlight = new SagaInterceptor() {
            @Override
            public void after(Invocation invocation, Throwable error) {
                if (invocation.context().step().equals("flight")) {
                    scheduler.sleep(SLOW); // a tracing exporter that blocks for a minute, say
                }
            }
        };
        try (SagaOrchestrator orchestrator = builder().interceptor(slowAfterFlight).register(definition).build()) {
            orchestrator.start(definition, "trip-1", null, new Trip("t"));
            scheduler.advance(SLOW);

            assertNothingTimedOutAndItEnded(SagaStatus.COMPLETED);
            assertEquals(List.of(), ran);
        }
    }
    @Test
    void aParallelMemberStartedAfterASlowMergeOfTheOneBeforeHasItsWholeTimeout() {
        SagaDefinition<Trip> definition = SagaDefinition.builder("trip", Trip.class)
                .parallel(group -> {
                    group.step("flight").action((trip, ctx) -> new Trip("flight")).compensation((trip, ctx) -> ran.add("undo flight"))
                            .timeout(TIMEOUT).retry(RetryPolicy.NONE);
                    group.step("hotel").action((trip, ctx) -> new Trip("hotel")).compensation((trip, ctx) -> ran.add("undo hotel"))
                            .timeout(TIMEOUT).retry(RetryPolicy.NONE);
                    group.merge((trip, result) -> {
                        if (result.id().equals("flight")) {
                            scheduler.sleep(SLOW); // a merge that looks something up, say, for a minute
                        }
                        return result;
                    });
                })
                .build();
        try (SagaOrchestrator orchestrator = builder().register(definition).build()) {
            orchestrator.start(definition, "trip-1", null, new Trip("t"));
            scheduler.advance(SLOW);

            assertNothingTimedOutAndItEnded(SagaStatus.COMPLETED);
            assertEquals(List.of(), ran);
        }
    }

    /** A group whose first member, "flight", has a timeout of ten seconds and which starts the saga. */
    private static SagaDefinition<Trip> startingWithATimedParallelMember() {
        return SagaDefinition.builder("trip", Trip.class)
                .parallel(group -> {
                    group.step("flight").action((trip, ctx) -> trip).compensation((trip, ctx) -> { })
                            .timeout(TIMEOUT).retry(RetryPolicy.NONE);
                    group.step("hotel").action((trip, ctx) -> trip).compensation((trip, ctx) -> { });
                })
                .build();
    }

    @Test
    void aParallelMemberStartedAfterASlowMetricsRecorderHeardOfTheStartHasItsWholeTimeout() {
        SagaDefinition<Trip> definition = startingWithATimedParallelMember();
        MetricsRecorder slowOnStart = new MetricsRecorder() {
            @Override
            public void sagaStarted(String sagaName) {
                scheduler.sleep(SLOW); // a recorder pushing to a remote registry, say, that takes a minute
            }
        };
        try (SagaOrchestrator orchestrator = builder().metrics(slowOnStart).register(definition).build()) {
            orchestrator.start(definition, "trip-1", null, new Trip("t"));
            scheduler.advance(SLOW);

            assertNothingTimedOutAndItEnded(SagaStatus.COMPLETED);
        }
    }

    @Test
    void aParallelMemberWhoseStartTheStoreTakesAMinuteToWriteHasItsWholeTimeout() {
        SagaDefinition<Trip> definition = startingWithATimedParallelMember();
        SagaStore slowStore = new ForwardingSagaStore(store) {
            @Override
            public void update(SagaInstance updated, SagaTransition transition) {
                if (transition.type() == TransitionType.STEP_STARTED && "flight".equals(transition.step())) {
                    scheduler.sleep(SLOW); // a database waiting for a lock, say
                }
                super.update(updated, transition);
            }
        };
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(slowStore).bus(bus).scheduler(scheduler)
                .parallelExecutor(Runnable::run).register(definition).build()) {
            orchestrator.start(definition, "trip-1", null, new Trip("t"));
            scheduler.advance(SLOW);

            assertNothingTimedOutAndItEnded(SagaStatus.COMPLETED);
        }
    }
}
