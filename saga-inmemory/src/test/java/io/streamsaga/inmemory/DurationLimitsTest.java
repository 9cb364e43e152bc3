package io.streamsaga.inmemory;

import io.streamsaga.ConfigurationException;
import io.streamsaga.aggregator.EventAggregator;
import io.streamsaga.aggregator.TimeoutPolicy;
import io.streamsaga.bus.EventBus;
import io.streamsaga.choreography.FlowDefinition;
import io.streamsaga.claimcheck.ClaimCheckInterceptor;
import io.streamsaga.idempotency.IdempotentConsumer;
import io.streamsaga.idempotency.IdempotentProducer;
import io.streamsaga.inmemory.patterns.InMemoryAggregationStore;
import io.streamsaga.inmemory.patterns.InMemoryDeduplicationStore;
import io.streamsaga.inmemory.patterns.InMemoryPayloadStore;
import io.streamsaga.inmemory.saga.InMemorySagaStore;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.spi.RedeliverLater;
import io.streamsaga.time.Scheduler;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A duration longer than {@link ConfigurationException#MAX_DURATION} ({@code ChronoUnit.FOREVER.getDuration()}, a
 * natural way to write "no limit") was accepted by the builders and failed where it was first used: a step
 * timeout made every saga fail with "scheduler failed: long overflow", a retry backoff made {@code start()} throw
 * an {@code ArithmeticException} halfway through a saga. Every duration the library schedules, waits or adds to
 * the time is now refused where it is configured, naming the setting; the schedulers take a longer delay as the
 * longest they can.
 */
class DurationLimitsTest {
    record Data(String id) {
    }

    private static final Duration FOREVER = ChronoUnit.FOREVER.getDuration();

    private final InMemoryTransport transport = InMemoryTransport.builder().build();
    private final EventBus bus = EventBus.builder(transport).build();

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    @Test
    void everyConfiguredDurationLongerThanTheMaximumIsRefusedWhereItIsGivenNamingTheSetting() {
        Map<String, Executable> settings = new LinkedHashMap<>();
        settings.put("step 'a': timeout", () -> SagaDefinition.builder("s", Data.class)
                .step("a").action((d, c) -> d).timeout(FOREVER));
        settings.put("step 'a': compensationTimeout", () -> SagaDefinition.builder("s", Data.class)
                .step("a").action((d, c) -> d).compensationTimeout(FOREVER));
        settings.put("initialBackoff", () -> RetryPolicy.builder().initialBackoff(FOREVER).maxBackoff(FOREVER).build());
        settings.put("maxBackoff", () -> RetryPolicy.builder().maxBackoff(FOREVER).build());
        settings.put("purgeInterval", () -> SagaOrchestrator.builder().store(new InMemorySagaStore()).purgeEvery(FOREVER).build());
        settings.put("the recovery period", () -> SagaOrchestrator.builder().recoverEvery(FOREVER, Duration.ZERO));
        settings.put("the heartbeat interval", () -> SagaOrchestrator.builder().ownership("n", FOREVER, FOREVER));
        settings.put("the lease timeout", () -> SagaOrchestrator.builder().ownership("n", Duration.ofSeconds(1), FOREVER));
        settings.put("aggregator timeout", () -> aggregator().timeout(FOREVER, TimeoutPolicy.RELEASE_PARTIAL).build());
        settings.put("keepClosed", () -> aggregator().keepClosed(FOREVER).build());
        settings.put("releaseLease", () -> aggregator().releaseLease(FOREVER).build());
        settings.put("lease", () -> IdempotentConsumer.builder(bus, InMemoryDeduplicationStore.builder().build()).lease(FOREVER).build());
        settings.put("lease ", () -> IdempotentProducer.builder(bus, InMemoryDeduplicationStore.builder().build()).lease(FOREVER));
        settings.put("flow 'f': deadline", () -> FlowDefinition.builder("f").event("e", "A").succeedsOn("e").deadline(FOREVER).build());
        settings.put("sweep interval", () -> ClaimCheckInterceptor.builder(new InMemoryPayloadStore(), transport).sweepInterval(FOREVER).build());
        settings.forEach((name, setting) -> {
            ConfigurationException refused = assertThrows(ConfigurationException.class, setting, name);
            assertEquals(name.strip() + " must be at most PT2562047H47M16.854775807S (Long.MAX_VALUE nanoseconds, about"
                    + " 292 years), but was " + FOREVER, refused.getMessage());
        });
    }

