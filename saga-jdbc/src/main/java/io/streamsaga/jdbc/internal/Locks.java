package io.streamsaga.jdbc.internal;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;

/** Waiting for work that runs under a lock to end, as a component's close() does. */
public final class Locks {
    private Locks() {
    }

    /**
     * Waits until {@code lock} is free (taking and releasing it) or {@code deadline} (a {@link System#nanoTime()})
     * passes; returns whether it was free in time. An interrupted caller waits all the same and gets its interrupt
     * back, as the library's schedulers do: a close() that returns early would let work run after it.
     */
    public static boolean awaitUnlocked(ReentrantLock lock, long deadline) {
        boolean interrupted = false;
        try {
            while (true) {
                try {
                    if (lock.tryLock(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS)) {
                        lock.unlock();
                        return true;
                    }
                    return false;
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
        } finally {
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
