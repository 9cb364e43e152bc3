package io.streamsaga.inmemory.saga;

import io.streamsaga.CapturedLog;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.TransitionType;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.time.Instant;
import java.util.EnumSet;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * docs/sagas.md, "Queries and retention": the orchestrator's scheduled retention purge deletes in batches of 500, each
 * a task of its own on the orchestrator's scheduler, so that the timers that scheduler also fires (steps' timeouts and
 * retries) run between batches rather than after a purge of the whole backlog; close() between two batches leaves none
 * queued.
 */
class RetentionPurgeBatchesTest {
    private static final Duration EVERY = Duration.ofMinutes(1);
    private static final Duration RETENTION = Duration.ofHours(1);

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemorySagaStore store = new InMemorySagaStore();
    private SagaOrchestrator orchestrator;

    @AfterEach
    void tearDown() {
        if (orchestrator != null) {
            orchestrator.close();
        }
    }

    /** {@code count} completed sagas, finished a retention and more ago. */
    private void finished(int count) {
        Instant at = scheduler.now().minus(RETENTION).minusSeconds(1);
        for (int i = 0; i < count; i++) {
            String id = "done-" + i;
            store.insert(new SagaInstance(id, "retained", 1, null, "data", "x", SagaStatus.COMPLETED, List.of(), null,
                    null, at, at, 1), new SagaTransition(id, 1, at, TransitionType.SAGA_COMPLETED, null, 0, null));
        }
    }

    private int finishedLeft() {
        return store.findByStatus(EnumSet.of(SagaStatus.COMPLETED)).size();
    }

    @Test
    void aRetentionPurgeYieldsTheSchedulersThreadBetweenBatchesSoATimerDueMeanwhileRunsBeforeItsNextBatch() {
        finished(1001); // three batches
        orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler).retention(RETENTION)
                .purgeEvery(EVERY).build();
        AtomicInteger leftWhenTheTimerRan = new AtomicInteger(-1);
        // Another timer of the same scheduler (a step's timeout, say), due with the purge, armed after it
        scheduler.schedule(EVERY, () -> leftWhenTheTimerRan.set(finishedLeft()));

        scheduler.advance(EVERY);

