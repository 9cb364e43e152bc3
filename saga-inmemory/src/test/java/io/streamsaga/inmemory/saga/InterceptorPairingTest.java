package io.streamsaga.inmemory.saga;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInterceptor;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.StepStatus;
import io.streamsaga.bus.SubscriptionOptions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Every {@code before()} of a {@link SagaInterceptor} is matched by exactly one {@code after()}, and no
 * {@code after()} comes without its {@code before()}: also when the invocation ends without its stage
 * completing (a timeout, the orchestrator closing) and when the stage completes late.
 */
class InterceptorPairingTest {
    record Order(String id) {
    }

    record Reserve(String id) {
    }

    record Reserved(String id) {
    }

    record Unexpected(String id) {
    }

    record Release(String id) {
    }

    record Released(String id) {
    }

    private static final Duration TIMEOUT = Duration.ofSeconds(30);

    private final VirtualScheduler scheduler = new VirtualScheduler(Instant.EPOCH);
    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final EventBus bus = EventBus.builder(transport).scheduler(scheduler).retryPolicy(RetryPolicy.NONE)
            .types(TypeRegistry.builder().register("reserve", 1, Reserve.class).register("reserved", 1, Reserved.class)
                    .register("unexpected", 1, Unexpected.class).register("release", 1, Release.class)
                    .register("released", 1, Released.class).build())
            .build();
    private final Recorder tracer = new Recorder("tracer");

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    /** Records what it is called for, as "name before|after KIND step#attempt [outcome]". */
    static final class Recorder implements SagaInterceptor {
        private final String name;
        private final List<String> events = new ArrayList<>();
        private boolean rejects;

        Recorder(String name) {
            this.name = name;
        }

        @Override
        public synchronized void before(Invocation invocation) {
            events.add(name + " before " + describe(invocation));
            if (rejects) {
                throw new IllegalStateException("rejected by " + name);
            }
        }

        @Override
        public synchronized void after(Invocation invocation, Throwable error) {
            events.add(name + " after " + describe(invocation) + " " + (error == null ? "ok" : error.getClass().getSimpleName()));
        }

        private static String describe(Invocation invocation) {
            return invocation.kind() + " " + invocation.context().step() + "#" + invocation.context().attempt();
        }

        synchronized List<String> events() {
            return List.copyOf(events);
        }
    }

    private SagaOrchestrator.Builder orchestrator(SagaInterceptor... interceptors) {
        SagaOrchestrator.Builder builder = SagaOrchestrator.builder().store(new InMemorySagaStore()).bus(bus).scheduler(scheduler);
        for (SagaInterceptor interceptor : interceptors) {
            builder.interceptor(interceptor);
        }
        return builder;
    }

    @Test
    void anAsynchronousActionThatTimesOutEndsItsInvocationWithTheTimeoutOnce() {
        CompletableFuture<Order> stage = new CompletableFuture<>();
        SagaDefinition<Order> definition = SagaDefinition.builder("order", Order.class)
                .step("ship").asyncAction((order, ctx) -> stage).retry(RetryPolicy.NONE).timeout(TIMEOUT)
                .build();
        try (SagaOrchestrator orchestrator = orchestrator(tracer).build()) {
            orchestrator.start(definition, "order-1", null, new Order("o-1"));
            scheduler.advance(TIMEOUT);
            assertEquals(SagaStatus.COMPENSATED, orchestrator.find("order-1").orElseThrow().status());

            stage.complete(new Order("late")); // the late completion is ignored, its invocation already ended

            assertEquals(List.of("tracer before ACTION ship#1", "tracer after ACTION ship#1 SagaTimeoutException"),
                    tracer.events());
        }
    }

