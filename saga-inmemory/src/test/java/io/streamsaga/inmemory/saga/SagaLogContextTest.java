package io.streamsaga.inmemory.saga;

import io.streamsaga.CapturedLog;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.RecordPosition;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.contract.ForwardingTransport;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.inmemory.saga.testkit.SagaRunReport;
import io.streamsaga.inmemory.saga.testkit.SagaTestKit;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.ConcurrentSagaUpdateException;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaFailure;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaListener;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.TransitionType;
import io.streamsaga.saga.spi.SimulatedProcessCrash;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.slf4j.MDC;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * With {@code logContext(true)} the saga's id, name and step are in slf4j's MDC while the engine calls the application,
 * and the thread's own values are back afterwards (the tests' slf4j provider, MdcTestLoggingProvider in saga-core's
 * test-jar, has a working, non-inheritable MDC). docs/sagas.md, "Log correlation".
 */
class SagaLogContextTest {
    private static final String SAGA_ID = "streamsaga.sagaId";
    private static final String SAGA = "streamsaga.saga";
    private static final String STEP = "streamsaga.step";

    record Order(String id) {
    }

    record Charge(String orderId) {
    }

    record Charged(String orderId) {
    }

    record Refund(String orderId) {
    }

    record Refunded(String orderId) {
    }

    static final class Crash extends SimulatedProcessCrash {
        Crash() {
            super("the process dies in step b");
        }
    }

    /** What the MDC held at each call: "call" -> the saga's three keys (null when absent). */
    private final List<String> seen = new CopyOnWriteArrayList<>();
    private ExecutorService executor;

    @BeforeEach
    void callersOwnContext() {
        MDC.clear();
        MDC.put(SAGA_ID, "the-callers-saga");
        MDC.put(STEP, "the-callers-step");
        MDC.put("request", "r-1");
    }

    @AfterEach
    void cleanUp() {
        MDC.clear();
        if (executor != null) {
            executor.shutdownNow();
        }
    }

    private void see(String call) {
        seen.add(call + " " + MDC.get(SAGA_ID) + "/" + MDC.get(SAGA) + "/" + MDC.get(STEP));
    }

    private static Map<String, String> callersContext() {
        return Map.of(SAGA_ID, "the-callers-saga", STEP, "the-callers-step", "request", "r-1");
    }

    /** a, b (fails for good), c: a compensated; each call records the MDC. */
    private SagaDefinition<Order> failingAtB() {
        return SagaDefinition.builder("order", Order.class)
                .step("a").action((o, ctx) -> {
                    see("a");
                    return o;
                }).compensation((o, ctx) -> see("undo-a"))
                .step("b").action((o, ctx) -> {
                    see("b");
                    throw new IllegalStateException("declined");
                }).retry(RetryPolicy.NONE)
                .step("c").action((o, ctx) -> o)
                .build();
    }

    @ParameterizedTest(name = "with a listener: {0}")
    @ValueSource(booleans = {false, true}) // without one the engine takes its straight path, with one the general
    void theSagasKeysAreInTheMdcDuringItsActionsCompensationsAndListenersAndTheCallersOwnAreBackAfter(boolean listener) {
        SagaOrchestrator.Builder builder = SagaOrchestrator.builder().store(new InMemorySagaStore()).logContext(true);
        if (listener) {
            builder.listener(new SagaListener() {
                @Override
                public void onStarted(SagaInstance saga) {
                    see("started");
                }

                @Override
                public void onStepFailed(SagaInstance saga, String step, SagaFailure failure) {
                    see("failed");
                }

                @Override
                public void onCompensated(SagaInstance saga) {
                    see("compensated");
                }
            });
        }
        try (SagaOrchestrator orchestrator = builder.build()) {
            SagaResult<Order> result = orchestrator.start(failingAtB(), "s-1", "o-1", new Order("o-1"))
                    .toCompletableFuture().join();

            assertTrue(result.isCompensated(), result.toString());
            List<String> expected = listener
                    ? List.of("started s-1/order/null", "a s-1/order/a", "b s-1/order/b", "failed s-1/order/b",
                    "undo-a s-1/order/a", "compensated s-1/order/null")
                    : List.of("a s-1/order/a", "b s-1/order/b", "undo-a s-1/order/a");
            assertEquals(expected, seen);
            assertEquals(callersContext(), MDC.getCopyOfContextMap(), "start() ran on this thread: its own MDC is back");
        }
    }

