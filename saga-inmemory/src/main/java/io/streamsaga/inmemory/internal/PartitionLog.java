package io.streamsaga.inmemory.internal;

import io.streamsaga.message.Message;

import java.time.Instant;

/**
 * One partition of a topic: an append-only array of messages addressed by offset. Appends are serialised
 * by a lock; reads take none. A reader reads the volatile end offset first and the segment second, and
 * an appender fills the slot (and swaps in a grown segment) before it publishes the new end, so a reader
 * that sees an offset below the end always finds its record. Retention drops the oldest records.
 */
public final class PartitionLog {
    private final String topic;
    private final int partition;
    private final Object appendLock = new Object();
    private volatile Segment segment = new Segment(new Message[64], new Instant[64], 0);
    /** First retained offset. */
    private volatile long start;
    /** Next offset to be written. */
    private volatile long end;

    public PartitionLog(String topic, int partition) {
        this.topic = topic;
        this.partition = partition;
    }

    public String topic() {
        return topic;
    }

    public int partition() {
        return partition;
    }

    /** Appends and returns the new record's offset; applies the retention bounds given (0 / null = none). */
    public long append(Message message, Instant now, long maxRecords, Instant dropBefore) {
        synchronized (appendLock) {
            long offset = end;
            Segment current = segment;
            int index = (int) (offset - current.base);
            if (index == current.entries.length) {
                int live = (int) (end - start);
                int firstLive = (int) (start - current.base);
                int capacity = Math.max(64, Integer.highestOneBit(live + 1) << 1);
                Segment grown = new Segment(new Message[capacity], new Instant[capacity], start);
                System.arraycopy(current.entries, firstLive, grown.entries, 0, live);
                System.arraycopy(current.appendedAt, firstLive, grown.appendedAt, 0, live);
                current = grown;
                segment = grown;
                index = live;
            }
            current.entries[index] = message;
            current.appendedAt[index] = now;
            end = offset + 1;
            trim(current, maxRecords, dropBefore);
            return offset;
        }
    }

    private void trim(Segment current, long maxRecords, Instant dropBefore) {
        long newStart = start;
        if (maxRecords > 0 && end - newStart > maxRecords) {
            newStart = end - maxRecords;
        }
        if (dropBefore != null) {
            while (newStart < end && current.appendedAt[(int) (newStart - current.base)].isBefore(dropBefore)) {
                newStart++;
            }
        }
        if (newStart != start) {
            for (long o = start; o < newStart; o++) {
                current.entries[(int) (o - current.base)] = null; // let retained-out payloads be collected
            }
            start = newStart;
        }
    }

    /** The message at {@code offset}, or null when it is not written yet or no longer retained. */
    public Message read(long offset) {
        if (offset >= end || offset < start) {
            return null;
        }
        Segment current = segment;
        long index = offset - current.base;
        return index < 0 || index >= current.entries.length ? null : current.entries[(int) index];
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
            long index = offset - segment.base;
            return index < 0 || index >= segment.entries.length ? null : segment.entries[(int) index];
        }
    }

    public long startOffset() {
        return start;
    }

    public long endOffset() {
        return end;
    }

    private record Segment(Message[] entries, Instant[] appendedAt, long base) {
    }
}