    @Test
    void aDeduplicationWindowLongerThanTheMaximumIsTakenAsTheMaximumSoItCoversATransportKeepingEveryRecord() {
        // The window is an age (a done key older than it is forgotten), and must be at least the transport's replay
        // horizon, which a transport keeping every record reports as MAX_DURATION: window(FOREVER) was refused.
        assertEquals(ConfigurationException.MAX_DURATION, InMemoryDeduplicationStore.builder().window(FOREVER).build().window());
        for (Duration refused : new Duration[] {Duration.ZERO, Duration.ofSeconds(-1), null}) {
            assertTrue(assertThrows(ConfigurationException.class, () -> InMemoryDeduplicationStore.builder().window(refused))
                    .getMessage().startsWith("window must be positive"), String.valueOf(refused));
        }
    }

    @Test
    void anAgeThresholdLongerThanTheMaximumIsTakenAsTheMaximumByEveryQueryAndRecovery() {
        // Ages compared with the clock are thresholds, not delays: recover(FOREVER) was taken (it saturated) while
        // findUnfinishedLongerThan(FOREVER) and recoverEvery(period, FOREVER) were refused as configured delays.
        // Each now takes a longer age as MAX_DURATION: nothing is that old, nothing is adopted or found.
        VirtualScheduler scheduler = new VirtualScheduler();
        InMemorySagaStore store = new InMemorySagaStore();
        SagaDefinition<Data> waiting = SagaDefinition.builder("s", Data.class)
                .step("a").action((d, c) -> {
                    throw new IllegalStateException("busy");
                }).compensation((d, c) -> { })
                .retry(RetryPolicy.builder().maxAttempts(2).initialBackoff(Duration.ofHours(1))
                        .maxBackoff(Duration.ofHours(1)).jitter(0).build())
                .build();
        SagaOrchestrator first = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(waiting).build();
        first.start(waiting, new Data("x"));
        scheduler.advance(Duration.ofMinutes(30));
        SagaOrchestrator other = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(waiting)
                .recoverEvery(Duration.ofMinutes(1), FOREVER).build();

        assertEquals(List.of(), other.findUnfinishedLongerThan(FOREVER));
        assertEquals(List.of(), other.findUnfinishedLongerThan(ConfigurationException.MAX_DURATION));
        assertEquals(1, other.findUnfinishedLongerThan(Duration.ofMinutes(10)).size(), "the saga waits for its retry");
        assertEquals(List.of(), other.recover(FOREVER).resumed());
        scheduler.advance(Duration.ofMinutes(5)); // its sweeps run, with an idleFor nothing reaches
        assertEquals(List.of(), other.recover(ConfigurationException.MAX_DURATION).resumed());
        assertEquals(1, other.findUnfinishedLongerThan(Duration.ZERO).size(), "nobody adopted it");
        for (Executable refused : List.<Executable>of(() -> other.findUnfinishedLongerThan(Duration.ofSeconds(-1)),
                () -> other.recover(Duration.ofSeconds(-1)),
                () -> SagaOrchestrator.builder().recoverEvery(Duration.ofMinutes(1), Duration.ofSeconds(-1)))) {
            assertTrue(assertThrows(ConfigurationException.class, refused).getMessage().contains("must be zero or positive"));
        }
        other.close();
        first.close();
    }

