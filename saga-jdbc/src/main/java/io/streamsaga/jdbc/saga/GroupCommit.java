package io.streamsaga.jdbc.saga;

import io.streamsaga.jdbc.JdbcTransactions;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Leader/follower group commit for {@link JdbcSagaStore}: a writer enqueues its write on its saga's lane
 * and takes the lane's commit lock; whoever holds it drains the lane's queue (its own write and every
 * write queued meanwhile, up to the batch size) and commits them all in one transaction with JDBC
 * batches. Writes queued while a commit is in flight therefore go into the next one, with no timer and no
 * extra thread; several lanes commit in parallel on their own connections. A writer returns only once its
 * write is committed, with its own outcome: a version conflict fails only that writer. A database error
 * aborts the batch's transaction; then each write is tried again alone, so the error reaches only the
 * writer that caused it. Thread-safe.
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
        final ReentrantLock commitLock = new ReentrantLock();
    }

    private static final class Pending {
        final JdbcSagaStore.Write write;
        volatile boolean done;
        volatile RuntimeException error;

        Pending(JdbcSagaStore.Write write) {
            this.write = write;
        }
    }

    void submit(JdbcSagaStore.Write write) {
        Lane lane = lanes[Math.floorMod(write.instance().sagaId().hashCode(), lanes.length)];
        Pending mine = new Pending(write);
        lane.queue.add(mine);
        while (!mine.done) {
            lane.commitLock.lock();
            try {
                if (!mine.done) {
                    commitBatch(lane);
                }
            } finally {
                lane.commitLock.unlock();
            }
        }
        if (mine.error != null) {
            throw mine.error;
        }
    }

    /** Runs under the lane's lock: one transaction for everything queued on it, up to the batch size. */
    private void commitBatch(Lane lane) {
        List<Pending> batch = new ArrayList<>();
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
        try {
            RuntimeException[] errors = tx.call(c -> store.writeBatch(c, writes));
            for (int i = 0; i < batch.size(); i++) {
                batch.get(i).error = errors[i];
            }
        } catch (Exception batchFailure) {
            for (Pending p : batch) {
                try {
                    store.writeAlone(p.write);
                    p.error = null;
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
