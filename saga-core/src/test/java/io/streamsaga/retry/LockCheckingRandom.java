package io.streamsaga.retry;

import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.random.RandomGenerator;

/**
 * A random source that is not thread-safe (a {@link SplittableRandom}'s sequence), for tests of a bus's or an
 * orchestrator's {@code retryJitter}: it counts its draws, and those made without its lock held, which two threads could
 * make at once.
 */
public final class LockCheckingRandom implements RandomGenerator {
    private final SplittableRandom random = new SplittableRandom(7);
    private final AtomicInteger draws = new AtomicInteger();
    private final AtomicInteger drawsWithoutTheLock = new AtomicInteger();

    @Override
    public long nextLong() {
        draws.incrementAndGet();
        if (!Thread.holdsLock(this)) {
            drawsWithoutTheLock.incrementAndGet();
        }
        return random.nextLong();
    }

    public int draws() {
        return draws.get();
    }

    public int drawsWithoutTheLock() {
        return drawsWithoutTheLock.get();
    }
}
