package io.streamsaga.inmemory.saga;

import io.streamsaga.CapturedLog;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.ConcurrentSagaUpdateException;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.TransitionType;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicReference;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * docs/sagas.md, "Recovery with several nodes": a run that learns at a timeout that another node moved its saga on
 * (the reply went there) logs that, once, at INFO, with the saga's stored status and owner, not the timed-out attempt
 * as a failure: the saga did not fail. A timeout with no other node involved still logs its failure for good at ERROR,
 * and so does a compensation that fails for good on a run stopped meanwhile (closed by the compensation's own code).
 */
class SagaMovedOnByAnotherNodeLoggingTest {
    record Order(String id) {
    }

    record Release(String id) {
    }

    record Released(boolean released) {
    }

    record Charge(String id) {
    }

    record Charged(String chargeId) {
    }

    private static final Pattern ENTRY = Pattern.compile("(?m)^\\[[^]]*] (INFO|WARN|ERROR) \\S+ - (.*)$");

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemorySagaStore store = new InMemorySagaStore();
    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final EventBus bus = EventBus.builder(transport).scheduler(scheduler).retryPolicy(RetryPolicy.NONE)
            .types(TypeRegistry.builder().register("release", 1, Release.class).register("released", 1, Released.class)
                    .register("charge", 1, Charge.class).register("charged", 1, Charged.class).build())
            .build();
    /** The commands the participants received; the test answers them, to the node it chooses. */
    private final List<Message> commands = new CopyOnWriteArrayList<>();
    private final List<SagaOrchestrator> nodes = new ArrayList<>();

    @AfterEach
    void tearDown() {
        nodes.forEach(SagaOrchestrator::close);
        bus.close();
        transport.close();
    }

    /** reserve (local, its compensation remote: one attempt, a minute's timeout), then charge, which fails. */
    private SagaDefinition<Order> releaseSaga() {
        return SagaDefinition.builder("release-saga", Order.class)
                .step("reserve").action((order, ctx) -> order)
                .compensationCommand("stock-commands", (order, ctx) -> new Release(order.id()))
                .onCompensationReply(Released.class, (order, reply) -> {
                    if (!reply.released()) {
                        throw new IllegalStateException("stock refused the release");
                    }
                })
                .compensationRetry(RetryPolicy.NONE).compensationTimeout(Duration.ofMinutes(1))
                .step("charge").action((order, ctx) -> {
                    throw new IllegalStateException("card declined");
                }).retry(RetryPolicy.NONE)
                .build();
    }

    /** charge (remote, a minute's timeout), then ship (local). */
    private SagaDefinition<Order> paySaga() {
        return SagaDefinition.builder("pay-saga", Order.class)
                .step("charge").command("charge-commands", (order, ctx) -> new Charge(order.id()))
                .onReply(Charged.class, (order, reply) -> order)
                .timeout(Duration.ofMinutes(1))
                .step("ship").action((order, ctx) -> order)
                .build();
    }

    /** charge (remote, no timeout: nothing but a reply wakes the run), then ship (local). */
    private SagaDefinition<Order> patientPaySaga() {
        return SagaDefinition.builder("patient-pay-saga", Order.class)
                .step("charge").command("charge-commands", (order, ctx) -> new Charge(order.id()))
                .onReply(Charged.class, (order, reply) -> order)
                .step("ship").action((order, ctx) -> order)
                .build();
    }

    /** A node named {@code nodeId}, with a reply topic of its own, so that the test decides which node a reply reaches. */
    private SagaOrchestrator node(String nodeId) {
        SagaOrchestrator node = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .register(releaseSaga()).register(paySaga()).register(patientPaySaga()).replyTopic("replies-" + nodeId)
                .ownership(nodeId, Duration.ofSeconds(10), Duration.ofSeconds(60)).build();
        nodes.add(node);
        return node;
    }

    private <C> void participant(String topic, Class<C> type) {
        bus.subscribe(topic + "-service", topic, type,
                SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST), (command, ctx) -> commands.add(ctx.message()));
    }

    /** Answers {@code command} on the reply topic of node {@code nodeId}, whichever node sent it. */
    private void replyTo(String nodeId, Message command, Object reply) {
        SagaMessages.reply(bus, command.withHeader(SagaMessages.REPLY_TOPIC, "replies-" + nodeId), reply);
        transport.drainAll();
    }

    /** The INFO, WARN and ERROR entries of {@code log}, each as "LEVEL message". */
    private static List<String> entries(String log) {
        List<String> entries = new ArrayList<>();
        Matcher entry = ENTRY.matcher(log);
        while (entry.find()) {
            entries.add(entry.group(1) + " " + entry.group(2));
        }
        return entries;
    }

    @Test
    void aRetriedRemoteCompensationFinishedOnAnotherNodeIsLoggedAtItsTimeoutAsMovedOnThereNotAsAFailureForGood() throws Throwable {
        participant("stock-commands", Release.class);
        SagaOrchestrator nodeA = node("node-a");
        SagaOrchestrator nodeB = node("node-b");
        nodeA.start(releaseSaga(), "s-1", null, new Order("s-1"));
        transport.drainAll();
        replyTo("node-a", commands.get(0), new Released(false)); // the compensation fails for good on node A
        assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, store.find("s-1").orElseThrow().status());

        CompletableFuture<SagaResult<Object>> retried = nodeB.retryCompensation("s-1").toCompletableFuture();
        transport.drainAll();
        replyTo("node-a", commands.get(1), new Released(true)); // node B's retry, answered to node A
        assertEquals(SagaStatus.COMPENSATED, store.find("s-1").orElseThrow().status());
        assertFalse(retried.isDone(), "node B waits for the reply until the compensation's timeout");

        List<String> log = entries(CapturedLog.ofThisThread(() -> scheduler.advance(Duration.ofMinutes(1))));

        CompletionException e = assertThrows(CompletionException.class, retried::join);
        assertInstanceOf(ConcurrentSagaUpdateException.class, e.getCause());
        assertEquals(SagaStatus.COMPENSATED, store.find("s-1").orElseThrow().status());
        assertEquals(1, log.size(), log.toString());
        String entry = log.get(0);
        assertTrue(entry.startsWith("INFO saga s-1: moved on by another node"), entry);
        assertTrue(entry.contains("COMPENSATED") && entry.contains("node-a"), entry);
        assertTrue(entry.contains("not written: compensation of reserve failed for good after 2 attempts"), entry);
    }

    @Test
    void aRemoteStepCompletedOnAnotherNodeIsLoggedAtItsDeadlineAsMovedOnThere() throws Throwable {
        participant("charge-commands", Charge.class);
        SagaOrchestrator nodeA = node("node-a");
        SagaOrchestrator nodeB = node("node-b");
        CompletableFuture<SagaResult<Order>> started =
                nodeB.start(paySaga(), "p-1", null, new Order("p-1")).toCompletableFuture();
        transport.drainAll();
        replyTo("node-a", commands.get(0), new Charged("ch-1")); // node B's command, answered to node A
        assertEquals(SagaStatus.COMPLETED, store.find("p-1").orElseThrow().status());
        assertFalse(started.isDone(), "node B waits for the reply until the step's deadline");

        List<String> log = entries(CapturedLog.ofThisThread(() -> scheduler.advance(Duration.ofMinutes(1))));

        CompletionException e = assertThrows(CompletionException.class, started::join);
        assertInstanceOf(ConcurrentSagaUpdateException.class, e.getCause());
        assertEquals(1, log.size(), log.toString());
        String entry = log.get(0);
        assertTrue(entry.startsWith("INFO saga p-1: moved on by another node"), entry);
        assertTrue(entry.contains("COMPLETED") && entry.contains("node-a"), entry);
        assertTrue(nodeA.result("p-1").toCompletableFuture().isDone());
    }

    @Test
    void aRemoteCompensationTimingOutWithNoOtherNodeInvolvedStillLogsItsFailureForGoodAtError() throws Throwable {
        participant("stock-commands", Release.class);
        SagaOrchestrator nodeA = node("node-a");
        node("node-b");
        CompletableFuture<SagaResult<Order>> started =
                nodeA.start(releaseSaga(), "s-2", null, new Order("s-2")).toCompletableFuture();
        transport.drainAll(); // nobody answers the release

        List<String> log = entries(CapturedLog.ofThisThread(() -> scheduler.advance(Duration.ofMinutes(1))));

        assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, store.find("s-2").orElseThrow().status());
        assertTrue(started.isDone());
        List<String> errors = log.stream().filter(entry -> entry.startsWith("ERROR")).toList();
        assertEquals(1, errors.size(), log.toString());
        assertTrue(errors.get(0).startsWith("ERROR saga s-2: compensation of reserve failed for good after 1 attempts")
                && errors.get(0).contains("SagaTimeoutException"), errors.get(0));
        assertFalse(log.stream().anyMatch(entry -> entry.contains("moved on")), log.toString());
    }

    @Test
    void aRunWhoseSagaAnotherNodeFinishedIsLoggedByItsRecoveryAsMovedOnThere() throws Throwable {
        participant("charge-commands", Charge.class);
        SagaOrchestrator nodeB = node("node-b");
        CompletableFuture<SagaResult<Order>> started =
                nodeB.start(patientPaySaga(), "p-3", null, new Order("p-3")).toCompletableFuture();
        transport.drainAll();
        scheduler.advance(Duration.ofMinutes(2));
        // Node A (its reply reached it) finished the saga; node B's run, with no timeout, would wait for ever.
        SagaInstance s = store.find("p-3").orElseThrow();
        SagaInstance finished = new SagaInstance(s.sagaId(), s.sagaName(), s.definitionVersion(), s.businessKey(),
                s.dataType(), s.data(), SagaStatus.COMPLETED, s.steps(), null, null, s.createdAt(), scheduler.now(),
                s.version() + 1, "node-a");
        store.update(finished, new SagaTransition("p-3", finished.version(), scheduler.now(),
                TransitionType.SAGA_COMPLETED, null, 0, "on node A"));

        List<String> log = entries(CapturedLog.ofThisThread(() -> nodeB.recover(Duration.ofMinutes(1)))).stream()
                .filter(entry -> entry.contains("p-3")).toList();

        CompletionException e = assertThrows(CompletionException.class, started::join);
        assertInstanceOf(ConcurrentSagaUpdateException.class, e.getCause());
        assertEquals(1, log.size(), log.toString());
        assertTrue(log.get(0).startsWith("INFO saga p-3: moved on by another node (owner node-a): stored COMPLETED at"
                + " version " + finished.version() + "; this one stops"), log.get(0));
    }

    @Test
    void aCompensationFailingForGoodAfterItsOwnCodeClosedTheOrchestratorStillLogsItsFailureForGoodAtError()
            throws Throwable {
        AtomicReference<SagaOrchestrator> self = new AtomicReference<>();
        SagaDefinition<Order> closing = SagaDefinition.builder("closing-saga", Order.class)
                .step("reserve").action((order, ctx) -> order)
                .compensation((order, ctx) -> {
                    self.get().close(); // on the driving thread: the run stops before this failure is recorded
                    throw new IllegalStateException("stock down");
                })
                .compensationRetry(RetryPolicy.NONE)
                .step("charge").action((order, ctx) -> {
                    throw new IllegalStateException("card declined");
                }).retry(RetryPolicy.NONE)
                .build();
        SagaOrchestrator node = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(closing).build();
        nodes.add(node);
        self.set(node);

        List<String> log = entries(CapturedLog.ofThisThread(() -> node.start(closing, "c-1", null, new Order("c-1"))));

        assertEquals(SagaStatus.COMPENSATING, store.find("c-1").orElseThrow().status(), "resumes on recover()");
        List<String> errors = log.stream().filter(entry -> entry.startsWith("ERROR")).toList();
        assertEquals(List.of("ERROR saga c-1: compensation of reserve failed for good after 1 attempts:"
                + " IllegalStateException: stock down"), errors, log.toString());
    }
}