    @Test
    void aRetryAfterATimeoutIsANewInvocationAndTheTimedOutAttemptsLateCompletionEndsNeither() {
        List<CompletableFuture<Order>> actions = new ArrayList<>();
        List<CompletableFuture<Void>> undos = new ArrayList<>();
        SagaDefinition<Order> definition = SagaDefinition.builder("order", Order.class)
                .step("ship").asyncAction((order, ctx) -> {
                    CompletableFuture<Order> stage = new CompletableFuture<>();
                    actions.add(stage);
                    return stage;
                }).retry(RetryPolicy.builder().maxAttempts(2).noBackoff().build()).timeout(TIMEOUT)
                .asyncCompensation((order, ctx) -> {
                    CompletableFuture<Void> stage = new CompletableFuture<>();
                    undos.add(stage);
                    return stage;
                }).compensationRetry(RetryPolicy.builder().maxAttempts(2).noBackoff().build())
                .step("bill").action((order, ctx) -> {
                    throw new IllegalStateException("declined");
                })
                .build();
        try (SagaOrchestrator orchestrator = orchestrator(tracer).build()) {
            orchestrator.start(definition, "order-1", null, new Order("o-1"));
            scheduler.advance(TIMEOUT); // attempt 1 times out, attempt 2 starts at once
            actions.get(0).complete(new Order("late 1")); // ignored: attempt 2's invocation stays open
            actions.get(1).complete(new Order("o-1"));
            scheduler.advance(TIMEOUT); // compensation attempt 1 times out, attempt 2 starts
            undos.get(0).complete(null); // ignored
            undos.get(1).complete(null);

            assertEquals(SagaStatus.COMPENSATED, orchestrator.find("order-1").orElseThrow().status());
            assertEquals(List.of("tracer before ACTION ship#1", "tracer after ACTION ship#1 SagaTimeoutException",
                    "tracer before ACTION ship#2", "tracer after ACTION ship#2 ok",
                    "tracer before ACTION bill#1", "tracer after ACTION bill#1 IllegalStateException",
                    "tracer before COMPENSATION ship#1", "tracer after COMPENSATION ship#1 SagaTimeoutException",
                    "tracer before COMPENSATION ship#2", "tracer after COMPENSATION ship#2 ok"), tracer.events());
        }
    }

    @Test
    void aParallelMembersActionThatTimesOutEndsItsInvocationWithTheTimeout() {
        SagaDefinition<Order> definition = SagaDefinition.builder("order", Order.class)
                .parallel(group -> {
                    group.step("ship").action((order, ctx) -> order).retry(RetryPolicy.NONE).timeout(TIMEOUT);
                    group.step("invoice").asyncAction((order, ctx) -> CompletableFuture.completedFuture(null));
                })
                .build();
        try (SagaOrchestrator orchestrator = orchestrator(tracer).parallelExecutor(task -> { }).build()) { // never runs
            orchestrator.start(definition, "order-1", null, new Order("o-1"));
            scheduler.advance(TIMEOUT);

            assertEquals(List.of("tracer before ACTION ship#1", "tracer before ACTION invoice#1",
                    "tracer after ACTION invoice#1 ok", "tracer after ACTION ship#1 SagaTimeoutException"), tracer.events());
        }
    }

    @Test
    void closingTheOrchestratorEndsARunningAsynchronousActionOnce() {
        CompletableFuture<Order> stage = new CompletableFuture<>();
        SagaDefinition<Order> definition = SagaDefinition.builder("order", Order.class)
                .step("ship").asyncAction((order, ctx) -> stage)
                .build();
        SagaOrchestrator orchestrator = orchestrator(tracer).build();
        orchestrator.start(definition, "order-1", null, new Order("o-1"));

        orchestrator.close();
        stage.complete(new Order("late"));

        assertEquals(List.of("tracer before ACTION ship#1", "tracer after ACTION ship#1 SagaException"), tracer.events());
    }

    @Test
    void closingTheOrchestratorEndsARunningAsynchronousCompensationOnce() {
        CompletableFuture<Void> undo = new CompletableFuture<>();
        SagaDefinition<Order> definition = SagaDefinition.builder("order", Order.class)
                .step("ship").action((order, ctx) -> order).asyncCompensation((order, ctx) -> undo)
                .step("pay").action((order, ctx) -> {
                    throw new IllegalStateException("card declined");
                }).retry(RetryPolicy.NONE)
                .build();
        SagaOrchestrator orchestrator = orchestrator(tracer).build();
        orchestrator.start(definition, "order-1", null, new Order("o-1"));

        orchestrator.close();
        undo.complete(null);

        assertEquals(List.of("tracer before ACTION ship#1", "tracer after ACTION ship#1 ok",
                "tracer before ACTION pay#1", "tracer after ACTION pay#1 IllegalStateException",
                "tracer before COMPENSATION ship#1", "tracer after COMPENSATION ship#1 SagaException"), tracer.events());
    }

