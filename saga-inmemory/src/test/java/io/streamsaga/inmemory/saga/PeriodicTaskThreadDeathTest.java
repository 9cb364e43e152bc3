package io.streamsaga.inmemory.saga;

import io.streamsaga.CapturedLog;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.spi.NodeRegistry;
import io.streamsaga.saga.spi.RecoveryQuery;
import io.streamsaga.saga.SagaInstance;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * docs/architecture.md, "A periodic task whose thread is stopped": a periodic task of the orchestrator (the retention purge, the recovery sweep,
 * the heartbeat) whose run meets a {@link ThreadDeath} (its thread stopped) throws it on, says so at WARN and runs no
 * more, as the outbox relay's poll does: rescheduled, it would ignore the request to stop, the scheduler's thread
 * outliving it. The orchestrator's other tasks and calls go on.
 */
@SuppressWarnings("removal") // ThreadDeath: what Thread.stop throws in the stopped thread, on the JDKs that have it
class PeriodicTaskThreadDeathTest {
    private static final Duration EVERY = Duration.ofMinutes(1);

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemorySagaStore memory = new InMemorySagaStore();
    private SagaOrchestrator orchestrator;

    /** The in-memory store and registry; the first call of {@link #stopped} throws a ThreadDeath; all are counted. */
    private final class StoppingStore extends ForwardingSagaStore implements NodeRegistry {
        private final String stopped;
        private final AtomicInteger calls = new AtomicInteger();

        StoppingStore(String stopped) {
            super(memory);
            this.stopped = stopped;
        }

        private void call(String method) {
            if (method.equals(stopped) && calls.getAndIncrement() == 0) {
                throw new ThreadDeath();
            }
        }

        @Override
        public int deleteFinishedBefore(Instant cutoff) {
            call("deleteFinishedBefore");
            return delegate.deleteFinishedBefore(cutoff);
        }

        @Override
        public List<SagaInstance> findRecoveryCandidates(RecoveryQuery query) {
            call("findRecoveryCandidates");
            return delegate.findRecoveryCandidates(query);
        }

        @Override
        public void heartbeat(String nodeId, Instant at) {
            call("heartbeat");
            memory.heartbeat(nodeId, at);
        }

        @Override
        public Map<String, Instant> heartbeats() {
            return memory.heartbeats();
        }

        @Override
        public void remove(String nodeId) {
            memory.remove(nodeId);
        }

        @Override
        public boolean remove(String nodeId, Instant at) {
            return memory.remove(nodeId, at);
        }
    }

    @AfterEach
    void tearDown() {
        if (orchestrator != null) {
            orchestrator.close();
        }
    }

    /** Advances past the task's first run, which throws the ThreadDeath; returns the orchestrator's log meanwhile. */
    private String firstRunStopped() throws Throwable {
        return CapturedLog.ofThisThread(() -> assertThrows(ThreadDeath.class, () -> scheduler.advance(EVERY),
                "thrown on, as ThreadDeath's Javadoc asks"));
    }

    private static void assertSaysItStops(String log, String task) {
        assertTrue(log.contains("WARN io.streamsaga.time.Scheduler - saga orchestrator: its "
                + task + " stops for good, its thread stopped (java.lang.ThreadDeath)"), log);
    }

    @Test
    void theRetentionPurgeWhoseThreadIsStoppedSaysSoAndRunsNoMore() throws Throwable {
        StoppingStore store = new StoppingStore("deleteFinishedBefore");
        orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler).retention(Duration.ofHours(1))
                .purgeEvery(EVERY).build();

        assertSaysItStops(firstRunStopped(), "retention purge");
        scheduler.advance(EVERY.multipliedBy(10));

        assertEquals(1, store.calls.get(), "no purge ran after it");
        assertEquals(0, orchestrator.purgeFinished(), "the orchestrator's own calls go on");
    }

    @Test
    void theRecoverySweepWhoseThreadIsStoppedSaysSoAndRunsNoMore() throws Throwable {
        StoppingStore store = new StoppingStore("findRecoveryCandidates");
        orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler).recoverEvery(EVERY, Duration.ZERO)
                .build();

        assertSaysItStops(firstRunStopped(), "recovery sweep");
        scheduler.advance(EVERY.multipliedBy(10));

        assertEquals(1, store.calls.get(), "no sweep ran after it");
        orchestrator.recover();
        assertEquals(2, store.calls.get(), "the orchestrator's own calls go on");
    }

    @Test
    void theHeartbeatWhoseThreadIsStoppedSaysSoAndRunsNoMore() throws Throwable {
        StoppingStore store = new StoppingStore("heartbeat");
        store.calls.set(-1); // the heartbeat written at build is not stopped
        orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler).ownership("a", EVERY,
                EVERY.multipliedBy(3)).build();
        Instant written = memory.heartbeats().get("a");

        assertSaysItStops(firstRunStopped(), "heartbeat");
        scheduler.advance(EVERY.multipliedBy(10));

        assertEquals(written, memory.heartbeats().get("a"), "no heartbeat written after it");
        assertEquals(1, store.calls.get());
    }
}