    @Test
    void aSagaRetentionLongerThanTheMaximumIsTakenAsTheMaximumSoPurgeFinishedKeepsEveryFinishedSaga() {
        // A saga retention is an age threshold (purgeFinished deletes finished sagas older than it), yet
        // retention(FOREVER), a natural "keep them all", was refused as if it were a delay, where every other age
        // threshold takes a longer age as MAX_DURATION.
        VirtualScheduler scheduler = new VirtualScheduler();
        InMemorySagaStore store = new InMemorySagaStore();
        SagaDefinition<Data> quick = SagaDefinition.builder("s", Data.class).step("a").action((d, c) -> d).build();
        SagaOrchestrator keepingAll = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(quick)
                .retention(FOREVER).purgeEvery(Duration.ofDays(1)).build();
        keepingAll.start(quick, new Data("x"));
        scheduler.advance(Duration.ofDays(365 * 10));

        assertEquals(0, keepingAll.purgeFinished());
        assertEquals(1, keepingAll.findByStatus(io.streamsaga.saga.SagaStatus.COMPLETED).size(), "kept");
        SagaOrchestrator zero = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(quick)
                .retention(Duration.ZERO).build();
        assertEquals(1, zero.purgeFinished(), "a zero retention deletes every finished saga");
        assertTrue(assertThrows(ConfigurationException.class, () -> SagaOrchestrator.builder()
                .store(new InMemorySagaStore()).retention(Duration.ofSeconds(-1)).build()).getMessage()
                .contains("retention must be zero or positive"));
        zero.close();
        keepingAll.close();
    }