    @Test
    void aCancelWhileAnAsynchronousActionRunsEndsItsInvocationWhenItsStageCompletes() {
        CompletableFuture<Order> stage = new CompletableFuture<>();
        SagaDefinition<Order> definition = SagaDefinition.builder("order", Order.class)
                .step("ship").asyncAction((order, ctx) -> stage).compensation((order, ctx) -> { })
                .build();
        try (SagaOrchestrator orchestrator = orchestrator(tracer).build()) {
            orchestrator.start(definition, "order-1", null, new Order("o-1"));
            orchestrator.cancel("order-1");

            stage.complete(new Order("o-1"));

            assertEquals(SagaStatus.COMPENSATED, orchestrator.find("order-1").orElseThrow().status());
            assertEquals(List.of("tracer before ACTION ship#1", "tracer after ACTION ship#1 ok",
                    "tracer before COMPENSATION ship#1", "tracer after COMPENSATION ship#1 ok"), tracer.events());
        }
    }

    @Test
    void aRemoteStepWhoseReplyNeverComesLeavesNoInvocationOpen() {
        SagaDefinition<Order> definition = SagaDefinition.builder("order", Order.class)
                .step("reserve").command("reserve-commands", (order, ctx) -> new Reserve(order.id()))
                .onReply(Reserved.class, (order, reply) -> order).retry(RetryPolicy.NONE).timeout(TIMEOUT)
                .build();
        try (SagaOrchestrator orchestrator = orchestrator(tracer).register(definition).build()) {
            orchestrator.start(definition, "order-1", null, new Order("o-1"));
            transport.drainAll();
            scheduler.advance(TIMEOUT);

            assertEquals(SagaStatus.COMPENSATED, orchestrator.find("order-1").orElseThrow().status());
            assertEquals(List.of(), tracer.events(), "sending the command is no invocation; handling a reply is one");
        }
    }

    @Test
    void aReplyThatCannotBeDecodedIsNoInvocationButADeadLetterAndTheStepWaitsOn() {
        bus.subscribe("participant", "reserve-commands", Reserve.class,
                (command, ctx) -> SagaMessages.reply(bus, ctx.message(), new Unexpected(command.id())));
        SagaDefinition<Order> definition = SagaDefinition.builder("order", Order.class)
                .step("reserve").command("reserve-commands", (order, ctx) -> new Reserve(order.id()))
                .onReply(Reserved.class, (order, reply) -> order).retry(RetryPolicy.NONE)
                .build();
        try (SagaOrchestrator orchestrator = orchestrator(tracer).register(definition).build()) {
            orchestrator.start(definition, "order-1", null, new Order("o-1"));
            transport.drainAll();

            assertEquals(StepStatus.WAITING,
                    orchestrator.find("order-1").orElseThrow().step("reserve").orElseThrow().status());
            assertEquals(List.of(), tracer.events(), "a reply not taken is handled by no invocation");
            assertEquals(1, transport.messages("saga-replies.DLT").size());
        }
    }

    @Test
    void whenAnInterceptorRejectsTheInterceptorsAfterItAreNotCalledAtAll() {
        Recorder injector = new Recorder("injector");
        injector.rejects = true;
        SagaDefinition<Order> definition = SagaDefinition.builder("order", Order.class)
                .step("ship").action((order, ctx) -> order).retry(RetryPolicy.NONE)
                .build();
        try (SagaOrchestrator orchestrator = orchestrator(injector, tracer).build()) {
            orchestrator.start(definition, "order-1", null, new Order("o-1"));

            assertEquals(List.of(), tracer.events(), "the tracer's before() never ran: no after() either");
            assertEquals(List.of("injector before ACTION ship#1", "injector after ACTION ship#1 IllegalStateException"),
                    injector.events());
        }
    }

    private SagaDefinition<Order> reserveThenDeclinedPayment() {
        bus.subscribe("participant", "reserve-commands", Reserve.class,
                (command, ctx) -> SagaMessages.reply(bus, ctx.message(), new Reserved(command.id())));
        return SagaDefinition.builder("order", Order.class)
                .step("reserve").command("reserve-commands", (order, ctx) -> new Reserve(order.id()))
                .onReply(Reserved.class, (order, reply) -> order)
                .compensationCommand("release-commands", (order, ctx) -> new Release(order.id()))
                .onCompensationReply(Released.class, (order, reply) -> { })
                .compensationRetry(RetryPolicy.NONE).compensationTimeout(TIMEOUT)
                .step("pay").action((order, ctx) -> {
                    throw new IllegalStateException("card declined");
                }).retry(RetryPolicy.NONE)
                .build();
    }