        assertEquals(501, leftWhenTheTimerRan.get(), "the timer ran after the purge's first batch, not after all three");
        assertEquals(0, finishedLeft(), "the purge's run went on to its end");
        assertEquals(1, scheduler.pendingTasks(), "the next run, one interval after the last batch");
        assertEquals(scheduler.now().plus(EVERY), scheduler.nextDueAt().orElseThrow());
    }

    @Test
    void anOrchestratorClosedBetweenTwoBatchesOfARetentionPurgeStartsNoFurtherBatchAndLeavesNothingScheduled() {
        finished(1001); // three batches
        orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler).retention(RETENTION)
                .purgeEvery(EVERY).build();
        AtomicInteger leftWhenClosed = new AtomicInteger(-1);
        // Due with the purge, armed after it: runs between its first and second batches
        scheduler.schedule(EVERY, () -> {
            orchestrator.close();
            leftWhenClosed.set(finishedLeft());
        });

        scheduler.advance(EVERY);

        assertEquals(501, leftWhenClosed.get(), "closed after the run's first batch");
        assertEquals(501, finishedLeft(), "no batch after close()");
        assertEquals(0, scheduler.pendingTasks(), "neither the run's next batch nor a next run is left scheduled");
        scheduler.advance(Duration.ofHours(3));
        assertEquals(501, finishedLeft(), "no purge runs after close()");
    }

    /** The in-memory store, whose second bounded delete (a run's second batch) throws {@code failure}; calls counted. */
    private final class SecondBatchFails extends ForwardingSagaStore {
        private final RuntimeException runtime;
        private final Error error;
        private final AtomicInteger calls = new AtomicInteger();

        SecondBatchFails(RuntimeException runtime, Error error) {
            super(store);
            this.runtime = runtime;
            this.error = error;
        }

        @Override
        public int deleteFinishedBefore(Instant cutoff, int maxSagas) {
            if (calls.incrementAndGet() == 2) {
                if (error != null) {
                    throw error;
                }
                throw runtime;
            }
            return delegate.deleteFinishedBefore(cutoff, maxSagas);
        }
    }

    @Test
    @SuppressWarnings("removal") // ThreadDeath: what Thread.stop throws in the stopped thread
    void aRetentionPurgeWhoseThreadIsStoppedInALaterBatchSaysSoAndRunsNoFurtherBatchNorRun() throws Throwable {
        finished(1001); // three batches
        SecondBatchFails failing = new SecondBatchFails(null, new ThreadDeath());
        orchestrator = SagaOrchestrator.builder().store(failing).scheduler(scheduler).retention(RETENTION)
                .purgeEvery(EVERY).build();

        String log = CapturedLog.ofThisThread(() -> assertThrows(ThreadDeath.class, () -> scheduler.advance(EVERY),
                "thrown on, as ThreadDeath's Javadoc asks"));

        assertTrue(log.contains("saga orchestrator: its retention purge stops for good, its thread stopped"
                + " (java.lang.ThreadDeath)"), log);
        assertEquals(501, finishedLeft(), "the first batch ran, the second stopped");
        assertEquals(0, scheduler.pendingTasks(), "neither a third batch nor a next run is scheduled");
        scheduler.advance(EVERY.multipliedBy(10));
        assertEquals(2, failing.calls.get(), "no batch ran after the stopped one");
    }

    @Test
    void aRetentionPurgeWhoseLaterBatchFailsEndsItsRunWithOneWarningAndTheNextRunDeletesTheRest() throws Throwable {
        finished(1001); // three batches
        SecondBatchFails failing = new SecondBatchFails(new IllegalStateException("database gone"), null);
        orchestrator = SagaOrchestrator.builder().store(failing).scheduler(scheduler).retention(RETENTION)
                .purgeEvery(EVERY).build();

        String log = CapturedLog.ofThisThread(() -> scheduler.advance(EVERY));

        assertEquals(1, log.split("purge failed", -1).length - 1, log);
        assertTrue(log.contains("saga retention: purge failed after 500 finished saga(s) deleted, retrying at the next"
                + " interval: java.lang.IllegalStateException: database gone"), log);
        assertEquals(501, finishedLeft(), "the run ended at its failed batch");
        assertEquals(1, scheduler.pendingTasks(), "the next run, one interval after the failed batch");
        assertEquals(scheduler.now().plus(EVERY), scheduler.nextDueAt().orElseThrow());
        scheduler.advance(EVERY);
        assertEquals(0, finishedLeft(), "the next run deletes the rest");
        assertEquals(4, failing.calls.get(), "one batch, the failed one, then two of the next run");
    }

    @Test
    void aRetentionPurgeRunKeepsTheCutoffItReadAtItsStartAcrossItsBatchesSoASagaFinishedAfterItsStartIsLeft() {
        finished(1001); // three batches
        AtomicInteger batches = new AtomicInteger();
        Instant runStart = scheduler.after(EVERY);
        // Its first batch takes three hours, the clock moving meanwhile; a saga finishes after the run started
        ForwardingSagaStore slowFirstBatch = new ForwardingSagaStore(store) {
            @Override
            public int deleteFinishedBefore(Instant cutoff, int maxSagas) {
                int deleted = delegate.deleteFinishedBefore(cutoff, maxSagas);
                if (batches.incrementAndGet() == 1) {
                    Instant at = runStart.plusSeconds(1);
                    store.insert(new SagaInstance("late", "retained", 1, null, "data", "x", SagaStatus.COMPLETED,
                            List.of(), null, null, at, at, 1),
                            new SagaTransition("late", 1, at, TransitionType.SAGA_COMPLETED, null, 0, null));
                    scheduler.advance(Duration.ofHours(3)); // nothing due meanwhile: the next batch is queued on return
                }
                return deleted;
            }
        };
        orchestrator = SagaOrchestrator.builder().store(slowFirstBatch).scheduler(scheduler).retention(RETENTION)
                .purgeEvery(EVERY).build();

        scheduler.advance(EVERY); // the first batch, which moved the clock three hours past this advance's end
        assertEquals(1, batches.get());
        scheduler.runDueTasks(); // the run's later batches, queued at once, due at the clock's instant

        assertEquals(3, batches.get());
        assertEquals(List.of("late"), store.findByStatus(EnumSet.of(SagaStatus.COMPLETED)).stream()
                .map(SagaInstance::sagaId).toList(), "older than the retention by the later batches' clock, but"
                + " finished after the run's start: left to the next run");
        scheduler.advance(EVERY);
        assertEquals(0, finishedLeft(), "the next run reads its own cutoff, after it");
    }
}