    @Test
    void aTransportRetentionLongerThanTheMaximumIsTakenAsTheMaximumSoEveryRecordIsKept() {
        // The in-memory transport's retention is an age threshold too (a record older than it by the transport's
        // clock is dropped), yet retention(FOREVER), a natural "keep them all", was refused as if it were a delay.
        VirtualScheduler scheduler = new VirtualScheduler();
        try (InMemoryTransport keepingAll = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL)
                .clock(scheduler.clock()).retention(FOREVER).build()) {
            EventBus keepingBus = EventBus.builder(keepingAll).scheduler(scheduler)
                    .types(io.streamsaga.codec.TypeRegistry.builder().register("data", 1, Data.class).build()).build();
            keepingBus.publish("t", "k", new Data("old")).toCompletableFuture().join();
            scheduler.advance(Duration.ofDays(365 * 10));
            keepingBus.publish("t", "k", new Data("new")).toCompletableFuture().join();

            assertEquals(2, keepingAll.messages("t").size(), "the ten-year-old record is kept");
            assertEquals(java.util.Optional.of(ConfigurationException.MAX_DURATION), keepingAll.retentionHorizon());
            keepingBus.close();
        }
        for (Duration refused : new Duration[] {Duration.ZERO, Duration.ofSeconds(-1), null}) {
            assertTrue(assertThrows(ConfigurationException.class, () -> InMemoryTransport.builder().retention(refused))
                    .getMessage().startsWith("retention must be positive"), String.valueOf(refused));
        }
    }

    @Test
    void aClaimCheckExpiryLongerThanTheMaximumIsTakenAsTheMaximumSoItCoversATransportKeepingEveryRecord() {
        // The expiry is an age threshold (purgeExpired deletes payloads stored longer ago than it) and must cover the
        // transport's replay horizon, which a transport keeping every record reports as MAX_DURATION; yet
        // expiry(FOREVER), the natural "keep them all" beside retention(FOREVER), was refused as if it were a delay.
        VirtualScheduler scheduler = new VirtualScheduler();
        InMemoryPayloadStore store = new InMemoryPayloadStore();
        try (InMemoryTransport keepingAll = InMemoryTransport.builder().retention(FOREVER).build();
             ClaimCheckInterceptor claimCheck = ClaimCheckInterceptor.builder(store, keepingAll).scheduler(scheduler)
                     .expiry(FOREVER).build()) {
            assertEquals(ConfigurationException.MAX_DURATION, claimCheck.config().expiry());
            assertEquals(0, claimCheck.purgeExpired(), "nothing is that old");
        }
        for (Duration refused : new Duration[] {Duration.ZERO, Duration.ofSeconds(-1), null}) {
            assertTrue(assertThrows(ConfigurationException.class, () -> ClaimCheckInterceptor.builder(store, transport)
                    .expiry(refused).build()).getMessage().startsWith("claim-check expiry must be positive"),
                    String.valueOf(refused));
        }
    }

    @Test
    void theMaximumItselfIsAccepted() {
        Duration max = ConfigurationException.MAX_DURATION;
        assertAll(
                () -> SagaDefinition.builder("s", Data.class).step("a")
                        .asyncAction((d, c) -> java.util.concurrent.CompletableFuture.completedFuture(d)).timeout(max).build(),
                () -> RetryPolicy.builder().initialBackoff(max).maxBackoff(max).build(),
                () -> aggregator().timeout(max, TimeoutPolicy.RELEASE_PARTIAL).keepClosed(max).releaseLease(max).build(),
                () -> InMemoryTransport.builder().retention(max).build().close());
    }

    @Test
    void aRetryAfterTheLongestBackoffIsScheduledThatFarAheadInsteadOfFailingTheStart() {
        VirtualScheduler scheduler = new VirtualScheduler();
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(new InMemorySagaStore()).scheduler(scheduler).build();
        int[] calls = {0};
        SagaDefinition<Data> definition = SagaDefinition.builder("s", Data.class)
                .step("a").action((d, c) -> {
                    if (calls[0]++ == 0) {
                        throw new IllegalStateException("busy");
                    }
                    return d;
                }).compensation((d, c) -> { })
                .retry(RetryPolicy.builder().initialBackoff(ConfigurationException.MAX_DURATION)
                        .maxBackoff(ConfigurationException.MAX_DURATION).jitter(0).build())
                .build();
        Instant started = scheduler.now();
        var result = orchestrator.start(definition, new Data("x")).toCompletableFuture();

        assertFalse(result.isDone(), "the retry waits");
        assertEquals(1, scheduler.pendingTasks());
        assertTrue(scheduler.runNext(Instant.MAX));
        assertEquals(started.plus(ConfigurationException.MAX_DURATION), scheduler.now());
        assertTrue(result.isDone());
        assertEquals(2, calls[0]);
        orchestrator.close();
    }

    @Test
    void theSchedulersTakeALongerDelayAsTheLongestTheyCan() throws Exception {
        VirtualScheduler virtual = new VirtualScheduler();
        Instant start = virtual.now();
        assertEquals(start.plus(ConfigurationException.MAX_DURATION), virtual.after(FOREVER));
        assertEquals(start, virtual.after(Duration.ofSeconds(-1)));
        virtual.schedule(FOREVER, () -> { }); // threw DateTimeException
        assertTrue(virtual.runNext(Instant.MAX));
        assertEquals(start.plus(ConfigurationException.MAX_DURATION), virtual.now());
        virtual.advance(FOREVER);
        assertEquals(start.plus(ConfigurationException.MAX_DURATION.multipliedBy(2)), virtual.now());

        try (Scheduler system = Scheduler.system()) {
            CountDownLatch ran = new CountDownLatch(1);
            Scheduler.Cancellable never = system.schedule(FOREVER, ran::countDown); // threw ArithmeticException
            system.schedule(Duration.ZERO, ran::countDown);
            assertTrue(ran.await(30, TimeUnit.SECONDS));
            never.cancel();
        }
        assertEquals(ConfigurationException.MAX_DURATION, new RedeliverLater(FOREVER, null).delay());
    }

    private EventAggregator.Builder aggregator() {
        return EventAggregator.builder(bus, new InMemoryAggregationStore()).name("a").correlateByField("id")
                .completeOnSize(2).onRelease(aggregate -> { });
    }
}
