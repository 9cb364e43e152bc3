package io.streamsaga.jdbc.saga;

import io.streamsaga.StreamSagaException;
import io.streamsaga.jdbc.CommitOutcomeUnknownException;
import io.streamsaga.jdbc.JdbcTransactions;

import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.LockSupport;

/**
 * Group commit for {@link JdbcSagaStore}: a writer enqueues its write on its saga's lane and parks until
 * the write is committed. One writer at a time is the lane's committer: it drains every write queued on
 * the lane (up to the batch size), from all sagas, into one transaction with one JDBC batch per statement
 * kind, then completes each writer with its own outcome and wakes it. While that transaction (and its log
 * flush) is in flight, new writes pile up in the queue and all go into the next one, so the batch grows
 * with the load and one commit serves many transitions; no timer, no extra thread.
 *
 * <p>Why this shape: waiting writers park on their own write and are woken once, by the committer that
 * wrote it. They never queue on a lock just to learn that their write is done (the first design did, and
 * the lock hand-offs between parked threads cost more than the commits saved). When a committer finishes
 * and writes are still queued, it hands the role to the oldest waiting writer and returns.
 *
 * <p>A version conflict fails only its own writer. A database error (or any exception or Error) aborts the
 * batch's transaction; then each write of it is tried again alone, so the error reaches only the writer that
 * caused it. But a commit whose outcome is unknown ({@link CommitOutcomeUnknownException}: the batch may be stored)
 * is each writer's outcome, not tried again, but for a write the batch refused as a conflict (nothing of it was in the
 * transaction), whose outcome stays that conflict. Several
 * lanes commit in parallel on their own connections; a saga always uses the same lane. Thread-safe.
 */
final class GroupCommit {
    private final JdbcSagaStore store;
    private final JdbcTransactions tx;
    private final int maxBatch;
    private final Lane[] lanes;

    GroupCommit(JdbcSagaStore store, JdbcTransactions tx, int maxBatch, int lanes) {
        this.store = store;
        this.tx = tx;
        this.maxBatch = maxBatch;
        this.lanes = new Lane[lanes];
        for (int i = 0; i < lanes; i++) {
            this.lanes[i] = new Lane();
        }
    }

    private static final class Lane {
        final ConcurrentLinkedQueue<Pending> queue = new ConcurrentLinkedQueue<>();
        /** Set while one writer commits a batch of this lane. */
        final AtomicBoolean committing = new AtomicBoolean();
    }

    private static final class Pending {
        final JdbcSagaStore.Write write;
        final Thread waiter = Thread.currentThread();
        /** Written before {@link #done}, read after it (the volatile write publishes it): a RuntimeException or an Error. */
        Throwable error;
        volatile boolean done;

        Pending(JdbcSagaStore.Write write) {
            this.write = write;
        }
    }

    void submit(JdbcSagaStore.Write write) {
        Lane lane = lanes[Math.floorMod(write.instance().sagaId().hashCode(), lanes.length)];
        Pending mine = new Pending(write);
        lane.queue.add(mine);
        boolean interrupted = false;
        // Enqueue before trying to commit, and a committer looks at the queue after stepping down: either
        // this writer becomes the committer or the committer that stepped down sees it and wakes it.
        while (!mine.done) {
            if (lane.committing.compareAndSet(false, true)) {
                try {
                    if (!mine.done) {
                        commitBatch(lane);
                    }
                } finally {
                    lane.committing.set(false);
                }
                Pending next = lane.queue.peek();
                if (next != null && next != mine) {
                    LockSupport.unpark(next.waiter);
                }
            } else {
                LockSupport.park(this);
                // An interrupt cannot abandon a write already queued: wait on, and restore the flag after.
                interrupted |= Thread.interrupted();
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
        if (mine.error instanceof Error e) {
            throw e;
        }
        if (mine.error != null) {
            throw (RuntimeException) mine.error;
        }
    }

    /** Runs while holding the lane's committer role: one transaction for everything queued, up to the batch size. */
    private void commitBatch(Lane lane) {
        List<Pending> batch = new ArrayList<>(Math.min(maxBatch, 256));
        Pending next;
        while (batch.size() < maxBatch && (next = lane.queue.poll()) != null) {
            batch.add(next);
        }
        if (batch.isEmpty()) {
            return;
        }
        List<JdbcSagaStore.Write> writes = new ArrayList<>(batch.size());
        for (Pending p : batch) {
            writes.add(p.write);
        }
        // The batch's own conflicts, known before its commit: a write refused as stale or as a saga stored already is
        // nothing of the transaction, whatever its commit's outcome.
        RuntimeException[][] refused = new RuntimeException[1][];
        try {
            RuntimeException[] errors = tx.call(c -> refused[0] = store.writeBatch(c, writes));
            for (int i = 0; i < batch.size(); i++) {
                batch.get(i).error = errors[i];
            }
        } catch (CommitOutcomeUnknownException unknown) {
            // The batch may be stored: tried alone, a write would meet its own committed row as another writer's
            // (a ConcurrentSagaUpdateException, "another orchestrator drives it", though none does). Each writer is
            // told the truth instead, and its saga is left for recover(), which reads what was stored.
            for (int i = 0; i < batch.size(); i++) {
                Pending p = batch.get(i);
                p.error = refused[0][i] != null ? refused[0][i] // set: only the commit, after the work, throws this
                        : new CommitOutcomeUnknownException("the commit of a group-commit batch holding the write of saga "
                        + StreamSagaException.quote(p.write.instance().sagaId()) + " at version "
                        + p.write.instance().version() + " failed", (SQLException) unknown.getCause());
            }
        } catch (Throwable batchFailure) {
            // an Error too: every writer of the batch must get an outcome, or it stays parked for ever
            for (Pending p : batch) {
                try {
                    store.writeAlone(p.write);
                    p.error = null;
                } catch (RuntimeException | Error e) {
                    p.error = e;
                }
            }
        }
        Thread self = Thread.currentThread();
        for (Pending p : batch) {
            p.done = true;
            if (p.waiter != self) {
                LockSupport.unpark(p.waiter);
            }
        }
    }
}