    private void openReleaseDesk() {
        bus.subscribe("participant", "release-commands", Release.class, SubscriptionOptions.fromEarliest(),
                (command, ctx) -> SagaMessages.reply(bus, ctx.message(), new Released(command.id())));
    }

    @Test
    void aRemoteCompensationIsInvokedAroundTheHandlingOfItsReplyAsARemoteStepIs() {
        SagaDefinition<Order> definition = reserveThenDeclinedPayment();
        try (SagaOrchestrator orchestrator = orchestrator(tracer).register(definition).build()) {
            orchestrator.start(definition, "order-1", null, new Order("o-1"));
            transport.drainAll(); // the seat is reserved, the payment declined, the release command sent

            assertEquals(List.of("tracer before REPLY reserve#1", "tracer after REPLY reserve#1 ok",
                    "tracer before ACTION pay#1", "tracer after ACTION pay#1 IllegalStateException"), tracer.events(),
                    "sending the release command is no invocation, as sending the reserve command is none");

            openReleaseDesk();
            transport.drainAll();

            assertEquals(SagaStatus.COMPENSATED, orchestrator.find("order-1").orElseThrow().status());
            assertEquals(List.of("tracer before REPLY reserve#1", "tracer after REPLY reserve#1 ok",
                    "tracer before ACTION pay#1", "tracer after ACTION pay#1 IllegalStateException",
                    "tracer before COMPENSATION reserve#1", "tracer after COMPENSATION reserve#1 ok"), tracer.events());
        }
    }

    @Test
    void aRemoteCompensationWhoseReplyNeverComesLeavesNoInvocationOpen() {
        SagaDefinition<Order> definition = reserveThenDeclinedPayment();
        try (SagaOrchestrator orchestrator = orchestrator(tracer).register(definition).build()) {
            orchestrator.start(definition, "order-1", null, new Order("o-1"));
            transport.drainAll();
            scheduler.advance(TIMEOUT);

            assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, orchestrator.find("order-1").orElseThrow().status());
            assertEquals(List.of("tracer before REPLY reserve#1", "tracer after REPLY reserve#1 ok",
                    "tracer before ACTION pay#1", "tracer after ACTION pay#1 IllegalStateException"), tracer.events());
        }
    }

    @Test
    void aCompensationReplyToACompensationAnotherOrchestratorStartedIsHandledInsideAnInvocationThere() {
        InMemorySagaStore store = new InMemorySagaStore();
        SagaDefinition<Order> definition = reserveThenDeclinedPayment();
        SagaOrchestrator first = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler).interceptor(tracer)
                .register(definition).build();
        first.start(definition, "order-1", null, new Order("o-1"));
        transport.drainAll(); // the release command waits: nobody handles it yet
        first.close();
        Recorder successor = new Recorder("successor");
        try (SagaOrchestrator second = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .interceptor(successor).register(definition).build()) {
            openReleaseDesk();

            transport.drainAll(); // the second orchestrator adopts the saga for the reply

            assertEquals(SagaStatus.COMPENSATED, second.find("order-1").orElseThrow().status());
            assertEquals(List.of("successor before COMPENSATION reserve#1", "successor after COMPENSATION reserve#1 ok"),
                    successor.events(), "its reply handler ran here");
        }
        assertEquals(List.of("tracer before REPLY reserve#1", "tracer after REPLY reserve#1 ok",
                "tracer before ACTION pay#1", "tracer after ACTION pay#1 IllegalStateException"), tracer.events());
    }

    @Test
    void anErrorFromASynchronousActionEndsItsInvocationBeforeItStopsTheRun() {
        SagaDefinition<Order> definition = SagaDefinition.builder("order", Order.class)
                .step("ship").action((order, ctx) -> {
                    throw new AssertionError("broken");
                })
                .build();
        try (SagaOrchestrator orchestrator = orchestrator(tracer).build()) {
            assertThrows(AssertionError.class, () -> orchestrator.start(definition, "order-1", null, new Order("o-1")));

            assertEquals(List.of("tracer before ACTION ship#1", "tracer after ACTION ship#1 AssertionError"), tracer.events());
        }
    }
}
