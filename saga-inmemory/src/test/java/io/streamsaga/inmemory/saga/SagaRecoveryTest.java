package io.streamsaga.inmemory.saga;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import io.streamsaga.metrics.MetricsRecorder;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.ConcurrentSagaUpdateException;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaLifecycleEvent;
import io.streamsaga.saga.SagaListener;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.StepStatus;
import io.streamsaga.saga.TransitionType;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Restarts, concurrent orchestrators, version migration, queries, retention and lifecycle reporting. */
class SagaRecoveryTest {
    record PaymentData(String orderId, long amount, String chargeId) {
        PaymentData withCharge(String id) {
            return new PaymentData(orderId, amount, id);
        }
    }

    record PaymentDataV2(String orderId, long amount, String currency, String chargeId) {
        PaymentDataV2 withCharge(String id) {
            return new PaymentDataV2(orderId, amount, currency, id);
        }
    }

    record ChargeCard(String orderId, long amount) {
    }

    record CardCharged(String chargeId) {
    }

    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final EventBus bus = EventBus.builder(transport).scheduler(scheduler).retryPolicy(RetryPolicy.NONE)
            .types(TypeRegistry.builder().register("charge-card", 1, ChargeCard.class)
                    .register("card-charged", 1, CardCharged.class).build())
            .build();
    private final InMemorySagaStore store = new InMemorySagaStore();
    private final List<String> reserved = new CopyOnWriteArrayList<>();
    private final List<String> released = new CopyOnWriteArrayList<>();
    private final Set<String> charged = new HashSet<>();

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    /** reserve (local, compensated) then charge (remote, waits up to a day for the payment service). */
    private SagaDefinition<PaymentData> paymentSaga() {
        return paymentSaga(true);
    }

    /** {@code pivot} false: the charge is a plain remote step, so a cancel while it waits for its reply is accepted. */
    private SagaDefinition<PaymentData> paymentSaga(boolean pivot) {
        SagaDefinition.Builder<PaymentData> builder = SagaDefinition.builder("payment-saga", PaymentData.class)
                .version(1)
                .dataType("payment-saga-data");
        builder.step("reserve").action((d, ctx) -> {
            reserved.add(ctx.idempotencyKey());
            return d;
        }).compensation((d, ctx) -> released.add(ctx.idempotencyKey()));
        return (pivot ? builder.pivot("charge") : builder.step("charge"))
                .command("payment-commands", (d, ctx) -> new ChargeCard(d.orderId(), d.amount()))
                .onReply(CardCharged.class, (d, reply) -> d.withCharge(reply.chargeId()))
                .timeout(Duration.ofDays(1))
                .build();
    }