    /** A listener that records, with the MDC, each step's outcome and the compensation's start. */
    private SagaListener recordingStepOutcomes() {
        return new SagaListener() {
            @Override
            public void onStepCompleted(SagaInstance saga, String step) {
                see("completed " + step);
            }

            @Override
            public void onStepFailed(SagaInstance saga, String step, SagaFailure failure) {
                see("failed " + step);
            }

            @Override
            public void onCompensationStarting(SagaInstance saga) {
                see("compensating");
            }

            @Override
            public void onStepCompensated(SagaInstance saga, String step) {
                see("compensated " + step);
            }
        };
    }

    @ParameterizedTest(name = "asynchronous steps: {0}")
    @ValueSource(booleans = {false, true}) // synchronous: the outcome handled after the call; asynchronous: in a drive
    void aListenersPerStepCallbacksHaveTheStepsKeyWhetherTheStepSucceededFailedOrWasCompensated(boolean async) {
        SagaDefinition.StepBuilder<Order> a = SagaDefinition.builder("order", Order.class).step("a");
        a = async ? a.asyncAction((o, ctx) -> CompletableFuture.completedFuture(o))
                .asyncCompensation((o, ctx) -> CompletableFuture.completedFuture(null))
                : a.action((o, ctx) -> o).compensation((o, ctx) -> {
                });
        SagaDefinition.StepBuilder<Order> b = a.step("b");
        b = async ? b.asyncAction((o, ctx) -> CompletableFuture.failedFuture(new IllegalStateException("declined")))
                : b.action((o, ctx) -> {
                    throw new IllegalStateException("declined");
                });
        SagaDefinition<Order> definition = b.retry(RetryPolicy.NONE).build();
        SagaListener listener = recordingStepOutcomes();
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(new InMemorySagaStore()).listener(listener)
                .logContext(true).build()) {
            SagaResult<Order> result = orchestrator.start(definition, "s-6", "o-6", new Order("o-6"))
                    .toCompletableFuture().join();

            assertTrue(result.isCompensated(), result.toString());
        }
        assertEquals(List.of("completed a s-6/order/a", "failed b s-6/order/b", "compensating s-6/order/null",
                "compensated a s-6/order/a"), seen);
        assertEquals(callersContext(), MDC.getCopyOfContextMap(), "start() ran on this thread: its own MDC is back");
    }

    @Test
    void withoutLogContextTheEngineLeavesTheMdcAlone() {
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(new InMemorySagaStore()).build()) {
            orchestrator.start(failingAtB(), "s-1", "o-1", new Order("o-1")).toCompletableFuture().join();
        }
        assertEquals(List.of("a the-callers-saga/null/the-callers-step", "b the-callers-saga/null/the-callers-step",
                "undo-a the-callers-saga/null/the-callers-step"), seen);
    }

    @Test
    void anAsynchronousStepsOwnCallHasTheKeysTheWorkItHandsToAnExecutorNoneAndThatThreadKeepsNone() throws Exception {
        executor = Executors.newSingleThreadExecutor();
        MDC.clear();
        executor.submit(MDC::clear).get(); // the thread exists before any saga's keys do
        // Let go once start() returned: the stage completes on the executor's thread, which then drives the saga on.
        CompletableFuture<Void> gate = new CompletableFuture<>();
        SagaDefinition<Order> definition = SagaDefinition.builder("order", Order.class)
                .step("reserve").asyncAction((o, ctx) -> {
                    see("reserve");
                    return CompletableFuture.supplyAsync(() -> {
                        gate.join();
                        see("reserve's work");
                        return o;
                    }, executor);
                })
                .step("ship").action((o, ctx) -> { // driven on from the executor's thread, which completed the stage
                    see("ship on " + (Thread.currentThread().getName().startsWith("pool-") ? "executor" : "caller"));
                    return o;
                })
                .parallel(group -> {
                    group.step("bill").action((o, ctx) -> {
                        see("bill");
                        return o;
                    });
                    group.step("notify").action((o, ctx) -> {
                        see("notify");
                        return o;
                    });
                })
                .build();
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(new InMemorySagaStore())
                .parallelExecutor(executor).logContext(true).build()) {
            CompletableFuture<SagaResult<Order>> started =
                    orchestrator.start(definition, "s-2", "o-2", new Order("o-2")).toCompletableFuture();
            assertEquals(Map.of(), MDC.getCopyOfContextMap(), "start() returned: this thread keeps no key");
            gate.complete(null);
            SagaResult<Order> result = started.get();

            assertTrue(result.isCompleted(), result.toString());
        }
        assertEquals(List.of("reserve s-2/order/reserve", "reserve's work null/null/null",
                "ship on executor s-2/order/ship", "bill s-2/order/bill", "notify s-2/order/notify"), seen);
        assertEquals(Map.of(), executor.submit(MDC::getCopyOfContextMap).get(), "the pooled thread keeps no key");
        assertEquals(Map.of(), MDC.getCopyOfContextMap());
    }

    @Test
    void aSagaDrivenOrStartedFromAnotherSagasStepOnTheSameThreadPutsBackThatSagasKeysNotNone() {
        CompletableFuture<Order> released = new CompletableFuture<>();
        SagaDefinition<Order> waiting = SagaDefinition.builder("waiting", Order.class)
                .step("hold").asyncAction((o, ctx) -> {
                    see("hold");
                    return released;
                })
                .step("after").action((o, ctx) -> {
                    see("after");
                    return o;
                })
                .build();
        SagaDefinition<Order> inner = SagaDefinition.builder("inner", Order.class)
                .step("quick").asyncAction((o, ctx) -> { // complete when returned: its completion drives on, re-entrant
                    see("quick");
                    return CompletableFuture.completedFuture(o);
                })
                .step("x").action((o, ctx) -> {
                    see("x");
                    return o;
                })
                .build();
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(new InMemorySagaStore()).logContext(true)
                .build()) {
            SagaDefinition<Order> releasing = SagaDefinition.builder("releasing", Order.class)
                    .step("release").action((o, ctx) -> {
                        see("release");
                        released.complete(o); // drives saga w-1 on, on this thread
                        see("release, w-1 driven");
                        assertTrue(orchestrator.start(inner, "i-1", "o-1", o).toCompletableFuture().isDone());
                        see("release, i-1 run");
                        return o;
                    })
                    .build();
            CompletableFuture<SagaResult<Order>> held =
                    orchestrator.start(waiting, "w-1", "o-1", new Order("o-1")).toCompletableFuture();
            assertFalse(held.isDone());

            SagaResult<Order> result = orchestrator.start(releasing, "r-1", "o-1", new Order("o-1"))
                    .toCompletableFuture().join();

            assertTrue(result.isCompleted(), result.toString());
            assertTrue(held.join().isCompleted());
            assertEquals(List.of("hold w-1/waiting/hold", "release r-1/releasing/release", "after w-1/waiting/after",
                    "release, w-1 driven r-1/releasing/release", "quick i-1/inner/quick", "x i-1/inner/x",
                    "release, i-1 run r-1/releasing/release"), seen);
            assertEquals(callersContext(), MDC.getCopyOfContextMap());
        }
    }

    @Test
    void aRetryAfterItsBackoffAndARecoveredRunHaveTheKeysToo() {
        VirtualScheduler scheduler = new VirtualScheduler(Instant.EPOCH);
        InMemorySagaStore store = new InMemorySagaStore();
        AtomicBoolean crash = new AtomicBoolean(true);
        SagaDefinition<Order> definition = SagaDefinition.builder("order", Order.class)
                .step("a").action((o, ctx) -> {
                    see("a/" + ctx.attempt());
                    if (ctx.attempt() == 1) {
                        throw new IllegalStateException("busy");
                    }
                    return o;
                }).retry(RetryPolicy.builder().maxAttempts(2).initialBackoff(Duration.ofSeconds(1)).jitter(0).build())
                .step("b").action((o, ctx) -> {
                    see("b");
                    if (crash.getAndSet(false)) {
                        throw new Crash();
                    }
                    return o;
                })
                .build();
        try (SagaOrchestrator first = SagaOrchestrator.builder().store(store).scheduler(scheduler).logContext(true)
                .build()) {
            CompletableFuture<SagaResult<Order>> result =
                    first.start(definition, "s-3", "o-3", new Order("o-3")).toCompletableFuture();
            assertEquals(callersContext(), MDC.getCopyOfContextMap());
            assertFalse(result.isDone());
            assertThrows(Crash.class, () -> scheduler.advance(Duration.ofSeconds(1))); // the retry, then b's crash
            assertEquals(callersContext(), MDC.getCopyOfContextMap(), "put back though an Error went through");
        }
        try (SagaOrchestrator second = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition)
                .logContext(true).build()) {
            assertEquals(List.of("s-3"), second.recover().resumed());
            assertTrue(second.result("s-3").toCompletableFuture().join().isCompleted());
        }
        assertEquals(List.of("a/1 s-3/order/a", "a/2 s-3/order/a", "b s-3/order/b", "b s-3/order/b"), seen);
        assertEquals(callersContext(), MDC.getCopyOfContextMap());
    }

    @Test
    void aRemoteStepsCommandFactoriesAndReplyHandlersSeeTheSagasKeysAndTheHandlersTheReplysToo() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        TypeRegistry types = paymentTypes();
        InMemorySagaStore store = new InMemorySagaStore();
        // docs/sagas.md, "Log correlation": the snippet
        EventBus bus = EventBus.builder(transport).types(types).logContext(true).build();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).bus(bus).logContext(true).build();
        SagaDefinition<Order> definition = SagaDefinition.builder("order", Order.class)
                .step("charge").command("payment-commands", (o, ctx) -> {
                    see("command");
                    return new Charge(o.id());
                })
                .onReply(Charged.class, (o, reply) -> {
                    see("reply");
                    seen.add("reply's message " + MDC.get("streamsaga.messageId") + " " + MDC.get("streamsaga.topic"));
                    return o;
                })
                .compensationCommand("refund-commands", (o, ctx) -> {
                    see("refund command");
                    return new Refund(o.id());
                })
                .onCompensationReply(Refunded.class, (o, reply) -> {
                    see("refund reply");
                    seen.add("refund reply's message " + MDC.get("streamsaga.messageId"));
                })
                .step("ship").action((o, ctx) -> {
                    throw new IllegalStateException("no stock");
                }).retry(RetryPolicy.NONE)
                .build();
        bus.subscribe("payments", "payment-commands", Charge.class, (command, ctx) -> {
            see("participant");
            SagaMessages.reply(bus, ctx.message(), new Charged(command.orderId()));
        });
        bus.subscribe("refunds", "refund-commands", Refund.class,
                (command, ctx) -> SagaMessages.reply(bus, ctx.message(), new Refunded(command.orderId())));
        try (bus; orchestrator) {
            CompletableFuture<SagaResult<Order>> result =
                    orchestrator.start(definition, "s-5", "o-5", new Order("o-5")).toCompletableFuture();
            transport.drainAll(); // the commands, then their replies, on this thread

            assertTrue(result.join().isCompensated());
            Message reply = transport.messages("saga-replies").get(0);
            Message refunded = transport.messages("saga-replies").get(1);
            assertEquals(List.of("command s-5/order/charge", "participant the-callers-saga/null/the-callers-step",
                    "reply s-5/order/charge", "reply's message " + reply.id() + " saga-replies",
                    "refund command s-5/order/charge", "refund reply s-5/order/charge",
                    "refund reply's message " + refunded.id()), seen);
            assertEquals(callersContext(), MDC.getCopyOfContextMap());
        }
    }

    @Test
    void theEnginesOwnLogLineAboutAFailedCompensationCarriesTheKeys() throws Throwable {
        MDC.clear();
        SagaDefinition<Order> definition = SagaDefinition.builder("order", Order.class)
                .step("a").action((o, ctx) -> o).compensation((o, ctx) -> {
                    throw new IllegalStateException("refund refused");
                }).compensationRetry(RetryPolicy.NONE)
                .step("b").action((o, ctx) -> {
                    throw new IllegalStateException("declined");
                }).retry(RetryPolicy.NONE)
                .build();
        String log;
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(new InMemorySagaStore()).logContext(true)
                .build()) {
            log = CapturedLog.ofThisThread(() -> orchestrator.start(definition, "s-4", "o-4", new Order("o-4")));
        }
        assertTrue(log.contains("ERROR io.streamsaga.saga.internal.SagaRun - saga s-4:"), log);
        assertTrue(log.contains("mdc={streamsaga.saga=order, streamsaga.sagaId=s-4"), log);
        assertNull(MDC.get(SAGA_ID));
    }

    /** payment's remote step charge, answered by the test with charged; ship fails for good: charge refunded. */
    private SagaDefinition<Order> chargedThenRefunded() {
        return SagaDefinition.builder("order", Order.class)
                .step("charge").command("payment-commands", (o, ctx) -> new Charge(o.id()))
                .onReply(Charged.class, (o, reply) -> o)
                .compensationCommand("refund-commands", (o, ctx) -> new Refund(o.id()))
                .onCompensationReply(Refunded.class, (o, reply) -> {
                })
                .step("ship").action((o, ctx) -> {
                    throw new IllegalStateException("no stock");
                }).retry(RetryPolicy.NONE)
                .build();
    }

    private static TypeRegistry paymentTypes() {
        return TypeRegistry.builder().register("charge", 1, Charge.class).register("charged", 1, Charged.class)
                .register("refund", 1, Refund.class).register("refunded", 1, Refunded.class).build();
    }

    @Test
    void aRemoteStepsPerStepListenerCallbacksHaveItsKeyWhenItsReplyArrives() {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        EventBus bus = EventBus.builder(transport).types(paymentTypes()).build();
        SagaListener listener = recordingStepOutcomes();
        bus.subscribe("payments", "payment-commands", Charge.class,
                (command, ctx) -> SagaMessages.reply(bus, ctx.message(), new Charged(command.orderId())));
        bus.subscribe("refunds", "refund-commands", Refund.class,
                (command, ctx) -> SagaMessages.reply(bus, ctx.message(), new Refunded(command.orderId())));
        try (bus; SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(new InMemorySagaStore()).bus(bus)
                .listener(listener).logContext(true).build()) {
            CompletableFuture<SagaResult<Order>> result =
                    orchestrator.start(chargedThenRefunded(), "s-7", "o-7", new Order("o-7")).toCompletableFuture();
            assertEquals(List.of(), seen, "charge waits for its reply");

            transport.drainAll(); // the replies, delivered on this thread outside start()

            assertTrue(result.join().isCompensated());
        }
        assertEquals(List.of("completed charge s-7/order/charge", "failed ship s-7/order/ship",
                "compensating s-7/order/null", "compensated charge s-7/order/charge"), seen);
        assertEquals(callersContext(), MDC.getCopyOfContextMap());
    }

    @Test
    void theEnginesLinesAboutOneSagaOutsideItsDriveCarryItsKeys() throws Throwable {
        MDC.clear();
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        EventBus bus = EventBus.builder(transport).types(paymentTypes()).build(); // without keys of its own
        InMemorySagaStore store = new InMemorySagaStore();
        Instant at = Instant.parse("2026-01-01T00:00:00Z");
        store.insert(new SagaInstance("s-9", "lost", 1, null, "data", "x", SagaStatus.RUNNING, List.of(), null, null,
                at, at, 1), new SagaTransition("s-9", 1, at, TransitionType.SAGA_STARTED, null, 0, null));
        try (bus; SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).bus(bus)
                .listener(new SagaListener() { // the orchestrator's general path, whose start stores before driving
                }).logContext(true).build()) {
            orchestrator.start(chargedThenRefunded(), "s-8", "o-8", new Order("o-8"));
            SagaDefinition<Order> quick = SagaDefinition.builder("quick", Order.class).step("q").action((o, ctx) -> o)
                    .build();
            assertTrue(orchestrator.start(quick, "s-10", "o-10", new Order("o-10")).toCompletableFuture().join()
                    .isCompleted());
            // A reply to a command of another saga once under the id s-8 (purged since)
            Message command = Message.builder("payment-commands")
                    .id(SagaMessages.commandId("s-8", at, "charge", false, 1)).type("charge").payload(new Charge("o-8"))
                    .header(MessageHeaders.SAGA_ID, "s-8").header(SagaMessages.STEP, "charge")
                    .header(SagaMessages.REPLY_TOPIC, "saga-replies").build();
            SagaMessages.reply(bus, command, new Charged("o-8")).toCompletableFuture().join();

            String log = CapturedLog.ofThisThread(() -> {
                transport.drainAll(); // the reply, handled on this thread, outside any drive
                orchestrator.recover(); // s-9, whose definition is not registered here
                orchestrator.start(quick, "s-10", "o-10", new Order("o-10")); // its id is taken
            });

            assertLine(log, "INFO io.streamsaga.saga.internal.DefaultSagaOrchestrator - saga s-8: ignoring reply",
                    "s-8", "order");
            assertLine(log, "ERROR io.streamsaga.saga.internal.DefaultSagaOrchestrator - saga s-9: no definition named"
                    + " 'lost' is registered", "s-9", "lost");
            assertLine(log, "WARN io.streamsaga.saga.internal.SagaRun - saga s-10: a saga with this id is already stored",
                    "s-10", "quick");
        }
        assertEquals(Map.of(), MDC.getCopyOfContextMap());
    }

    @Test
    void aRecoverysCheckOfARunAnotherOrchestratorWroteSinceLogsWithTheSagasKeys() throws Throwable {
        MDC.clear();
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        EventBus bus = EventBus.builder(transport).types(paymentTypes()).build();
        InMemorySagaStore store = new InMemorySagaStore();
        AtomicBoolean nextFindFails = new AtomicBoolean();
        ForwardingSagaStore failingOnce = new ForwardingSagaStore(store) {
            @Override
            public Optional<SagaInstance> find(String sagaId) {
                if (nextFindFails.getAndSet(false)) {
                    throw new IllegalStateException("database unreachable");
                }
                return super.find(sagaId);
            }
        };
        SagaDefinition<Order> definition = chargedThenRefunded();
        try (bus; SagaOrchestrator first = SagaOrchestrator.builder().store(failingOnce).bus(bus).register(definition)
                .replyTopic("replies-a").logContext(true).build();
             SagaOrchestrator second = SagaOrchestrator.builder().store(store).bus(bus).register(definition)
                     .replyTopic("replies-b").build()) {
            first.start(definition, "s-11", "o-11", new Order("o-11")); // waits for its charge's reply
            second.cancel("s-11"); // a write of the other orchestrator: the run here is superseded
            nextFindFails.set(true);

            String log = CapturedLog.ofThisThread(() -> {
                first.recover(); // its check of the run here cannot read the saga: the run stays
                first.recover(); // read: written by the other since, the run here is dropped
            });

            assertLine(log, "WARN io.streamsaga.saga.internal.DefaultSagaOrchestrator - saga s-11: driven here, but the"
                    + " store failed while checking", "s-11", "order");
            assertLine(log, "INFO io.streamsaga.saga.internal.SagaRun - saga s-11: moved on by another node", "s-11",
                    "order");
        }
        assertEquals(Map.of(), MDC.getCopyOfContextMap());
    }

    @Test
    void anOperatorCallsMigrationMadeConcurrentlyElsewhereLogsWithTheSagasKeys() throws Throwable {
        MDC.clear();
        VirtualScheduler scheduler = new VirtualScheduler();
        InMemorySagaStore store = new InMemorySagaStore();
        RetryPolicy later = RetryPolicy.builder().maxAttempts(10).initialBackoff(Duration.ofMinutes(5)).jitter(0).build();
        SagaDefinition<Order> v1 = SagaDefinition.builder("moving", Order.class)
                .step("a").action((o, ctx) -> {
                    throw new IllegalStateException("not yet");
                }).retry(later)
                .build();
        try (SagaOrchestrator old = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(v1).build()) {
            old.start(v1, "s-12", "o-12", new Order("o-12")); // its retry still waits when version 2 is deployed
        }
        SagaDefinition<Order> v2 = SagaDefinition.builder("moving", Order.class).version(2)
                .step("a").action((o, ctx) -> o).retry(later)
                .build();
        SagaOrchestrator other = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(v2)
                .dataUpcaster("moving", 1, json -> json).build();
        AtomicBoolean raced = new AtomicBoolean();
        ForwardingSagaStore racing = new ForwardingSagaStore(store) {
            @Override
            public void update(SagaInstance updated, SagaTransition transition) {
                if (transition.type() == TransitionType.SAGA_MIGRATED && raced.compareAndSet(false, true)) {
                    other.cancel("s-12"); // another node migrates it first, and cancels it
                }
                super.update(updated, transition);
            }
        };
        try (other; SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(racing).scheduler(scheduler)
                .register(v2).dataUpcaster("moving", 1, json -> json).logContext(true).build()) {
            String log = CapturedLog.ofThisThread(() -> assertThrows(ConcurrentSagaUpdateException.class,
                    () -> orchestrator.cancel("s-12")));

            assertLine(log, "INFO io.streamsaga.saga.internal.DefaultSagaOrchestrator - saga s-12: migrated"
                    + " concurrently by another node", "s-12", "moving");
        }
        assertEquals(Map.of(), MDC.getCopyOfContextMap());
    }

    @Test
    void theEnginesDebugLinesAboutALateOutcomeOrACancelledTimerCarryTheSagasKeys() throws Throwable {
        MDC.clear();
        LateTimerCancellationTest.LateCancellingScheduler scheduler = new LateTimerCancellationTest.LateCancellingScheduler();
        List<CompletableFuture<Order>> attempts = new CopyOnWriteArrayList<>();
        List<CompletableFuture<Void>> undos = new CopyOnWriteArrayList<>();
        SagaDefinition<Order> definition = SagaDefinition.builder("late", Order.class)
                .step("a").action((o, ctx) -> o)
                .asyncCompensation((o, ctx) -> {
                    CompletableFuture<Void> undo = new CompletableFuture<>();
                    undos.add(undo);
                    return undo;
                }).compensationTimeout(Duration.ofMinutes(1)).compensationRetry(RetryPolicy.NONE)
                .step("b").asyncAction((o, ctx) -> {
                    CompletableFuture<Order> attempt = new CompletableFuture<>();
                    attempts.add(attempt);
                    return attempt;
                }).timeout(Duration.ofMinutes(1)).retry(RetryPolicy.NONE)
                .build();
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(new InMemorySagaStore())
                .scheduler(scheduler).register(definition).logContext(true).build()) {
            orchestrator.start(definition, "s-13", "o-13", new Order("o-13"));
            scheduler.delegate.advance(Duration.ofMinutes(2)); // b times out, then a's compensation: needs attention
            orchestrator.start(definition, "s-14", "o-14", new Order("o-14"));

            String log = CapturedLog.ofThisThreadAtDebug(() -> {
                attempts.get(0).complete(new Order("o-13")); // s-13's b, after its timeout
                undos.get(0).complete(null); // s-13's compensation of a, after its timeout
                attempts.get(1).complete(new Order("o-14")); // s-14's b in time: its timeout's timer is cancelled
                scheduler.delegate.advance(Duration.ofMinutes(1)); // and runs all the same
            });

            assertLine(log, "DEBUG io.streamsaga.saga.internal.SagaRun - saga s-13: ignoring late completion of step b"
                    + " attempt 1", "s-13", "late");
            assertLine(log, "DEBUG io.streamsaga.saga.internal.SagaRun - saga s-13: ignoring late outcome of"
                    + " compensation a attempt 1", "s-13", "late");
            assertLine(log, "DEBUG io.streamsaga.saga.internal.SagaRun - saga s-14: ignoring a cancelled timer of step"
                    + " b", "s-14", "late");
        }
        assertEquals(Map.of(), MDC.getCopyOfContextMap());
    }

    @ParameterizedTest(name = "logContext: {0}")
    @ValueSource(booleans = {false, true})
    void theTestKitsLogContextOptionGivesItsRunsTheSagasAndTheDeliveredMessagesKeys(boolean logContext) {
        SagaTestKit.given(env -> env.bus().subscribe("payments", "payment-commands", Charge.class, (command, ctx) -> {
            see("participant");
            seen.add("participant's message " + MDC.get("streamsaga.topic"));
            SagaMessages.reply(env.bus(), ctx.message(), new Charged(command.orderId()));
        }), services -> SagaDefinition.builder("order", Order.class)
                .step("reserve").action((o, ctx) -> {
                    see("reserve");
                    return o;
                })
                .step("charge").command("payment-commands", (o, ctx) -> new Charge(o.id()))
                .onReply(Charged.class, (o, reply) -> {
                    see("reply");
                    return o;
                })
                .build(), new Order("o-1"))
                .types(paymentTypes())
                .logContext(logContext)
                .whenRun()
                .expectCompleted();

        String id = SagaRunReport.SAGA_ID;
        assertEquals(logContext
                ? List.of("reserve " + id + "/order/reserve", "participant the-callers-saga/null/the-callers-step",
                "participant's message payment-commands", "reply " + id + "/order/charge")
                : List.of("reserve the-callers-saga/null/the-callers-step",
                "participant the-callers-saga/null/the-callers-step", "participant's message null",
                "reply the-callers-saga/null/the-callers-step"), seen);
        assertEquals(callersContext(), MDC.getCopyOfContextMap());
    }

    /** An in-memory transport whose sends to {@code held} wait for the test to fail them. */
    static final class HoldingTransport extends ForwardingTransport {
        final List<CompletableFuture<RecordPosition>> heldSends = new CopyOnWriteArrayList<>();
        private final String held;

        HoldingTransport(String held) {
            super(InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build());
            this.held = held;
        }

        @Override
        public CompletionStage<RecordPosition> send(Message message) {
            if (!message.topic().equals(held)) {
                return super.send(message);
            }
            CompletableFuture<RecordPosition> send = new CompletableFuture<>();
            heldSends.add(send);
            return send;
        }
    }

    @Test
    void theEnginesWarningAboutALifecycleEventItCouldNotSendCarriesTheSagasKeysOnTheThreadThatFailedTheSend()
            throws Throwable {
        MDC.clear();
        HoldingTransport transport = new HoldingTransport("saga-lifecycle");
        EventBus bus = EventBus.builder(transport).retryPolicy(RetryPolicy.NONE).build(); // without keys of its own
        SagaDefinition<Order> quick = SagaDefinition.builder("quick", Order.class).step("q").action((o, ctx) -> o)
                .build();
        try (bus; SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(new InMemorySagaStore()).bus(bus)
                .publishLifecycleEvents("saga-lifecycle").logContext(true).build()) {
            assertTrue(orchestrator.start(quick, "s-11", "o-11", new Order("o-11")).toCompletableFuture().join()
                    .isCompleted());
            assertFalse(transport.heldSends.isEmpty(), "its lifecycle events wait to be sent");

            String log = CapturedLog.ofThisThread(() -> { // the transport fails them on this thread, after the drive
                for (CompletableFuture<RecordPosition> send : transport.heldSends) {
                    send.completeExceptionally(new IllegalStateException("broker unreachable"));
                }
            });

            assertLine(log, "WARN io.streamsaga.saga.internal.DefaultSagaOrchestrator - saga s-11: lifecycle event",
                    "s-11", "quick");
            assertEquals(transport.heldSends.size(), log.lines().filter(l -> l.contains("could not be published"))
                    .count(), log);
        }
        assertEquals(Map.of(), MDC.getCopyOfContextMap());
    }

    /** {@code log} has an entry starting with {@code entry} that carries the saga's keys, and no step's. */
    private static void assertLine(String log, String entry, String sagaId, String saga) {
        String line = log.lines().filter(l -> l.contains(entry)).findFirst().orElseThrow(() -> new AssertionError(log));
        assertTrue(line.endsWith("mdc={" + SAGA + "=" + saga + ", " + SAGA_ID + "=" + sagaId + "}"), line);
    }
}
