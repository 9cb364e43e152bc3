package io.streamsaga.inmemory.saga;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.bus.Subscription;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.spi.Transport;
import io.streamsaga.time.Scheduler;
import org.junit.jupiter.api.Test;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.mockito.AdditionalAnswers.delegatesTo;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.Mockito.doAnswer;
import static org.mockito.Mockito.mock;

/** close() stops the threads the orchestrator started for itself. */
class OrchestratorCloseTest {
    record Data(String id) {
    }

    private static Set<Thread> schedulerThreads() {
        Set<Thread> found = new HashSet<>();
        for (Thread thread : Thread.getAllStackTraces().keySet()) {
            if (thread.getName().equals("streamsaga-scheduler") && thread.isAlive()) {
                found.add(thread);
            }
        }
        return found;
    }

    @Test
    void closeStopsTheSchedulerThreadOfAnOrchestratorBuiltWithoutSchedulerOrBus() throws InterruptedException {
        SagaDefinition<Data> definition = SagaDefinition.builder("close-saga", Data.class)
                .step("wait").asyncAction((d, ctx) -> new CompletableFuture<Data>()) // never completes
                .timeout(Duration.ofDays(1))                                          // a timer on the scheduler
                .build();
        Set<Thread> before = schedulerThreads();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(new InMemorySagaStore()).register(definition).build();
        orchestrator.start(definition, "saga-1", null, new Data("a"));
        Set<Thread> started = schedulerThreads();
        started.removeAll(before);
        assertTrue(!started.isEmpty(), "the orchestrator's own scheduler started its thread for the timeout");

        orchestrator.close();

        for (Thread thread : List.copyOf(started)) {
            thread.join(Duration.ofSeconds(10).toMillis());
            assertFalse(thread.isAlive(), "thread " + thread.getName() + " left running after close()");
        }
    }

    /** A scheduler over {@code virtual} that refuses its {@code refused}-th timer (saturated, say). */
    private static Scheduler refusingTimer(VirtualScheduler virtual, int refused) {
        return new Scheduler() {
            private int timers;

            @Override
            public Clock clock() {
                return virtual.clock();
            }

            @Override
            public Cancellable schedule(Duration delay, Runnable task) {
                if (++timers == refused) {
                    throw new RejectedExecutionException("saturated");
                }
                return virtual.schedule(delay, task);
            }

            @Override
            public void sleep(Duration delay) {
                virtual.sleep(delay);
            }

            @Override
            public void close() {
                virtual.close();
            }
        };
    }

    @Test
    void aBuildThatFailsAfterArmingARepeatingTimerLeavesNoTimerOnTheSharedScheduler() {
        // The constructor's failure path closed an own scheduler but neither cancelled the repeating timers it had
        // armed nor closed their scope: on a shared scheduler the purge of an orchestrator that was never built ran
        // on, every interval, for good.
        VirtualScheduler virtual = new VirtualScheduler();
        AtomicBoolean purged = new AtomicBoolean();
        ForwardingSagaStore store = new ForwardingSagaStore(new InMemorySagaStore()) {
            @Override
            public int deleteFinishedBefore(Instant cutoff) {
                purged.set(true);
                return delegate.deleteFinishedBefore(cutoff);
            }
        };
        SagaOrchestrator.Builder builder = SagaOrchestrator.builder().store(store).scheduler(refusingTimer(virtual, 2))
                .purgeEvery(Duration.ofMinutes(1)) // armed first
                .recoverEvery(Duration.ofMinutes(1), Duration.ZERO); // refused: build() fails

        assertThrows(RejectedExecutionException.class, builder::build);

        virtual.advance(Duration.ofMinutes(5));
        assertFalse(purged.get(), "the purge of an orchestrator whose build failed ran on the shared scheduler");
        assertEquals(0, virtual.pendingTasks(), "a timer of an orchestrator whose build failed stayed scheduled");
    }

