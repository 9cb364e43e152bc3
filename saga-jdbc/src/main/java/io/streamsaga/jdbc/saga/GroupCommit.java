package io.streamsaga.jdbc.saga;

import io.streamsaga.jdbc.JdbcException;
import io.streamsaga.jdbc.JdbcTransactions;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Leader/follower group commit: a writer enqueues its work and takes the commit lock; whoever holds it
 * drains the queue (its own work and every writer's that queued meanwhile, up to the batch size) and runs
 * it all in one transaction. Writers that queued while a commit was in flight are therefore batched into
 * the next one, without a timer and without a dedicated thread. A writer returns only once its work is
 * committed. A piece of work that refuses its write (a version conflict) must throw before it changed
 * anything: it fails only its own writer and the rest of the batch commits. A database error aborts the
 * transaction; then each piece is written again in a transaction of its own, so the error reaches only
 * the writer that caused it. Thread-safe.
 */
final class GroupCommit {
    private final JdbcTransactions tx;
    private final int maxBatch;
    private final ConcurrentLinkedQueue<Pending> queue = new ConcurrentLinkedQueue<>();
    private final ReentrantLock commitLock = new ReentrantLock();

    GroupCommit(JdbcTransactions tx, int maxBatch) {
        this.tx = tx;
        this.maxBatch = maxBatch;
    }

    private static final class Pending {
        final JdbcTransactions.VoidWork work;
        volatile boolean done;
        volatile RuntimeException error;

        Pending(JdbcTransactions.VoidWork work) {
            this.work = work;
        }
    }

    void submit(JdbcTransactions.VoidWork work) {
        Pending mine = new Pending(work);
        queue.add(mine);
        while (!mine.done) {
            commitLock.lock();
            try {
                if (!mine.done) {
                    commitBatch();
                }
            } finally {
                commitLock.unlock();
            }
        }
        if (mine.error != null) {
            throw mine.error;
        }
    }

    /** Runs under the commit lock: one transaction for everything queued, up to the batch size. */
    private void commitBatch() {
        List<Pending> batch = new ArrayList<>();
        Pending next;
        while (batch.size() < maxBatch && (next = queue.poll()) != null) {
            batch.add(next);
        }
        if (batch.isEmpty()) {
            return;
        }
        try {
            tx.call(c -> {
                for (Pending p : batch) {
                    try {
                        p.work.run(c);
                    } catch (RuntimeException e) {
                        if (e instanceof JdbcException) {
                            throw e;
                        }
                        // a refused write (version conflict): it threw before changing anything
                        p.error = e;
                    }
                }
                return null;
            });
        } catch (Exception batchFailure) {
            // a database error aborts the whole transaction: write each again alone, so it fails only its writer
            for (Pending p : batch) {
                p.error = null;
                try {
                    tx.run(p.work);
                } catch (RuntimeException e) {
                    p.error = e;
                }
            }
        }
        for (Pending p : batch) {
            p.done = true;
        }
    }
}
