package io.streamsaga.inmemory.internal;

import io.streamsaga.message.Message;

import java.time.Instant;

/**
 * The fields a {@link PartitionLog}'s appender writes on every append, padded by a cache line on both
 * sides (superclass fields are laid out before subclass fields). Without the padding another object
 * allocated next to the log, such as a consumer's cursor, could share their cache line, and every append
 * and every commit would then miss the cache on the other core: we measured the in-memory bus run 3x
 * slower in the JVM runs where that happened.
 */
abstract class PartitionLogPadBefore {
    long p00, p01, p02, p03, p04, p05, p06, p07;
}

/** The hot fields; see {@link PartitionLogPadBefore}. */
abstract class PartitionLogFields extends PartitionLogPadBefore {
    /** 1 while an appender holds the log. */
    volatile int lock;
    /** First retained offset. */
    volatile long start;
    /** Next offset to be written. */
    volatile long end;
    /** The array the retained records live in. */
    volatile Segment segment;

    /** Records from offset {@code base}; {@code appendedAt} only for age-based retention. */
    record Segment(Message[] entries, Instant[] appendedAt, long base) {
    }
}

/** Padding after the hot fields; see {@link PartitionLogPadBefore}. */
abstract class PartitionLogPadAfter extends PartitionLogFields {
    long p10, p11, p12, p13, p14, p15, p16, p17;
}