    private SagaOrchestrator orchestrator(SagaDefinition<?> definition) {
        return SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler).register(definition).build();
    }

    /** The payment service: charges once per idempotency key and replies every time. */
    private void startPaymentService() {
        bus.subscribe("payment-service", "payment-commands", ChargeCard.class,
                SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST), (command, ctx) -> {
            String key = ctx.message().header(SagaMessages.IDEMPOTENCY_KEY).orElseThrow();
            charged.add(key);
            SagaMessages.reply(bus, ctx.message(), new CardCharged("ch-" + command.orderId()));
        });
    }

    @Test
    void aReplyArrivingHoursLaterIsHandledByTheOrchestratorThatRecoveredTheSaga() {
        SagaOrchestrator first = orchestrator(paymentSaga());
        CompletableFuture<SagaResult<PaymentData>> started =
                first.start(paymentSaga(), "saga-1", "order-1", new PaymentData("order-1", 50, null)).toCompletableFuture();
        assertEquals(StepStatus.WAITING, store.find("saga-1").orElseThrow().step("charge").orElseThrow().status());
        first.close(); // the process goes away with the command still unanswered
        assertTrue(started.isCompletedExceptionally());

        scheduler.advance(Duration.ofHours(3));
        SagaOrchestrator second = orchestrator(paymentSaga());
        SagaOrchestrator.RecoveryReport recovery = second.recover();
        startPaymentService();
        transport.drainAll();

        assertEquals(List.of("saga-1"), recovery.resumed());
        SagaResult<Object> result = second.result("saga-1").toCompletableFuture().getNow(null);
        assertNotNull(result, "the saga did not finish");
        assertTrue(result.isCompleted());
        assertEquals("ch-order-1", ((PaymentData) result.data()).chargeId());
        assertEquals(Set.of("saga-1/charge"), charged); // the re-sent command was the same command
        assertEquals(List.of("saga-1/reserve"), reserved);
        assertTrue(released.isEmpty());
    }

    @Test
    void sagaDataStoredAsJsonIsBoundBackToItsRecordOnRecovery() {
        InMemorySagaStore json = InMemorySagaStore.serializingJson(io.streamsaga.codec.JsonEventCodec.defaultMapper());
        SagaOrchestrator first = SagaOrchestrator.builder().store(json).bus(bus).scheduler(scheduler).register(paymentSaga()).build();
        first.start(paymentSaga(), "saga-1", null, new PaymentData("order-1", 50, null));
        first.close();
        assertInstanceOf(com.fasterxml.jackson.databind.JsonNode.class, json.find("saga-1").orElseThrow().data());

        SagaOrchestrator second = SagaOrchestrator.builder().store(json).bus(bus).scheduler(scheduler).register(paymentSaga()).build();
        second.recover();
        startPaymentService();
        transport.drainAll();

        SagaResult<Object> result = second.result("saga-1").toCompletableFuture().getNow(null);
        assertNotNull(result, "the saga did not finish");
        assertEquals(new PaymentData("order-1", 50, "ch-order-1"), result.data());
        assertEquals(SagaStatus.COMPLETED, json.find("saga-1").orElseThrow().status());
    }

    @Test
    void aNewOrchestratorReArmsTheTimeoutFromThePersistedDeadline() {
        SagaOrchestrator first = orchestrator(paymentSaga());
        first.start(paymentSaga(), "saga-1", null, new PaymentData("order-1", 50, null));
        first.close();

        SagaOrchestrator second = orchestrator(paymentSaga());
        second.recover();
        scheduler.advance(Duration.ofHours(23));
        assertEquals(SagaStatus.RUNNING, store.find("saga-1").orElseThrow().status());
        scheduler.advance(Duration.ofHours(1));

        assertEquals(SagaStatus.COMPENSATED, store.find("saga-1").orElseThrow().status());
        assertEquals(List.of("saga-1/reserve"), released);
        assertTrue(store.history("saga-1").stream().anyMatch(t -> t.type() == TransitionType.STEP_TIMED_OUT));
    }

    @Test
    void twoOrchestratorsNeverDriveTheSameSagaAtOnce() {
        SagaOrchestrator first = orchestrator(paymentSaga(false));
        CompletableFuture<SagaResult<PaymentData>> firstResult =
                first.start(paymentSaga(false), "saga-1", null, new PaymentData("order-1", 50, null)).toCompletableFuture();
        SagaOrchestrator second = orchestrator(paymentSaga(false));
        second.recover();

        second.cancel("saga-1");
        SagaInstance afterSecond = store.find("saga-1").orElseThrow();
        assertEquals(SagaStatus.COMPENSATED, afterSecond.status());

        // Its view is stale: the store refuses, it stops driving the saga, and the caller learns nothing was cancelled.
        assertThrows(ConcurrentSagaUpdateException.class, () -> first.cancel("saga-1"));

        assertTrue(firstResult.isDone());
        CompletionException e = assertThrows(CompletionException.class, firstResult::join);
        assertInstanceOf(ConcurrentSagaUpdateException.class, e.getCause());
        assertEquals(afterSecond.version(), store.find("saga-1").orElseThrow().version());
        assertEquals(List.of("saga-1/reserve"), released);
    }

    @Test
    void aSagaStartedUnderVersionOneIsMigratedByARegisteredUpcaster() {
        SagaOrchestrator first = orchestrator(paymentSaga());
        first.start(paymentSaga(), "saga-1", null, new PaymentData("order-1", 50, null));
        first.close();

        SagaDefinition<PaymentDataV2> v2 = SagaDefinition.builder("payment-saga", PaymentDataV2.class)
                .version(2)
                .dataType("payment-saga-data")
                .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> released.add(ctx.idempotencyKey()))
                .pivot("charge").command("payment-commands", (d, ctx) -> new ChargeCard(d.orderId(), d.amount()))
                .onReply(CardCharged.class, (d, reply) -> d.withCharge(reply.chargeId() + "-" + d.currency()))
                .build();
        SagaOrchestrator second = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler).register(v2)
                .dataUpcaster("payment-saga", 1, data -> data.put("currency", "USD"))
                .build();
        SagaOrchestrator.RecoveryReport recovery = second.recover();
        startPaymentService();
        transport.drainAll();

        assertEquals(List.of("saga-1"), recovery.resumed());
        SagaInstance migrated = store.find("saga-1").orElseThrow();
        assertEquals(2, migrated.definitionVersion());
        assertEquals(SagaStatus.COMPLETED, migrated.status());
        assertEquals(new PaymentDataV2("order-1", 50, "USD", "ch-order-1-USD"), migrated.data());
        assertTrue(store.history("saga-1").stream().anyMatch(t -> t.type() == TransitionType.SAGA_MIGRATED));
    }

    @Test
    void aSagaThatNeedsAttentionUnderARetiredVersionIsOperatedAfterTheUpgradeThroughItsUpcaster() {
        // Version 1: releasing the reservation fails for good after the payment was declined.
        SagaDefinition<PaymentData> v1 = SagaDefinition.builder("payment-saga", PaymentData.class).version(1)
                .dataType("payment-saga-data")
                .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> {
                    throw new IllegalStateException("inventory down");
                }).compensationRetry(RetryPolicy.NONE)
                .step("charge").action((d, ctx) -> {
                    throw new IllegalStateException("card declined");
                }).retry(RetryPolicy.NONE)
                .build();
        SagaOrchestrator first = orchestrator(v1);
        first.start(v1, "saga-1", "order-1", new PaymentData("order-1", 50, null));
        assertEquals(SagaStatus.FAILED_NEEDS_ATTENTION, store.find("saga-1").orElseThrow().status());
        first.close();

        // Version 2 is deployed with the upcaster that recover() would use for a running saga of version 1.
        SagaDefinition<PaymentDataV2> v2 = SagaDefinition.builder("payment-saga", PaymentDataV2.class).version(2)
                .dataType("payment-saga-data")
                .step("reserve").action((d, ctx) -> d)
                .compensation((d, ctx) -> released.add(ctx.idempotencyKey() + " " + d.currency()))
                .step("charge").action((d, ctx) -> d)
                .build();
        SagaOrchestrator second = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(v2)
                .dataUpcaster("payment-saga", 1, data -> data.put("currency", "USD"))
                .build();
        assertEquals(List.of(), second.recover().resumed(), "a saga that needs attention waits for the operator");
        long before = store.find("saga-1").orElseThrow().version();
        assertThrows(io.streamsaga.saga.SagaException.class, () -> second.skipCompensation("saga-1", "charge"));
        assertEquals(before, store.find("saga-1").orElseThrow().version(), "a refused call migrates nothing");

        SagaResult<Object> result = second.retryCompensation("saga-1").toCompletableFuture().join();

        assertTrue(result.isCompensated(), result.toString());
        assertEquals(List.of("saga-1/reserve USD"), released);
        SagaInstance stored = store.find("saga-1").orElseThrow();
        assertEquals(2, stored.definitionVersion());
        assertEquals(SagaStatus.COMPENSATED, stored.status());
        assertTrue(store.history("saga-1").stream().anyMatch(t -> t.type() == TransitionType.SAGA_MIGRATED));
    }

    @Test
    void withoutItsVersionOrAnUpcasterASagaIsReportedUnresolvableAndLeftUntouched() {
        SagaOrchestrator first = orchestrator(paymentSaga());
        first.start(paymentSaga(), "saga-1", null, new PaymentData("order-1", 50, null));
        first.close();
        long version = store.find("saga-1").orElseThrow().version();

        SagaDefinition<PaymentData> v2 = SagaDefinition.builder("payment-saga", PaymentData.class).version(2)
                .step("reserve").action((d, ctx) -> d).build();
        SagaOrchestrator.RecoveryReport recovery = orchestrator(v2).recover();

        assertEquals(List.of("saga-1"), recovery.unresolvable());
        assertEquals(version, store.find("saga-1").orElseThrow().version());
    }

    @Test
    void queriesFindSagasByIdBusinessKeyStatusAndAgeAndRetentionPurgesFinishedOnes() {
        SagaDefinition<PaymentData> local = SagaDefinition.builder("local-saga", PaymentData.class)
                .step("reserve").action((d, ctx) -> d).build();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .register(paymentSaga()).retention(Duration.ofHours(1)).build();
        orchestrator.start(local, "done-1", "order-1", new PaymentData("order-1", 1, null));
        orchestrator.start(local, "done-2", "order-2", new PaymentData("order-2", 1, null));
        orchestrator.start(paymentSaga(), "waiting-1", "order-1", new PaymentData("order-1", 1, null));
        scheduler.advance(Duration.ofHours(2));

        assertEquals(List.of("done-1", "waiting-1"),
                orchestrator.findByBusinessKey("order-1").stream().map(SagaInstance::sagaId).sorted().toList());
        assertEquals(2, orchestrator.findByStatus(SagaStatus.COMPLETED).size());
        assertEquals(List.of("waiting-1"),
                orchestrator.findUnfinishedLongerThan(Duration.ofHours(1)).stream().map(SagaInstance::sagaId).toList());
        assertTrue(orchestrator.findUnfinishedLongerThan(Duration.ofHours(3)).isEmpty());
        assertEquals(SagaStatus.RUNNING, orchestrator.find("waiting-1").orElseThrow().status());

        assertEquals(2, orchestrator.purgeFinished());
        assertTrue(orchestrator.find("done-1").isEmpty());
        assertTrue(orchestrator.find("waiting-1").isPresent());
    }

    @Test
    void aConfiguredPurgeIntervalDeletesFinishedSagasOlderThanTheRetention() {
        SagaDefinition<PaymentData> local = SagaDefinition.builder("local-saga", PaymentData.class)
                .step("reserve").action((d, ctx) -> d).build();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler)
                .retention(Duration.ofHours(1)).purgeEvery(Duration.ofMinutes(30)).build();
        orchestrator.start(local, "done-1", null, new PaymentData("order-1", 1, null));

        scheduler.advance(Duration.ofMinutes(60));
        assertTrue(orchestrator.find("done-1").isPresent(), "kept for the retention");
        scheduler.advance(Duration.ofMinutes(30));
        assertTrue(orchestrator.find("done-1").isEmpty(), "deleted by the periodic purge");

        orchestrator.close();
        assertEquals(0, scheduler.pendingTasks());
    }

    @Test
    void aSecondStartWithTheSameSagaIdIsRejected() {
        SagaOrchestrator orchestrator = orchestrator(paymentSaga());
        orchestrator.start(paymentSaga(), "saga-1", null, new PaymentData("order-1", 1, null));
        CompletableFuture<SagaResult<PaymentData>> duplicate =
                orchestrator.start(paymentSaga(), "saga-1", null, new PaymentData("order-1", 1, null)).toCompletableFuture();
        assertTrue(duplicate.isDone());
        CompletionException e = assertThrows(CompletionException.class, duplicate::join);
        assertInstanceOf(ConcurrentSagaUpdateException.class, e.getCause());
        assertEquals(List.of("saga-1/reserve"), reserved);
    }

    @Test
    void lifecycleHooksEventsOnTheBusAndMetricsReportTheRun() {
        List<String> hooks = new CopyOnWriteArrayList<>();
        List<String> metrics = new CopyOnWriteArrayList<>();
        List<SagaLifecycleEvent> events = new CopyOnWriteArrayList<>();
        bus.subscribe("ops", "saga-lifecycle", Message.class, (m, ctx) -> events.add((SagaLifecycleEvent) m.payload()));
        SagaDefinition<PaymentData> failing = SagaDefinition.builder("failing-saga", PaymentData.class)
                .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> { })
                .step("charge").action((d, ctx) -> {
                    throw new IllegalStateException("card declined");
                })
                .build();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).bus(bus).scheduler(scheduler)
                .publishLifecycleEvents("saga-lifecycle")
                .metrics(new MetricsRecorder() {
                    @Override
                    public void sagaStarted(String sagaName) {
                        metrics.add("started " + sagaName);
                    }

                    @Override
                    public void sagaFinished(String sagaName, String outcome, Duration duration) {
                        metrics.add(outcome + " " + sagaName);
                    }
                })
                .listener(new SagaListener() {
                    @Override
                    public void onStarted(SagaInstance instance) {
                        hooks.add("started");
                    }

                    @Override
                    public void onStepCompleted(SagaInstance instance, String step) {
                        hooks.add("completed " + step);
                    }

                    @Override
                    public void onStepFailed(SagaInstance instance, String step, io.streamsaga.saga.SagaFailure failure) {
                        hooks.add("failed " + step + ": " + failure.message());
                    }

                    @Override
                    public void onCompensationStarting(SagaInstance instance) {
                        hooks.add("compensating");
                    }

                    @Override
                    public void onStepCompensated(SagaInstance instance, String step) {
                        hooks.add("compensated " + step);
                    }

                    @Override
                    public void onCompensated(SagaInstance instance) {
                        hooks.add("saga compensated");
                    }
                })
                .build();

        orchestrator.start(failing, "saga-1", null, new PaymentData("o", 1, null));
        transport.drainAll();

        assertEquals(List.of("started", "completed reserve", "failed charge: card declined", "compensating",
                "compensated reserve", "saga compensated"), hooks);
        assertEquals(List.of("started failing-saga", "compensated failing-saga"), metrics);
        assertEquals(List.of("started", "step-completed", "compensating", "compensated"),
                events.stream().map(SagaLifecycleEvent::event).toList());
        assertTrue(events.get(3).error().contains("card declined"), events.get(3).toString());
        List<TransitionType> types = new ArrayList<>();
        for (SagaTransition t : orchestrator.history("saga-1")) {
            types.add(t.type());
        }
        assertTrue(types.contains(TransitionType.SAGA_COMPENSATED));
        assertTrue(orchestrator.sequenceDiagram("saga-1").contains("charge--xO: failed: IllegalStateException: card declined"));
    }
}