    @Test
    void aBuildThatFailsAfterSubscribingToRepliesLeavesNoSubscription() {
        // As close() closes the replies first: a build failing after the subscription left it active, and the
        // orchestrator that was never built took the replies meant for the group's next one.
        VirtualScheduler virtual = new VirtualScheduler();
        List<Subscription> subscriptions = new java.util.concurrent.CopyOnWriteArrayList<>();
        InMemoryTransport inMemory = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        Transport transport = mock(Transport.class, delegatesTo(inMemory));
        doAnswer(call -> {
            Subscription made = inMemory.subscribe(call.getArgument(0), call.getArgument(1), call.getArgument(2),
                    call.getArgument(3));
            subscriptions.add(made);
            return made;
        }).when(transport).subscribe(any(), any(), any(), any());
        record Charge(String id) {
        }
        record Charged(String id) {
        }
        EventBus bus = EventBus.builder(transport).scheduler(virtual)
                .types(TypeRegistry.builder().register("charge", 1, Charge.class).register("charged", 1, Charged.class).build()).build();
        SagaDefinition<Data> definition = SagaDefinition.builder("remote", Data.class)
                .step("charge").command("charge-commands", (d, ctx) -> new Charge(d.id()))
                .onReply(Charged.class, (d, reply) -> d)
                .build();
        SagaOrchestrator.Builder builder = SagaOrchestrator.builder().store(new InMemorySagaStore()).bus(bus)
                .scheduler(refusingTimer(virtual, 1)).register(definition)
                .purgeEvery(Duration.ofMinutes(1)); // refused, after the replies' subscription: build() fails

        assertThrows(RejectedExecutionException.class, builder::build);

        assertEquals(1, subscriptions.size(), "the orchestrator subscribed to its replies");
        assertFalse(subscriptions.get(0).isActive(), "the replies' subscription of a failed build stayed active");
        bus.close();
        inMemory.close();
    }

    @Test
    void aSagaStartedWhileTheOrchestratorClosesHasItsResultCompleted() throws Exception {
        VirtualScheduler virtual = new VirtualScheduler();
        AtomicBoolean hook = new AtomicBoolean();
        CountDownLatch inStart = new CountDownLatch(1);
        CountDownLatch closed = new CountDownLatch(1);
        Clock pausing = new Clock() {
            @Override
            public ZoneId getZone() {
                return virtual.clock().getZone();
            }

            @Override
            public Clock withZone(ZoneId zone) {
                return this;
            }

            @Override
            public Instant instant() {
                if (hook.compareAndSet(true, false)) { // start() reads the clock after its open check
                    inStart.countDown();
                    try {
                        closed.await();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
                return virtual.now();
            }
        };
        Scheduler scheduler = new Scheduler() {
            @Override
            public Clock clock() {
                return pausing;
            }

            @Override
            public Cancellable schedule(Duration delay, Runnable task) {
                return virtual.schedule(delay, task);
            }

            @Override
            public void sleep(Duration delay) {
                virtual.sleep(delay);
            }

            @Override
            public void close() {
                virtual.close();
            }
        };
        SagaDefinition<Data> definition = SagaDefinition.builder("closing-saga", Data.class)
                .step("wait").asyncAction((d, ctx) -> new CompletableFuture<Data>()) // never completes
                .build();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(new InMemorySagaStore()).scheduler(scheduler)
                .register(definition).build();
        AtomicReference<CompletableFuture<SagaResult<Data>>> result = new AtomicReference<>();
        hook.set(true);
        Thread starter = new Thread(() -> {
            try {
                result.set(orchestrator.start(definition, "saga-1", null, new Data("a")).toCompletableFuture());
            } catch (RuntimeException refused) {
                result.set(CompletableFuture.failedFuture(refused));
            }
        });
        starter.start();
        assertTrue(inStart.await(10, TimeUnit.SECONDS));
        orchestrator.close();
        closed.countDown();
        starter.join(TimeUnit.SECONDS.toMillis(10));

        CompletableFuture<SagaResult<Data>> future = result.get();
        try {
            future.get(10, TimeUnit.SECONDS);
        } catch (ExecutionException expected) { // the saga stopped with the orchestrator: resumed on recover()
        } catch (TimeoutException e) {
            throw new AssertionError("the result of a saga started while the orchestrator closed never completes", e);
        }
        assertThrows(ExecutionException.class, future::get);
    }

    @Test
    void closeWhileASynchronousActionRunsStartsNoFurtherStepAndRecoverGoesOnFromThere() throws Exception {
        List<String> effects = new java.util.concurrent.CopyOnWriteArrayList<>();
        CountDownLatch inAction = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        SagaDefinition<Data> definition = SagaDefinition.builder("sync-saga", Data.class)
                .step("reserve").action((d, ctx) -> {
                    effects.add(ctx.idempotencyKey());
                    if (inAction.getCount() > 0) {
                        inAction.countDown();
                        release.await(); // the process shuts down while this call is in the payment provider
                    }
                    return d;
                })
                .step("charge").action((d, ctx) -> {
                    effects.add(ctx.idempotencyKey());
                    return d;
                })
                .build();
        InMemorySagaStore store = new InMemorySagaStore();
        VirtualScheduler scheduler = new VirtualScheduler();
        SagaOrchestrator first = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition).build();
        CompletableFuture<CompletableFuture<SagaResult<Data>>> started = CompletableFuture.supplyAsync(
                () -> first.start(definition, "saga-1", null, new Data("a")).toCompletableFuture());
        assertTrue(inAction.await(10, TimeUnit.SECONDS));
        CompletableFuture<Void> closing = CompletableFuture.runAsync(first::close);
        awaitClosed(first);
        release.countDown(); // the action returns after close() began
        closing.get(10, TimeUnit.SECONDS);
        CompletableFuture<SagaResult<Data>> result = started.get(10, TimeUnit.SECONDS);

        assertEquals(List.of("saga-1/reserve"), effects, "no step started after close()");
        ExecutionException stopped = assertThrows(ExecutionException.class, () -> result.get(10, TimeUnit.SECONDS));
        assertTrue(stopped.getCause() instanceof io.streamsaga.saga.SagaException, stopped.toString());
        assertEquals(io.streamsaga.saga.SagaStatus.RUNNING, store.find("saga-1").orElseThrow().status());

        SagaOrchestrator second = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition).build();
        assertEquals(List.of("saga-1"), second.recover().resumed());
        assertTrue(second.result("saga-1").toCompletableFuture().get(10, TimeUnit.SECONDS).isCompleted());
        assertEquals("saga-1/charge", effects.get(effects.size() - 1));
        assertEquals(1, effects.stream().filter("saga-1/charge"::equals).count());
        second.close();
        scheduler.close();
    }

