package io.streamsaga.inmemory.saga.testkit;

import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

/**
 * {@link SagaTestEnvironment#executor()}: runs each task on a daemon thread that ends with it, and counts the
 * tasks still running, so that the kit can wait for them ({@link #awaitIdle}) before it delivers, moves the
 * virtual clock or returns.
 * A task that completes a stage runs the engine's handling of it (the stage's dependents) before it ends, so
 * once none runs, every such outcome is recorded. Thread-safe.
 */
final class KitExecutor implements Executor {
    /**
     * A thread per task that ends with its task (no keep-alive, unlike a cached pool's 60 s): a run left open
     * (it needs attention, or was only started) keeps no idle thread.
     */
    private final ExecutorService threads = new ThreadPoolExecutor(0, Integer.MAX_VALUE, 0, TimeUnit.NANOSECONDS,
            new SynchronousQueue<>(), task -> {
        Thread thread = new Thread(task, "saga-test-kit-executor");
        thread.setDaemon(true); // a test that leaves a task blocked must not keep the JVM alive
        return thread;
    });
    /** Tasks submitted and not yet finished; guarded by {@code this}. */
    private int running;

    @Override
    public void execute(Runnable task) {
        Objects.requireNonNull(task, "task");
        synchronized (this) {
            running++;
        }
        try {
            threads.execute(() -> {
                try {
                    task.run();
                } finally {
                    finished();
                }
            });
        } catch (RejectedExecutionException e) {
            finished();
            throw e;
        }
    }

    private synchronized void finished() {
        running--;
        notifyAll();
    }

    /** Waits until no task runs; an {@link AssertionError} when some still run after {@code bound}. */
    synchronized void awaitIdle(Duration bound) {
        long deadline = System.nanoTime() + bound.toNanos();
        while (running > 0) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                throw new AssertionError(running + " task(s) on the test environment's executor still running after "
                        + bound + " (blocked, or waiting for something only the test thread does?)");
            }
            try {
                TimeUnit.NANOSECONDS.timedWait(this, left);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError("interrupted while waiting for the test environment's executor", e);
            }
        }
    }

    void close() {
        threads.shutdownNow();
    }
}
