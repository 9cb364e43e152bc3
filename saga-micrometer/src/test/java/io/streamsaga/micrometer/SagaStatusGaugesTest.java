package io.streamsaga.micrometer;

import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.config.MeterFilter;
import io.micrometer.core.instrument.search.Search;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.streamsaga.CapturedLog;
import io.streamsaga.ConfigurationException;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.inmemory.saga.InMemorySagaStore;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.StepState;
import io.streamsaga.saga.TransitionType;
import io.streamsaga.saga.spi.SagaStore;
import io.streamsaga.saga.spi.SimulatedProcessCrash;
import io.streamsaga.time.Scheduler;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.time.Duration;
import java.time.Instant;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link SagaStatusGauges}: gauges of the sagas by status, read from counts a periodic task makes on a virtual
 * scheduler, never from the store at a scrape; a failing count keeps the last counts, a stopped thread ends the counts
 * (docs/architecture.md, "A periodic task whose thread is stopped"), and close() removes the gauges.
 */
class SagaStatusGaugesTest {
    record Order(String id) {
    }

    private static final Duration EVERY = Duration.ofMinutes(1);

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemorySagaStore sagas = new InMemorySagaStore();
    /** What the next counts throw, null for none. */
    private final AtomicReference<Supplier<Throwable>> failure = new AtomicReference<>();
    private final AtomicInteger countsAsked = new AtomicInteger();
    /** What each count does before it counts, null for nothing. */
    private final AtomicReference<Runnable> duringCount = new AtomicReference<>();
    /** For each count that ended: whether close() had returned by then. */
    private final List<Boolean> countEndedAfterClose = new CopyOnWriteArrayList<>();
    private final AtomicBoolean closeReturned = new AtomicBoolean();
    private final SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(countingStore())
            .scheduler(scheduler)
            .register(SagaDefinition.builder("order-saga", Order.class).step("reserve").action((d, c) -> d).build())
            .build();
    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);

    @AfterEach
    void close() {
        orchestrator.close();
    }

    /**
     * {@link #sagas}, whose counts are counted, throw what {@link #failure} says, run {@link #duringCount} and record
     * whether close() had returned when they ended.
     */
    private SagaStore countingStore() {
        return (SagaStore) Proxy.newProxyInstance(SagaStore.class.getClassLoader(), new Class<?>[]{SagaStore.class},
                (proxy, method, args) -> {
                    if (method.getName().equals("countBySagaAndStatus")) {
                        countsAsked.incrementAndGet();
                        Supplier<Throwable> thrown = failure.get();
                        if (thrown != null) {
                            throw thrown.get();
                        }
                        Runnable during = duringCount.get();
                        if (during != null) {
                            during.run();
                        }
                    }
                    try {
                        return method.invoke(sagas, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    } finally {
                        if (method.getName().equals("countBySagaAndStatus")) {
                            countEndedAfterClose.add(closeReturned.get());
                        }
                    }
                });
    }

    private void stored(String sagaId, SagaStatus status) {
        stored("order-saga", sagaId, status);
    }

    private void stored(String saga, String sagaId, SagaStatus status) {
        Instant now = scheduler.now();
        SagaInstance instance = new SagaInstance(sagaId, saga, 1, null, "order", new Order(sagaId), status,
                List.of(StepState.pending("reserve")), null, null, now, now, 1);
        sagas.insert(instance, new SagaTransition(sagaId, 1, now, TransitionType.SAGA_STARTED, null, 0, null));
    }

    private void compensated(String sagaId) {
        SagaInstance stored = sagas.find(sagaId).orElseThrow();
        Instant now = scheduler.now();
        sagas.update(new SagaInstance(sagaId, stored.sagaName(), 1, null, "order", stored.data(), SagaStatus.COMPENSATED,
                stored.steps(), null, null, stored.createdAt(), now, 2),
                new SagaTransition(sagaId, 2, now, TransitionType.SAGA_COMPENSATED, null, 0, null));
    }

    /** The scraped value of order-saga's sagas in {@code status}, null for no series. */
    private String scraped(SagaStatus status) {
        return scraped("order-saga", status);
    }

    private String scraped(String saga, SagaStatus status) {
        String prefix = "streamsaga_sagas{saga=\"" + saga + "\",status=\"" + status.name() + "\"} ";
        return registry.scrape().lines().filter(line -> line.startsWith(prefix)).map(line -> line.substring(prefix.length()))
                .findFirst().orElse(null);
    }

    @Test
    void aScrapeReadsTheLastPeriodicCountAndNeverTheStore() {
        stored("running-1", SagaStatus.RUNNING);
        stored("running-2", SagaStatus.RUNNING);
        stored("needs-attention", SagaStatus.FAILED_NEEDS_ATTENTION);
        stored("done", SagaStatus.COMPLETED);

        SagaStatusGauges gauges = SagaStatusGauges.builder(orchestrator, registry, scheduler)
                .interval(Duration.ofMinutes(1)).build();

        assertEquals(SagaStatusGauges.DEFAULT_STATUSES, gauges.statuses());
        assertNull(scraped(SagaStatus.RUNNING), "no count yet, no saga name known: the first is queued, not made at build");
        scheduler.runDueTasks();
        assertEquals(1, countsAsked.get(), "the first count at once");
        assertEquals("2.0", scraped(SagaStatus.RUNNING));
        assertEquals("0.0", scraped(SagaStatus.COMPENSATING));
        assertEquals("1.0", scraped(SagaStatus.FAILED_NEEDS_ATTENTION));
        assertNull(scraped(SagaStatus.COMPLETED), "a status not asked for has no gauge");

        stored("compensating", SagaStatus.COMPENSATING);
        for (int i = 0; i < 3; i++) {
            assertEquals("0.0", scraped(SagaStatus.COMPENSATING), "a scrape reads the last count");
        }
        assertEquals(1, countsAsked.get(), "the store is not asked at a scrape");
        scheduler.advance(EVERY.minusNanos(1));
        assertEquals(1, countsAsked.get());
        scheduler.advance(Duration.ofNanos(1));
        assertEquals(2, countsAsked.get(), "the next count one interval after");
        assertEquals("1.0", scraped(SagaStatus.COMPENSATING));
        gauges.close();
    }

    @Test
    void eachSagaNameHasASeriesPerStatusOneAppearingLaterGetsItsAtTheNextCountAndOneWithNoSagaLeftReadsZero() {
        stored("order-saga", "order-1", SagaStatus.RUNNING);
        stored("order-saga", "order-2", SagaStatus.FAILED_NEEDS_ATTENTION);
        stored("refund-saga", "refund-1", SagaStatus.COMPENSATING);
        stored("archive-saga", "archive-1", SagaStatus.COMPLETED);
        SagaStatusGauges gauges = SagaStatusGauges.builder(orchestrator, registry, scheduler).interval(EVERY).build();

        scheduler.runDueTasks();

        assertEquals("1.0", scraped("order-saga", SagaStatus.RUNNING));
        assertEquals("0.0", scraped("order-saga", SagaStatus.COMPENSATING));
        assertEquals("1.0", scraped("order-saga", SagaStatus.FAILED_NEEDS_ATTENTION));
        assertEquals("0.0", scraped("refund-saga", SagaStatus.RUNNING));
        assertEquals("1.0", scraped("refund-saga", SagaStatus.COMPENSATING));
        assertEquals("0.0", scraped("refund-saga", SagaStatus.FAILED_NEEDS_ATTENTION));
        assertNull(scraped("archive-saga", SagaStatus.RUNNING), "no saga of it in a status counted: no series");
        assertEquals(6, registry.find(SagaStatusGauges.NAME).gauges().size(), "a series per saga name and status");

        stored("payment-saga", "payment-1", SagaStatus.FAILED_NEEDS_ATTENTION);
        compensated("refund-1");
        assertNull(scraped("payment-saga", SagaStatus.FAILED_NEEDS_ATTENTION), "until the next count");
        scheduler.advance(EVERY);

        assertEquals("1.0", scraped("payment-saga", SagaStatus.FAILED_NEEDS_ATTENTION), "a name stored later");
        assertEquals("0.0", scraped("payment-saga", SagaStatus.RUNNING));
        assertEquals("0.0", scraped("refund-saga", SagaStatus.COMPENSATING), "its series stays, at 0");
        assertEquals(9, registry.find(SagaStatusGauges.NAME).gauges().size());
        gauges.close();
        assertEquals(List.of(), registry.find(SagaStatusGauges.NAME).gauges().stream().toList());
    }

    @Test
    void aGaugeTheRegistryRefusesOnACountIsLoggedAtWarnOnceAndLeftOutAndEveryOtherSeriesIsRegistered() throws Throwable {
        registry.config().meterFilter(new MeterFilter() {
            @Override
            public Meter.Id map(Meter.Id id) {
                if ("refused-saga".equals(id.getTag("saga")) && SagaStatus.COMPENSATING.name().equals(id.getTag("status"))) {
                    throw new IllegalArgumentException("refused by the registry (test)");
                }
                return id;
            }
        });
        stored("refused-saga", "refused-1", SagaStatus.RUNNING);
        for (int i = 0; i < 10; i++) {
            stored("saga-" + i, "s-" + i, SagaStatus.COMPENSATING);
        }
        SagaStatusGauges gauges = SagaStatusGauges.builder(orchestrator, registry, scheduler).interval(EVERY).build();

        String log = CapturedLog.ofThisThread(() -> {
            scheduler.runDueTasks();
            scheduler.advance(EVERY.multipliedBy(3));
        });

        assertEquals(4, countsAsked.get());
        assertEquals(1, log.lines().filter(line -> line.contains("refused by the registry (test)")).count(), log);
        assertTrue(log.contains("WARN io.streamsaga.micrometer.SagaStatusGauges - saga status gauges: the registry"
                + " refused the gauge streamsaga.sagas of saga refused-saga in status COMPENSATING, left out:"
                + " java.lang.IllegalArgumentException: refused by the registry (test)"), log);
        assertEquals("1.0", scraped("refused-saga", SagaStatus.RUNNING), "its other statuses registered");
        assertEquals("0.0", scraped("refused-saga", SagaStatus.FAILED_NEEDS_ATTENTION));
        assertNull(scraped("refused-saga", SagaStatus.COMPENSATING));
        for (int i = 0; i < 10; i++) {
            assertEquals("1.0", scraped("saga-" + i, SagaStatus.COMPENSATING), "saga-" + i);
        }
        assertEquals(11 * 3 - 1, registry.find(SagaStatusGauges.NAME).gauges().size());
        gauges.close();
        assertEquals(List.of(), registry.find(SagaStatusGauges.NAME).gauges().stream().toList());
    }

    @Test
    void aFailingCountIsLoggedAtWarnAndTheGaugesKeepTheLastCountsUntilTheNextInterval() throws Throwable {
        stored("needs-attention", SagaStatus.FAILED_NEEDS_ATTENTION);
        SagaStatusGauges gauges = SagaStatusGauges.builder(orchestrator, registry, scheduler).interval(EVERY)
                .statuses(EnumSet.of(SagaStatus.FAILED_NEEDS_ATTENTION)).build();
        scheduler.runDueTasks();
        stored("needs-attention-2", SagaStatus.FAILED_NEEDS_ATTENTION);
        failure.set(() -> new IllegalStateException("the database is down (test)"));

        String log = CapturedLog.ofThisThread(() -> scheduler.advance(EVERY));

        assertTrue(log.contains("WARN io.streamsaga.micrometer.SagaStatusGauges - saga status gauges: counting the"
                + " sagas failed, the gauges keep the last counts until the next interval:"
                + " java.lang.IllegalStateException: the database is down (test)"), log);
        assertEquals("1.0", scraped(SagaStatus.FAILED_NEEDS_ATTENTION), "the last count kept");
        failure.set(null);
        scheduler.advance(EVERY);
        assertEquals("2.0", scraped(SagaStatus.FAILED_NEEDS_ATTENTION), "counted again at the next interval");
        assertEquals(3, countsAsked.get());
        gauges.close();
    }

    private double lastCounted() {
        return registry.get(SagaStatusGauges.COUNTED_NAME).gauge().value();
    }

    @Test
    void theTimeOfTheLastSuccessfulCountIsAGaugeSoADashboardTellsAStaleCountFromAFreshOne() throws Throwable {
        SagaStatusGauges gauges = SagaStatusGauges.builder(orchestrator, registry, scheduler).interval(EVERY).build();
        assertEquals(Double.NaN, lastCounted(), "no count yet");
        scheduler.runDueTasks();
        double first = scheduler.now().toEpochMilli() / 1000.0;
        assertEquals(first, lastCounted(), "the first count's time, in epoch seconds");
        assertTrue(registry.scrape().lines().anyMatch(line -> line.startsWith("streamsaga_sagas_counted_timestamp_seconds ")),
                registry.scrape());

        failure.set(() -> new IllegalStateException("the database is down (test)"));
        CapturedLog.ofThisThread(() -> scheduler.advance(EVERY.multipliedBy(3)));
        assertEquals(4, countsAsked.get());
        assertEquals(first, lastCounted(), "the failing counts leave the time of the last one that succeeded");

        failure.set(null);
        scheduler.advance(EVERY);
        assertEquals(first + EVERY.multipliedBy(4).toSeconds(), lastCounted(), "counted again");
        gauges.close();
        assertNull(registry.find(SagaStatusGauges.COUNTED_NAME).gauge(), "removed on close");
    }

    @Test
    @SuppressWarnings("removal") // ThreadDeath: what Thread.stop throws in the stopped thread, on the JDKs that have it
    void aCountWhoseThreadIsStoppedSaysSoAndIsTheLastButAnotherErrorIsFollowedByTheNextCount() throws Throwable {
        SagaStatusGauges gauges = SagaStatusGauges.builder(orchestrator, registry, scheduler).interval(EVERY).build();
        AssertionError bug = new AssertionError("a bug in the store (test)");
        failure.set(() -> bug);
        assertSame(bug, assertThrows(AssertionError.class, scheduler::runDueTasks), "thrown on to the scheduler");
        failure.set(ThreadDeath::new);

        String log = CapturedLog.ofThisThread(() -> assertThrows(ThreadDeath.class, () -> scheduler.advance(EVERY),
                "thrown on, as ThreadDeath's Javadoc asks"));

        assertTrue(log.contains("WARN io.streamsaga.time.Scheduler - saga status gauges: the periodic count"
                + " stops for good, its thread stopped (java.lang.ThreadDeath); close and build its component again to"
                + " run it"), log);
        failure.set(null);
        scheduler.advance(EVERY.multipliedBy(10));
        assertEquals(2, countsAsked.get(), "no count after it");
        gauges.close();
    }

    @Test
    void aCountMeetingATestsSimulatedProcessCrashIsTheLastAndDoesNotThrowItIntoWhatAdvancedTheClock() throws Throwable {
        int pending = scheduler.pendingTasks();
        SagaStatusGauges gauges = SagaStatusGauges.builder(orchestrator, registry, scheduler).interval(EVERY).build();
        scheduler.runDueTasks();
        failure.set(() -> new SimulatedProcessCrash("the process dies here (test)") { });

        String log = CapturedLog.ofThisThread(() -> scheduler.advance(EVERY.multipliedBy(10)));

        assertEquals("", log, "a crash the test asked for is no warning nor error");
        assertEquals(2, countsAsked.get(), "a dead process counts no more");
        assertEquals(pending, scheduler.pendingTasks(), "no count left scheduled");
        gauges.close();
    }

    @Test
    void closeRemovesTheGaugesAndLeavesNoCountScheduledAndOneBindingToARegistryAtATime() {
        int pending = scheduler.pendingTasks();
        SagaStatusGauges gauges = SagaStatusGauges.builder(orchestrator, registry, scheduler).interval(EVERY).build();
        scheduler.runDueTasks();
        ConfigurationException twice = assertThrows(ConfigurationException.class,
                () -> SagaStatusGauges.builder(orchestrator, registry, scheduler).build());
        assertEquals("the registry has a gauge streamsaga.sagas.counted.timestamp already: bind one SagaStatusGauges to"
                + " a registry", twice.getMessage(), "refused before the first binding's count found a saga name");
        stored("running-1", SagaStatus.RUNNING);
        scheduler.advance(EVERY);
        assertEquals("1.0", scraped(SagaStatus.RUNNING));
        ConfigurationException otherStatuses = assertThrows(ConfigurationException.class,
                () -> SagaStatusGauges.builder(orchestrator, registry, scheduler)
                        .statuses(EnumSet.of(SagaStatus.COMPLETED)).build());
        assertEquals("the registry has gauges streamsaga.sagas already: bind one SagaStatusGauges to a registry",
                otherStatuses.getMessage(), "whatever the statuses");

        gauges.close();

        assertEquals(List.of(), registry.find(SagaStatusGauges.NAME).gauges().stream().toList());
        assertNull(registry.find(SagaStatusGauges.COUNTED_NAME).gauge());
        assertEquals(pending, scheduler.pendingTasks(), "no count left scheduled");
        scheduler.advance(EVERY.multipliedBy(3));
        assertEquals(2, countsAsked.get());
        SagaStatusGauges.builder(orchestrator, registry, scheduler).build().close(); // bound again once closed
    }

    @Test
    void twoBuildsOnOneRegistryAtOnceBindExactlyOneAndTheOtherIsRefused() throws Exception {
        List<Thread> builders = new CopyOnWriteArrayList<>();
        AtomicReference<Thread> held = new AtomicReference<>();
        SimpleMeterRegistry shared = new SimpleMeterRegistry() {
            @Override
            public Search find(String name) {
                Search search = super.find(name);
                if (!name.equals(SagaStatusGauges.COUNTED_NAME) || !held.compareAndSet(null, Thread.currentThread())) {
                    return search;
                }
                // The first build's last check, answered as the registry is now; then held until the other build has
                // bound its gauges or waits to check (blocked): without one lock over check and registration, both
                // checks see no gauge and both builds bind, the second handed the first one's gauges.
                boolean none = search.gauge() == null;
                Thread other = builders.stream().filter(t -> t != Thread.currentThread()).findFirst().orElseThrow();
                while (other.isAlive() && other.getState() != Thread.State.BLOCKED) {
                    Thread.onSpinWait();
                }
                return none ? Search.in(new SimpleMeterRegistry()).name(name) : search;
            }
        };
        CountDownLatch go = new CountDownLatch(1);
        List<SagaStatusGauges> bound = new CopyOnWriteArrayList<>();
        List<Throwable> refused = new CopyOnWriteArrayList<>();
        for (int i = 0; i < 2; i++) {
            builders.add(new Thread(() -> {
                try {
                    go.await();
                    bound.add(SagaStatusGauges.builder(orchestrator, shared, scheduler).build());
                } catch (Throwable e) {
                    refused.add(e);
                }
            }, "gauges-build-" + i));
        }
        builders.forEach(Thread::start);
        go.countDown();
        for (Thread builder : builders) {
            builder.join();
        }
        bound.forEach(SagaStatusGauges::close);

        assertEquals(1, bound.size(), "bound: " + bound + ", refused: " + refused);
        assertEquals(1, refused.size(), refused.toString());
        assertInstanceOf(ConfigurationException.class, refused.get(0));
    }

    @Test
    void closeWaitsForACountRunningOnAnotherThread() throws Exception {
        stored("running-1", SagaStatus.RUNNING); // a saga name the count finds, whose gauges close() leaves none of
        Scheduler system = Scheduler.system();
        CountDownLatch entered = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        duringCount.set(() -> {
            entered.countDown();
            try {
                release.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        try {
            SagaStatusGauges gauges = SagaStatusGauges.builder(orchestrator, registry, system).build();
            entered.await();
            Thread closer = new Thread(() -> {
                gauges.close();
                closeReturned.set(true);
            });
            closer.start();
            await().until(() -> closer.getState() == Thread.State.TIMED_WAITING
                    || closer.getState() == Thread.State.WAITING || closer.getState() == Thread.State.TERMINATED);
            release.countDown();
            closer.join();

            assertEquals(List.of(false), countEndedAfterClose, "the count ended before close() returned");
            assertEquals(List.of(), registry.find(SagaStatusGauges.NAME).gauges().stream().toList());
        } finally {
            release.countDown();
            system.close();
        }
    }

    @Test
    void aCloseFromTheCountItselfReturnsWithoutWaitingForItAndNoCountFollows() throws Throwable {
        stored("running-1", SagaStatus.RUNNING); // found by the count that closes: it registers no gauge after close()
        AtomicReference<SagaStatusGauges> self = new AtomicReference<>();
        duringCount.set(() -> { // on the count's own thread: it must not wait for itself
            self.get().close();
            closeReturned.set(true);
        });
        self.set(SagaStatusGauges.builder(orchestrator, registry, scheduler).interval(EVERY).build());

        String log = CapturedLog.ofThisThread(() -> {
            scheduler.runDueTasks();
            scheduler.advance(EVERY.multipliedBy(3));
        });

        assertEquals(List.of(true), countEndedAfterClose, "the count ended, after its close() returned");
        assertEquals("", log, "close() did not wait for the count that called it");
        assertEquals(List.of(), registry.find(SagaStatusGauges.NAME).gauges().stream().toList());
        assertEquals(0, scheduler.pendingTasks(), "no count left scheduled");
        SagaStatusGauges.builder(orchestrator, registry, scheduler).build().close(); // the registry takes the next one
    }

    @Test
    void aBuildOnAClosedSchedulerFailsAndLeavesNoGaugeSoTheRegistryTakesTheNextBinding() {
        Scheduler closed = Scheduler.system();
        closed.close();

        assertThrows(RejectedExecutionException.class,
                () -> SagaStatusGauges.builder(orchestrator, registry, closed).build());

        assertEquals(List.of(), registry.find(SagaStatusGauges.NAME).gauges().stream().toList(), "no gauge left");
        assertNull(registry.find(SagaStatusGauges.COUNTED_NAME).gauge(), "no gauge left");
        SagaStatusGauges gauges = SagaStatusGauges.builder(orchestrator, registry, scheduler).build();
        scheduler.runDueTasks();
        assertEquals(scheduler.now().toEpochMilli() / 1000.0, lastCounted(), "counted");
        gauges.close();
    }

    @Test
    void noStatusANullStatusOrAnIntervalThatIsNotPositiveIsRefusedAtBuild() {
        SimpleMeterRegistry simple = new SimpleMeterRegistry();
        Map<String, SagaStatusGauges.Builder> refused = Map.of(
                "statuses must hold at least one status and no null, but was []",
                SagaStatusGauges.builder(orchestrator, simple, scheduler).statuses(Set.of()),
                "statuses must hold at least one status and no null, but was null",
                SagaStatusGauges.builder(orchestrator, simple, scheduler).statuses(null),
                "interval must be positive, but was PT0S",
                SagaStatusGauges.builder(orchestrator, simple, scheduler).interval(Duration.ZERO),
                "interval must be positive, but was null",
                SagaStatusGauges.builder(orchestrator, simple, scheduler).interval(null));
        refused.forEach((message, builder) -> assertEquals(message,
                assertThrows(ConfigurationException.class, builder::build).getMessage()));
        assertEquals(List.of(), simple.getMeters(), "nothing registered");
        assertEquals(0, scheduler.pendingTasks(), "nothing scheduled");
    }
}
