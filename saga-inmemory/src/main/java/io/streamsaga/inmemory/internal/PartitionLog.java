package io.streamsaga.inmemory.internal;

import io.streamsaga.message.Message;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.time.Instant;

/**
 * One partition of a topic: an append-only array of messages addressed by offset. Thread-safe.
 *
 * <p>Appenders are serialised by a small CAS lock (the critical section is a few stores, so a spin is
 * cheaper than a monitor); readers take no lock at all. An appender fills the slot (and swaps in a grown
 * segment) before it publishes the new end offset, and a reader reads the end offset
 * first and the segment second, so a reader that sees an offset below the end always finds its record in
 * the segment it reads. Retention drops the oldest records: their slots are cleared before the new start
 * offset is published, so a reader racing with retention reads null and must re-check the start.
 */
public final class PartitionLog extends PartitionLogPadAfter {
    private static final VarHandle LOCK;
    private static final VarHandle START;
    private static final int SPINS_BEFORE_YIELD = 64;

    static {
        try {
            MethodHandles.Lookup lookup = MethodHandles.lookup();
            LOCK = lookup.findVarHandle(PartitionLogFields.class, "lock", int.class);
            START = lookup.findVarHandle(PartitionLogFields.class, "start", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final String topic;
    private final int partition;
    /** Whether append times are kept (only age-based retention needs them). */
    private final boolean timed;

    /** A log that keeps no append times: retention by record count only, or none. */
    public PartitionLog(String topic, int partition) {
        this(topic, partition, false);
    }

    /** A log that keeps append times when {@code timed}, for retention by age. */
    public PartitionLog(String topic, int partition, boolean timed) {
        this.topic = topic;
        this.partition = partition;
        this.timed = timed;
        this.segment = new Segment(new Message[64], timed ? new Instant[64] : null, 0);
    }

    public String topic() {
        return topic;
    }

    public int partition() {
        return partition;
    }

    /**
     * Appends and returns the new record's offset; applies the retention bounds given (0 / null = none).
     * {@code now} is the append time, needed only by a timed log.
     */
    public long append(Message message, Instant now, long maxRecords, Instant dropBefore) {
        acquire();
        try {
            long offset = end;
            Segment current = segment;
            int index = (int) (offset - current.base());
            if (index == current.entries().length) {
                current = grown(current);
                index = (int) (offset - current.base());
            }
            current.entries()[index] = message;
            if (current.appendedAt() != null) {
                current.appendedAt()[index] = now;
            }
            // A volatile (not merely release) store: the sender reads the consumers' waiting flags next, and
            // a parking consumer writes its flag then reads this end; this pair must not be reordered
            // (Dekker), or a wake-up could be missed until the consumer's park times out.
            end = offset + 1;
            trim(current, offset + 1, maxRecords, dropBefore);
            return offset;
        } finally {
            LOCK.setRelease(this, 0);
        }
    }

    /**
     * Drops the records appended before {@code dropBefore}, as an append would (a timed log only; the others keep
     * no append times): retention by age must hold for a partition no one appends to any more, where it is read.
     */
    public void expire(Instant dropBefore) {
        if (!timed || start == end) {
            return;
        }
        acquire();
        try {
            trim(segment, end, 0, dropBefore);
        } finally {
            LOCK.setRelease(this, 0);
        }
    }

    private void acquire() {
        int spins = 0;
        while (!LOCK.compareAndSet(this, 0, 1)) {
            if (++spins < SPINS_BEFORE_YIELD) {
                Thread.onSpinWait();
            } else {
                Thread.yield(); // another appender is copying a segment; let it finish
            }
        }
    }

    /** A segment with room, holding the live records; published before the end offset moves past it. */
    private Segment grown(Segment current) {
        long first = start;
        int live = (int) (end - first);
        int firstLive = (int) (first - current.base());
        int capacity = Math.max(64, Integer.highestOneBit(live + 1) << 1);
        Segment grown = new Segment(new Message[capacity], timed ? new Instant[capacity] : null, first);
        System.arraycopy(current.entries(), firstLive, grown.entries(), 0, live);
        if (timed) {
            System.arraycopy(current.appendedAt(), firstLive, grown.appendedAt(), 0, live);
        }
        segment = grown;
        return grown;
    }

    private void trim(Segment current, long newEnd, long maxRecords, Instant dropBefore) {
        long oldStart = start;
        long newStart = oldStart;
        if (maxRecords > 0 && newEnd - newStart > maxRecords) {
            newStart = newEnd - maxRecords;
        }
        if (dropBefore != null && current.appendedAt() != null) {
            while (newStart < newEnd && current.appendedAt()[(int) (newStart - current.base())].isBefore(dropBefore)) {
                newStart++;
            }
        }
        if (newStart != oldStart) {
            for (long o = oldStart; o < newStart; o++) {
                current.entries()[(int) (o - current.base())] = null; // let retained-out payloads be collected
            }
            START.setRelease(this, newStart);
        }
    }

    /** The message at {@code offset}, or null when it is not written yet or no longer retained. */
    public Message read(long offset) {
        if (offset >= end || offset < start) {
            return null;
        }
        return new Reader(segment).read(offset);
    }

    /**
     * A reader of the records below the end offset read before this call: it holds the current segment,
     * so a chunk of reads costs one volatile read. Records dropped by retention meanwhile read as null.
     */
    public Reader reader() {
        return new Reader(segment);
    }

    /** Reads from one segment; see {@link #reader()}. Used by one thread. */
    public static final class Reader {
        private final Segment segment;

        private Reader(Segment segment) {
            this.segment = segment;
        }

        /** The message at {@code offset} (below the end offset read before the reader was made), or null. */
        public Message read(long offset) {
            long index = offset - segment.base();
            return index < 0 || index >= segment.entries().length ? null : segment.entries()[(int) index];
        }
    }

    public long startOffset() {
        return start;
    }

    public long endOffset() {
        return end;
    }
}