    @Test
    void closeWhileASynchronousActionRunsLeavesTheNextStepUnstartedInTheStore() throws Exception {
        List<Integer> chargeAttempts = new java.util.concurrent.CopyOnWriteArrayList<>();
        CountDownLatch inAction = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        SagaDefinition<Data> definition = SagaDefinition.builder("sync-saga", Data.class)
                .step("reserve").action((d, ctx) -> {
                    if (inAction.getCount() > 0) {
                        inAction.countDown();
                        release.await();
                    }
                    return d;
                })
                .step("charge").action((d, ctx) -> {
                    chargeAttempts.add(ctx.attempt());
                    return d;
                }).compensation((d, ctx) -> {
                })
                .build();
        InMemorySagaStore store = new InMemorySagaStore(); // takes batches: the straight path
        VirtualScheduler scheduler = new VirtualScheduler();
        SagaOrchestrator first = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition).build();
        CompletableFuture<CompletableFuture<SagaResult<Data>>> started = CompletableFuture.supplyAsync(
                () -> first.start(definition, "saga-1", null, new Data("a")).toCompletableFuture());
        assertTrue(inAction.await(10, TimeUnit.SECONDS));
        CompletableFuture<Void> closing = CompletableFuture.runAsync(first::close);
        awaitClosed(first);
        release.countDown();
        closing.get(10, TimeUnit.SECONDS);
        started.get(10, TimeUnit.SECONDS);

