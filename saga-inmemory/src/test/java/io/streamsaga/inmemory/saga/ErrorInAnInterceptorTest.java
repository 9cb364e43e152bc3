package io.streamsaga.inmemory.saga;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.inmemory.saga.testkit.SimulatedCrash;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaInterceptor;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * One rule for what the application's hooks throw (SagaInterceptor, SagaListener): what an interceptor's
 * {@code after()} throws is logged and ignored, an Error such as an AssertionError too, as a listener's is: the
 * invocation it ends already happened, and its outcome is the saga's. Only an Error that stands for the process
 * dying (a VirtualMachineError, a test's SimulatedProcessCrash) stops the run there, as it would in the action.
 */
class ErrorInAnInterceptorTest {
    record Data(String id) {
    }

    record Reserve(String id) {
    }

    record Reserved(String id) {
    }

    record Release(String id) {
    }

    record Released(String id) {
    }

    private final InMemorySagaStore store = new InMemorySagaStore();
    private final List<String> ran = new CopyOnWriteArrayList<>();
    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final EventBus bus = EventBus.builder(transport).scheduler(scheduler).retryPolicy(RetryPolicy.NONE)
            .types(TypeRegistry.builder().register("reserve", 1, Reserve.class).register("reserved", 1, Reserved.class)
                    .register("release", 1, Release.class).register("released", 1, Released.class).build())
            .build();

    @AfterEach
    void closeBus() {
        bus.close();
        transport.close();
    }

    private SagaDefinition<Data> definition() {
        return SagaDefinition.builder("intercepted-saga", Data.class)
                .step("reserve").action((d, ctx) -> {
                    ran.add("reserve");
                    return d;
                })
                .step("book").action((d, ctx) -> {
                    ran.add("book");
                    return d;
                })
                .build();
    }

    private SagaOrchestrator orchestrator(SagaDefinition<?> definition, SagaInterceptor interceptor) {
        return SagaOrchestrator.builder().store(store).scheduler(new VirtualScheduler()).interceptor(interceptor)
                .register(definition).build();
    }

    /** Throws {@code error} from the after() of step {@code step}'s action (once when {@code once}). */
    private static SagaInterceptor throwingAfter(String step, Error error, boolean once) {
        return throwingAfter(null, step, error, once);
    }

    /** Throws {@code error} from the after() of step {@code step}'s invocations of {@code kind} (any when null). */
    private static SagaInterceptor throwingAfter(SagaInterceptor.Kind kind, String step, Error error, boolean once) {
        AtomicBoolean thrown = new AtomicBoolean();
        return new SagaInterceptor() {
            @Override
            public void after(Invocation invocation, Throwable failure) {
                if ((kind == null || invocation.kind() == kind) && invocation.context().step().equals(step)
                        && (!once || thrown.compareAndSet(false, true))) {
                    throw error;
                }
            }
        };
    }

    @Test
    void anAssertionErrorInAnInterceptorsAfterIsLoggedAndTheSagaGoesOn() {
        SagaDefinition<Data> definition = definition();
        try (SagaOrchestrator orchestrator = orchestrator(definition,
                throwingAfter("reserve", new AssertionError("bug in a tracing interceptor"), false))) {
            SagaResult<Data> result = orchestrator.start(definition, "saga-1", null, new Data("a")).toCompletableFuture().join();

            assertEquals(SagaOutcome.COMPLETED, result.outcome());
            assertEquals(List.of("reserve", "book"), ran, "each action ran once: the outcome of reserve was kept");
        }
    }

    @Test
    void anAssertionErrorInTheAfterOfAnAsynchronousActionDoesNotLoseItsOutcome() {
        CompletableFuture<Data> reserved = new CompletableFuture<>();
        SagaDefinition<Data> definition = SagaDefinition.builder("intercepted-saga", Data.class)
                .step("reserve").asyncAction((d, ctx) -> {
                    ran.add("reserve");
                    return reserved;
                })
                .step("book").action((d, ctx) -> {
                    ran.add("book");
                    return d;
                })
                .build();
        try (SagaOrchestrator orchestrator = orchestrator(definition,
                throwingAfter("reserve", new AssertionError("bug in a tracing interceptor"), false))) {
            CompletionStage<SagaResult<Data>> result = orchestrator.start(definition, "saga-1", null, new Data("a"));

            reserved.complete(new Data("a")); // after() runs on this thread, in the stage's dependent

            assertEquals(SagaStatus.COMPLETED, store.find("saga-1").orElseThrow().status());
            assertEquals(SagaOutcome.COMPLETED, result.toCompletableFuture().join().outcome());
            assertEquals(List.of("reserve", "book"), ran);
        }
    }

    @Test
    void aSimulatedCrashInAnInterceptorsAfterStopsTheRunAndRecoverResumesIt() {
        SagaDefinition<Data> definition = definition();
        try (SagaOrchestrator orchestrator = orchestrator(definition,
                throwingAfter("reserve", new SimulatedCrash("the process died in an interceptor"), true))) {
            assertThrows(SimulatedCrash.class, () -> orchestrator.start(definition, "saga-1", null, new Data("a")));
            assertEquals(List.of("reserve"), ran);
            assertTrue(orchestrator.result("saga-1").toCompletableFuture().isCompletedExceptionally());

            assertEquals(List.of("saga-1"), orchestrator.recover().resumed());
            assertEquals(SagaStatus.COMPLETED, store.find("saga-1").orElseThrow().status());
            assertEquals(List.of("reserve", "reserve", "book"), ran, "its outcome was never stored: it runs again");
        }
    }

    @Test
    @SuppressWarnings("removal") // ThreadDeath: what Thread.stop throws in the stopped thread, on the JDKs that have it
    void aThreadDeathInAnInterceptorsAfterStopsTheRunAndRecoverResumesIt() {
        // ThreadDeath asks the thread to die; whoever catches it must rethrow it (its Javadoc). Logged as an
        // interceptor's bug and ignored, the stopped thread drove the saga on to its end.
        SagaDefinition<Data> definition = definition();
        try (SagaOrchestrator orchestrator = orchestrator(definition, throwingAfter("reserve", new ThreadDeath(), true))) {
            assertThrows(ThreadDeath.class, () -> orchestrator.start(definition, "saga-1", null, new Data("a")));
            assertEquals(List.of("reserve"), ran);
            assertTrue(orchestrator.result("saga-1").toCompletableFuture().isCompletedExceptionally());

            assertEquals(List.of("saga-1"), orchestrator.recover().resumed());
            assertEquals(SagaStatus.COMPLETED, store.find("saga-1").orElseThrow().status());
            assertEquals(List.of("reserve", "reserve", "book"), ran, "its outcome was never stored: it runs again");
        }
    }

    /** A remote step whose participant reserves and releases at once, then a payment that is declined when asked. */
    private SagaDefinition<Data> remoteReservation(boolean declined) {
        bus.subscribe("participant", "reserve-commands", Reserve.class,
                (command, ctx) -> SagaMessages.reply(bus, ctx.message(), new Reserved(command.id())));
        bus.subscribe("participant", "release-commands", Release.class,
                (command, ctx) -> SagaMessages.reply(bus, ctx.message(), new Released(command.id())));
        return SagaDefinition.builder("intercepted-saga", Data.class)
                .step("reserve").command("reserve-commands", (d, ctx) -> new Reserve(d.id()))
                .onReply(Reserved.class, (d, reply) -> d)
                .compensationCommand("release-commands", (d, ctx) -> new Release(d.id()))
                .onCompensationReply(Released.class, (d, reply) -> { })
                .step("pay").action((d, ctx) -> {
                    if (declined) {
                        throw new IllegalStateException("card declined");
                    }
                    return d;
                }).retry(RetryPolicy.NONE)
                .build();
    }

    private SagaOrchestrator orchestratorOnTheBus(SagaDefinition<?> definition, SagaInterceptor interceptor) {
        return SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler).interceptor(interceptor)
                .register(definition).build();
    }

    /*
     * The handling of a reply is an invocation too: a simulated crash in its after() stops the run as one in an
     * action's does (its result fails, recover() resumes the saga); it used to escape the reply's handling with the
     * run still registered and going on, so recover() resumed nothing.
     */

    @Test
    void aSimulatedCrashInTheAfterOfAReplysHandlingStopsTheRunAndRecoverResumesIt() {
        SagaDefinition<Data> definition = remoteReservation(false);
        try (SagaOrchestrator orchestrator = orchestratorOnTheBus(definition, throwingAfter(SagaInterceptor.Kind.REPLY,
                "reserve", new SimulatedCrash("the process died in an interceptor"), true))) {
            orchestrator.start(definition, "saga-1", null, new Data("a"));
            transport.drainAll();

            assertTrue(orchestrator.result("saga-1").toCompletableFuture().isCompletedExceptionally(),
                    "the run stopped where the process died");
            assertEquals(SagaStatus.RUNNING, store.find("saga-1").orElseThrow().status());
            assertEquals(List.of("saga-1"), orchestrator.recover().resumed());
            transport.drainAll();
            assertEquals(SagaStatus.COMPLETED, store.find("saga-1").orElseThrow().status());
        }
    }

    @Test
    void aSimulatedCrashInTheAfterOfARemoteCompensationsReplyHandlingStopsTheRunAndRecoverResumesIt() {
        SagaDefinition<Data> definition = remoteReservation(true);
        try (SagaOrchestrator orchestrator = orchestratorOnTheBus(definition, throwingAfter(SagaInterceptor.Kind.COMPENSATION,
                "reserve", new SimulatedCrash("the process died in an interceptor"), true))) {
            orchestrator.start(definition, "saga-1", null, new Data("a"));
            transport.drainAll();

            assertTrue(orchestrator.result("saga-1").toCompletableFuture().isCompletedExceptionally(),
                    "the run stopped where the process died");
            assertEquals(SagaStatus.COMPENSATING, store.find("saga-1").orElseThrow().status());
            assertEquals(List.of("saga-1"), orchestrator.recover().resumed());
            transport.drainAll();
            assertEquals(SagaStatus.COMPENSATED, store.find("saga-1").orElseThrow().status());
            assertFalse(orchestrator.result("saga-1").toCompletableFuture().isCompletedExceptionally());
        }
    }
}
