package io.streamsaga.inmemory;

import io.streamsaga.CapturedLog;
import io.streamsaga.ConfigurationException;
import io.streamsaga.inmemory.saga.testkit.SimulatedCrash;
import io.streamsaga.time.Scheduler;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link Scheduler#repeat}, the rule of the library's periodic tasks (an orchestrator's purge, sweep and heartbeat, the
 * claim-check sweep, the JDBC purges, saga-micrometer's counts), on a virtual clock: when runs and their parts fall
 * due, which failures end the task and which are followed by the next run, and what a cancel leaves.
 */
class SchedulerRepeatTest {
    private static final Duration FIRST = Duration.ofSeconds(5);
    private static final Duration PERIOD = Duration.ofMinutes(1);
    private static final String NAME = "test component: its periodic task";

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final Instant start = scheduler.now();
    private final List<String> events = new ArrayList<>();

    /** Seconds since the test's start, for the events' record. */
    private long at() {
        return Duration.between(start, scheduler.now()).toSeconds();
    }

    /** A part that records when it ran, then throws what {@code failure} gives (nothing when null) at call 1. */
    private BooleanSupplier failingOnce(Supplier<? extends Throwable> failure, AtomicInteger calls) {
        return () -> {
            events.add("run@" + at());
            if (calls.incrementAndGet() == 1 && failure != null) {
                Throwable thrown = failure.get();
                if (thrown instanceof RuntimeException runtime) {
                    throw runtime;
                }
                throw (Error) thrown;
            }
            return false;
        };
    }

    @Test
    void theFirstRunFallsDueAfterItsDelayAndEachNextOneAPeriodAfterTheLastPartOfTheRunBefore() {
        AtomicInteger parts = new AtomicInteger();
        Scheduler.repeat(scheduler, NAME, FIRST, PERIOD, () -> {
            events.add("part@" + at());
            return parts.incrementAndGet() % 3 != 0; // runs of three parts
        });

        scheduler.advance(FIRST.minusSeconds(1));
        assertEquals(List.of(), events, "not before its first delay");
        scheduler.advance(Duration.ofSeconds(1).plus(PERIOD));

        assertEquals(List.of("part@5", "part@5", "part@5", "part@65", "part@65", "part@65"), events);
        assertEquals(1, scheduler.pendingTasks(), "one next run armed, no more");
    }

    @Test
    void eachPartOfARunIsATaskOfItsOwnSoATimerDueMeanwhileRunsBetweenTwoParts() {
        AtomicInteger parts = new AtomicInteger();
        Scheduler.repeat(scheduler, NAME, FIRST, PERIOD, () -> {
            events.add("part " + parts.incrementAndGet());
            if (parts.get() == 1) {
                scheduler.schedule(Duration.ZERO, () -> events.add("other timer"));
            }
            return parts.get() < 3;
        });

        scheduler.advance(FIRST);

        assertEquals(List.of("part 1", "other timer", "part 2", "part 3"), events);
    }

    @Test
    void aFirstDelayOfZeroRunsAtOnce() {
        Scheduler.repeat(scheduler, NAME, Duration.ZERO, PERIOD, () -> {
            events.add("run@" + at());
            return false;
        });

        scheduler.runDueTasks();
        scheduler.advance(PERIOD);

        assertEquals(List.of("run@0", "run@60"), events);
    }

    @Test
    void aRunThrowingARuntimeExceptionIsLoggedAtWarnAndTheNextRunFollows() throws Throwable {
        AtomicInteger calls = new AtomicInteger();
        Scheduler.repeat(scheduler, NAME, FIRST, PERIOD,
                failingOnce(() -> new IllegalStateException("the store is unreachable (test)"), calls));

        String log = CapturedLog.ofThisThread(() -> scheduler.advance(FIRST));
        scheduler.advance(PERIOD);

        assertTrue(log.contains("WARN io.streamsaga.time.Scheduler - " + NAME + " failed, the next run follows"
                + " in PT1M: java.lang.IllegalStateException: the store is unreachable (test)"), log);
        assertEquals(List.of("run@5", "run@65"), events);
    }

    @Test
    void aRunThrowingAnErrorOtherThanAThreadDeathThrowsItOnToTheSchedulerAndTheNextRunFollows() {
        AssertionError bug = new AssertionError("a bug in the task (test)");
        AtomicInteger calls = new AtomicInteger();
        Scheduler.repeat(scheduler, NAME, FIRST, PERIOD, failingOnce(() -> bug, calls));

        assertSame(bug, assertThrows(AssertionError.class, () -> scheduler.advance(FIRST)), "thrown on");
        scheduler.advance(PERIOD);

        assertEquals(List.of("run@5", "run@65"), events);
    }