        io.streamsaga.saga.SagaInstance stored = store.find("saga-1").orElseThrow();
        assertEquals(io.streamsaga.saga.StepStatus.SUCCEEDED, stored.step("reserve").orElseThrow().status());
        assertEquals(io.streamsaga.saga.StepStatus.PENDING, stored.step("charge").orElseThrow().status(),
                "charge was never started, so the store must not say it was: " + stored);
        SagaOrchestrator second = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition).build();
        second.recover();
        assertTrue(second.result("saga-1").toCompletableFuture().get(10, TimeUnit.SECONDS).isCompleted());
        assertEquals(List.of(1), chargeAttempts, "charge runs its first attempt after recover()");
        second.close();
        scheduler.close();
    }

    @Test
    void closeWhileASynchronousActionRunsStillTellsTheListenersOfItsStoredOutcome() throws Exception {
        List<String> completed = new java.util.concurrent.CopyOnWriteArrayList<>();
        CountDownLatch inAction = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        SagaDefinition<Data> definition = SagaDefinition.builder("sync-saga", Data.class)
                .step("reserve").action((d, ctx) -> {
                    inAction.countDown();
                    release.await();
                    return d;
                })
                .step("charge").action((d, ctx) -> d)
                .build();
        InMemorySagaStore store = new InMemorySagaStore();
        VirtualScheduler scheduler = new VirtualScheduler();
        SagaOrchestrator first = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition)
                .listener(new io.streamsaga.saga.SagaListener() {
                    @Override
                    public void onStepCompleted(io.streamsaga.saga.SagaInstance instance, String step) {
                        completed.add(step);
                    }
                })
                .build();
        CompletableFuture<CompletableFuture<SagaResult<Data>>> started = CompletableFuture.supplyAsync(
                () -> first.start(definition, "saga-1", null, new Data("a")).toCompletableFuture());
        assertTrue(inAction.await(10, TimeUnit.SECONDS));
        CompletableFuture<Void> closing = CompletableFuture.runAsync(first::close);
        awaitClosed(first);
        release.countDown();
        closing.get(10, TimeUnit.SECONDS);
        started.get(10, TimeUnit.SECONDS);

        assertEquals(io.streamsaga.saga.StepStatus.SUCCEEDED,
                store.find("saga-1").orElseThrow().step("reserve").orElseThrow().status());
        assertEquals(List.of("reserve"), completed, "the stored step completion is reported, as it would be without close()");
        scheduler.close();
    }

    @Test
    void closeWhileASynchronousCompensationRunsLeavesTheNextCompensationUnstartedInTheStore() throws Exception {
        CountDownLatch inCompensation = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        SagaDefinition<Data> definition = SagaDefinition.builder("sync-saga", Data.class)
                .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> {
                })
                .step("hold").action((d, ctx) -> d).compensation((d, ctx) -> {
                    if (inCompensation.getCount() > 0) {
                        inCompensation.countDown();
                        release.await();
                    }
                })
                .step("charge").action((d, ctx) -> {
                    throw new IllegalStateException("card declined");
                }).retry(io.streamsaga.retry.RetryPolicy.NONE)
                .build();
        InMemorySagaStore store = new InMemorySagaStore();
        VirtualScheduler scheduler = new VirtualScheduler();
        SagaOrchestrator first = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(definition).build();
        CompletableFuture<CompletableFuture<SagaResult<Data>>> started = CompletableFuture.supplyAsync(
                () -> first.start(definition, "saga-1", null, new Data("a")).toCompletableFuture());
        assertTrue(inCompensation.await(10, TimeUnit.SECONDS));
        CompletableFuture<Void> closing = CompletableFuture.runAsync(first::close);
        awaitClosed(first);
        release.countDown();
        closing.get(10, TimeUnit.SECONDS);
        started.get(10, TimeUnit.SECONDS);

        io.streamsaga.saga.SagaInstance stored = store.find("saga-1").orElseThrow();
        assertEquals(io.streamsaga.saga.StepStatus.COMPENSATED, stored.step("hold").orElseThrow().status());
        assertEquals(io.streamsaga.saga.StepStatus.SUCCEEDED, stored.step("reserve").orElseThrow().status(),
                "reserve's compensation was never started, so the store must not say it was: " + stored);
        scheduler.close();
    }

    /** Waits until {@code close()} has begun: calls that need an open orchestrator are refused from then on. */
    private static void awaitClosed(SagaOrchestrator orchestrator) {
        while (true) {
            try {
                orchestrator.cancel("no-such-saga");
            } catch (io.streamsaga.saga.SagaException e) {
                if (e.getMessage().contains("the orchestrator is closed")) {
                    return;
                }
            }
            Thread.onSpinWait();
        }
    }
}
