package io.streamsaga.inmemory;

import org.junit.jupiter.api.Test;

import java.lang.reflect.Field;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * {@link InMemoryMetrics#reset()} against a recording under way on another thread (the bus's consumer threads record
 * while a test resets): a recording took its counter or distribution from the recorder's tables, and reset() cleared
 * them before the recording added its value, which went to a table no one would read again, so a value whose
 * {@code observe} returned after reset() had returned was lost, never counted before nor after the reset (and a thread
 * recording two meters could see the first kept and the second lost). A recording and reset() are now atomic to each
 * other: a value is forgotten only if its recording ended before reset() returned.
 */
class InMemoryMetricsResetTest {
    private static final Map<String, String> TAGS = Map.of("step", "charge");
    /** Far beyond what any step here takes; only a recorder that never lets a thread through reaches it. */
    private static final Duration BOUND = Duration.ofSeconds(30);

    @Test
    void aValueObservedWhileResetRunsIsForgottenOnlyIfItsObserveReturnedBeforeResetDid() throws Exception {
        InMemoryMetrics metrics = new InMemoryMetrics();
        metrics.observe("charge_amount", 5.0, TAGS);
        Object distribution = distributionOf(metrics); // its lock is the one observe takes to add a value
        Thread observer = new Thread(() -> metrics.observe("charge_amount", 7.0, TAGS), "observer");
        Thread resetter = new Thread(metrics::reset, "resetter");

        Thread.State resetWhileTheObserveWaits;
        synchronized (distribution) {
            observer.start();
            awaitState(observer, Thread.State.BLOCKED); // the observe has its distribution and waits to add 7.0
            resetter.start();
            // the reset returns (its observe returning after it), or waits for the observe under way
            resetWhileTheObserveWaits = awaitState(resetter, Thread.State.TERMINATED, Thread.State.WAITING);
        }
        // bounded, as the waits for a state above: a recorder that deadlocked fails the test rather than hanging it
        observer.join(BOUND.toMillis());
        resetter.join(BOUND.toMillis());
        assertFalse(observer.isAlive() || resetter.isAlive(), "the observe and the reset return once the distribution is let go");

        boolean observeReturnedAfterTheReset = resetWhileTheObserveWaits == Thread.State.TERMINATED;
        assertEquals(observeReturnedAfterTheReset ? List.of(7.0) : List.of(),
                metrics.observations("charge_amount", TAGS).values(),
                "observe returned " + (observeReturnedAfterTheReset ? "after" : "before") + " reset() did: 5.0 forgotten"
                        + " by the reset, 7.0 " + (observeReturnedAfterTheReset ? "kept" : "forgotten with it"));
        metrics.observe("charge_amount", 9.0, TAGS);
        assertEquals(observeReturnedAfterTheReset ? List.of(7.0, 9.0) : List.of(9.0),
                metrics.observations("charge_amount", TAGS).values());
    }

    /** The recorder's one distribution, whose monitor its add takes. */
    private static Object distributionOf(InMemoryMetrics metrics) throws ReflectiveOperationException {
        Field field = InMemoryMetrics.class.getDeclaredField("distributions");
        field.setAccessible(true);
        return ((Map<?, ?>) field.get(metrics)).values().iterator().next();
    }

    /**
     * The first of {@code states} {@code thread} is seen in, each of which it stays in once there (blocked or waiting on
     * what the test holds, or ended); within {@link #BOUND}, so that a thread that never gets there (an observe that no
     * longer takes the distribution's lock ends without blocking) fails the test rather than spinning for ever.
     */
    private static Thread.State awaitState(Thread thread, Thread.State... states) {
        AtomicReference<Thread.State> seen = new AtomicReference<>();
        await().atMost(BOUND).pollInterval(Duration.ofMillis(1))
                .until(() -> List.of(states).contains(seen.updateAndGet(ignored -> thread.getState())));
        return seen.get();
    }
}