    @Test
    @SuppressWarnings("removal") // ThreadDeath: what Thread.stop throws in the stopped thread, on the JDKs that have it
    void aRunWhoseThreadIsStoppedSaysSoAtWarnThrowsTheThreadDeathOnAndIsTheLast() throws Throwable {
        AtomicInteger calls = new AtomicInteger();
        Scheduler.repeat(scheduler, NAME, FIRST, PERIOD, failingOnce(ThreadDeath::new, calls));

        String log = CapturedLog.ofThisThread(() -> assertThrows(ThreadDeath.class, () -> scheduler.advance(FIRST),
                "thrown on, as ThreadDeath's Javadoc asks"));
        scheduler.advance(PERIOD.multipliedBy(10));

        assertTrue(log.contains("WARN io.streamsaga.time.Scheduler - " + NAME + " stops for good, its thread"
                + " stopped (java.lang.ThreadDeath); close and build its component again to run it"), log);
        assertEquals(List.of("run@5"), events);
        assertEquals(0, scheduler.pendingTasks());
    }

    @Test
    void aRunMeetingATestsSimulatedProcessCrashIsTheLastAndDoesNotThrowItIntoWhatAdvancedTheClock() throws Throwable {
        AtomicInteger calls = new AtomicInteger();
        Scheduler.repeat(scheduler, NAME, FIRST, PERIOD, failingOnce(() -> new SimulatedCrash("crash (test)"), calls));

        String log = CapturedLog.ofThisThread(() -> scheduler.advance(FIRST.plus(PERIOD.multipliedBy(10))));

        assertEquals("", log, "a crash the test asked for is no warning nor error");
        assertEquals(List.of("run@5"), events, "a dead process runs no timers");
        assertEquals(0, scheduler.pendingTasks());
    }

    @Test
    void aCancelDropsTheQueuedPartOrRunAndAPartThatCancelsItsOwnTaskArmsNoneAfterIt() {
        AtomicInteger parts = new AtomicInteger();
        Scheduler.Cancellable waiting = Scheduler.repeat(scheduler, NAME, FIRST, PERIOD, () -> {
            events.add("waiting");
            return false;
        });
        AtomicReference<Scheduler.Cancellable> self = new AtomicReference<>();
        self.set(Scheduler.repeat(scheduler, NAME, FIRST, PERIOD, () -> {
            events.add("self part " + parts.incrementAndGet());
            self.get().cancel(); // as a component closed from inside its own task
            return true; // another part would follow
        }));

        waiting.cancel();
        waiting.cancel(); // harmless
        scheduler.advance(FIRST.plus(PERIOD.multipliedBy(3)));

        assertEquals(List.of("self part 1"), events);
        assertEquals(0, scheduler.pendingTasks(), "nothing left scheduled");
    }

    @Test
    void aRefusalOfTheFirstRunByAClosedSchedulerIsThrownAtTheCall() {
        // One after a cancel, from the component's close() shutting the scheduler it owns down, is ignored:
        // ClaimCheckOwnSchedulerCloseDuringSweepTest.
        Scheduler closed = Scheduler.system();
        closed.close();

        assertThrows(RejectedExecutionException.class, () -> Scheduler.repeat(closed, NAME, FIRST, PERIOD, () -> false),
                "a component built on a closed scheduler is told");
    }

    @Test
    void aNullArgumentOrAPeriodThatIsNotPositiveIsRefusedBeforeAnythingIsScheduledNamingTheArgumentAndTheTask() {
        Map<String, Executable> refused = Map.of(
                "test component: its periodic task: its period must be positive, but was PT0S",
                () -> Scheduler.repeat(scheduler, NAME, FIRST, Duration.ZERO, () -> false),
                "test component: its periodic task: its period must be positive, but was null",
                () -> Scheduler.repeat(scheduler, NAME, FIRST, null, () -> false),
                "test component: its periodic task: its first delay must not be null",
                () -> Scheduler.repeat(scheduler, NAME, null, PERIOD, () -> false),
                "test component: its periodic task: its part must not be null",
                () -> Scheduler.repeat(scheduler, NAME, FIRST, PERIOD, null),
                "test component: its periodic task: its scheduler must not be null",
                () -> Scheduler.repeat(null, NAME, FIRST, PERIOD, () -> false),
                "repeat: the name must not be null",
                () -> Scheduler.repeat(scheduler, null, FIRST, PERIOD, () -> false));
        refused.forEach((message, call) -> assertEquals(message,
                assertThrows(ConfigurationException.class, call, message).getMessage()));
        assertEquals(0, scheduler.pendingTasks());
    }
}
