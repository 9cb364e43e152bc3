package io.streamsaga.internal;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.time.Clock;
import java.time.Instant;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * Timestamps of published messages and of saga transitions, read as cheaply as their precision allows.
 *
 * <p>On any clock other than the system clock (such as a {@code VirtualScheduler}'s) every call reads the
 * clock, exactly. On the system clock messages are stamped to the millisecond, as Kafka stores them
 * anyway, and one {@link Instant} is reused per millisecond. Reading the system clock costs ~25 ns on a VM
 * (a fifth of an in-memory publish), so while publishing is hot (more than {@value #HOT_PER_MILLI} stamps
 * within one millisecond) a ticker thread reads the clock once per millisecond and publishers take its
 * last reading without a clock read of their own: a stamp is then at most about one tick (plus the
 * ticker's scheduling delay) behind the wall clock. The ticker stops itself after a tick in which nothing
 * was stamped, so an idle or abandoned bus keeps no thread, and sparse publishing reads the clock exactly.
 *
 * <p>Thread-safe: the per-millisecond cache and the hot counter are racy caches of immutable values (a
 * lost update costs one more clock read, never a wrong stamp).
 */
public final class StampClock implements AutoCloseable {
    /** Stamps within one millisecond, read from the clock, that make the ticker start. */
    static final int HOT_PER_MILLI = 32;
    private static final long TICK_NANOS = TimeUnit.MILLISECONDS.toNanos(1);
    private static final VarHandle RUNNING;

    static {
        try {
            RUNNING = MethodHandles.lookup().findVarHandle(StampClock.class, "running", boolean.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final Clock clock;
    private final boolean systemClock;
    private final String threadName;
    /** The ticker's last reading while it runs; null when it does not. */
    private volatile Instant ticked;
    /** Whether a stamp was taken from {@link #ticked} since the last tick; written once per tick at most. */
    private volatile boolean used;
    /** Whether a ticker thread runs (or is starting); one at a time. */
    @SuppressWarnings("unused") // through RUNNING
    private volatile boolean running;
    private volatile boolean closed;
    /** The Instant of the last millisecond read from the clock. */
    private Instant last = Instant.EPOCH;
    /** Clock reads that returned {@link #last}'s millisecond. */
    private int sameMilli;

    /**
     * @param clock      the clock to stamp from (the system clock gets the millisecond treatment)
     * @param threadName the name of the ticker thread, when one runs
     */
    public StampClock(Clock clock, String threadName) {
        this.clock = clock;
        this.systemClock = clock.getClass() == Clock.systemUTC().getClass();
        this.threadName = threadName;
    }

    /** The timestamp of a message published now. */
    public Instant now() {
        if (!systemClock) {
            return clock.instant();
        }
        Instant stamp = ticked;
        if (stamp != null) {
            if (!used) {
                used = true; // only the first stamp of a tick writes: no shared line bounced per publish
            }
            return stamp;
        }
        return read();
    }

    /** Whether a ticker thread currently stamps (for tests). */
    boolean ticking() {
        return (boolean) RUNNING.getVolatile(this);
    }

    private Instant read() {
        long millis = System.currentTimeMillis();
        Instant previous = last;
        if (previous.toEpochMilli() == millis) {
            if (++sameMilli >= HOT_PER_MILLI && !closed && RUNNING.compareAndSet(this, false, true)) {
                startTicker(previous);
            }
            return previous;
        }
        Instant stamp = Instant.ofEpochMilli(millis);
        last = stamp;
        sameMilli = 0;
        return stamp;
    }

    private void startTicker(Instant current) {
        used = true;
        ticked = current;
        Thread ticker = new Thread(this::tick, threadName);
        ticker.setDaemon(true);
        try {
            ticker.start();
        } catch (RuntimeException | OutOfMemoryError e) {
            ticked = null; // no thread: publishers keep reading the clock themselves
            RUNNING.setVolatile(this, false);
        }
    }

    private void tick() {
        try {
            while (!closed) {
                LockSupport.parkNanos(this, TICK_NANOS);
                if (!used) {
                    break; // a whole tick without a publish: stop; publishers read the clock again
                }
                used = false;
                long millis = System.currentTimeMillis();
                Instant stamp = ticked;
                if (stamp == null || stamp.toEpochMilli() != millis) {
                    ticked = Instant.ofEpochMilli(millis);
                }
            }
        } finally {
            ticked = null;
            sameMilli = 0;
            RUNNING.setVolatile(this, false);
        }
    }

    /** Stops the ticker, if any; stamps are read from the clock from now on. */
    @Override
    public void close() {
        closed = true;
        ticked = null;
    }
}
