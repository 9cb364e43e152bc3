package io.streamsaga.inmemory;

import io.streamsaga.ConfigurationException;
import io.streamsaga.time.Scheduler;
import org.junit.jupiter.api.Test;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class VirtualSchedulerTest {
    private static final Instant START = Instant.parse("2026-01-01T00:00:00Z");

    @Test
    void tasksRunInDueOrderWhenTimeAdvancesAndSeeTheirDueTime() {
        VirtualScheduler scheduler = new VirtualScheduler(START);
        List<String> ran = new ArrayList<>();
        scheduler.schedule(Duration.ofSeconds(3), () -> ran.add("c@" + scheduler.now()));
        scheduler.schedule(Duration.ofSeconds(1), () -> ran.add("a@" + scheduler.now()));
        scheduler.schedule(Duration.ofSeconds(1), () -> ran.add("b@" + scheduler.now()));

        scheduler.advance(Duration.ofSeconds(2));
        assertEquals(List.of("a@2026-01-01T00:00:01Z", "b@2026-01-01T00:00:01Z"), ran);
        assertEquals(START.plusSeconds(2), scheduler.now());
        assertEquals(1, scheduler.pendingTasks());

        scheduler.advance(Duration.ofSeconds(5));
        assertEquals("c@2026-01-01T00:00:03Z", ran.get(2));
        assertEquals(START.plusSeconds(7), scheduler.now());
    }

    @Test
    void aTaskScheduledByATaskRunsInTheSameAdvanceWhenItFallsDue() {
        VirtualScheduler scheduler = new VirtualScheduler(START);
        List<Instant> ran = new ArrayList<>();
        scheduler.schedule(Duration.ofSeconds(1), () -> {
            ran.add(scheduler.now());
            scheduler.schedule(Duration.ofSeconds(1), () -> ran.add(scheduler.now()));
        });
        scheduler.advance(Duration.ofSeconds(10));
        assertEquals(List.of(START.plusSeconds(1), START.plusSeconds(2)), ran);
    }

    @Test
    void cancelledTasksNeverRun() {
        VirtualScheduler scheduler = new VirtualScheduler(START);
        List<String> ran = new ArrayList<>();
        Scheduler.Cancellable timeout = scheduler.schedule(Duration.ofSeconds(1), () -> ran.add("timeout"));
        timeout.cancel();
        scheduler.advance(Duration.ofMinutes(1));
        assertEquals(List.of(), ran);
        assertEquals(0, scheduler.pendingTasks());
    }

    @Test
    void cancellingEveryOtherOfManyPendingTasksLeavesTheOthersToRunInDueThenSchedulingOrder() {
        // a component closing with its timers pending (a flow tracker's deadline checks, an aggregator's deadlines)
        // cancels each; the pending set is sorted by due time then scheduling order, and a cancel takes out only its
        // own task, also among many due at one instant. A cancel of a task that already ran changes nothing.
        VirtualScheduler scheduler = new VirtualScheduler(START);
        int pending = 1_000;
        List<Scheduler.Cancellable> handles = new ArrayList<>();
        List<Integer> ran = new ArrayList<>();
        for (int i = 0; i < pending; i++) {
            int n = i;
            handles.add(scheduler.schedule(Duration.ofSeconds(1 + i % 10), () -> ran.add(n)));
        }

        for (int i = 0; i < pending; i += 2) {
            handles.get(i).cancel();
        }
        assertEquals(pending / 2, scheduler.pendingTasks());
        scheduler.advance(Duration.ofSeconds(10));

        List<Integer> expected = new ArrayList<>();
        for (int second = 1; second <= 10; second++) {
            for (int i = 0; i < pending; i++) {
                if (i % 2 == 1 && 1 + i % 10 == second) {
                    expected.add(i);
                }
            }
        }
        assertEquals(expected, ran);
        handles.forEach(Scheduler.Cancellable::cancel); // all ran or were cancelled already
        assertEquals(0, scheduler.pendingTasks());
    }

    @Test
    void sleepAdvancesVirtualTimeInsteadOfBlocking() {
        VirtualScheduler scheduler = new VirtualScheduler(START);
        scheduler.sleep(Duration.ofHours(5));
        assertEquals(START.plus(Duration.ofHours(5)), scheduler.now());
    }

    @Test
    void timeNeverMovesBackwards() {
        VirtualScheduler scheduler = new VirtualScheduler(START);
        scheduler.advanceTo(START.plusSeconds(10));
        scheduler.advanceTo(START);
        scheduler.sleep(Duration.ofSeconds(-5)); // a delay, taken as schedule takes it: negative as zero
        assertEquals(START.plusSeconds(10), scheduler.now());
    }

    @Test
    void aNegativeOrNullAdvanceIsRefusedNamingItRatherThanTakenAsZero() {
        VirtualScheduler scheduler = new VirtualScheduler(START);
        List<String> ran = new ArrayList<>();
        scheduler.schedule(Duration.ZERO, () -> ran.add("due now"));

        ConfigurationException negative = assertThrows(ConfigurationException.class,
                () -> scheduler.advance(Duration.ofSeconds(-5)));
        ConfigurationException none = assertThrows(ConfigurationException.class, () -> scheduler.advance(null));

        assertEquals("advance(Duration) cannot move the virtual clock backwards: its duration must be zero or positive,"
                + " but was PT-5S", negative.getMessage());
        assertTrue(none.getMessage().endsWith("but was null"), none.getMessage());
        assertEquals(List.of(), ran, "a refused advance ran the due tasks");
        assertEquals(START, scheduler.now());
    }

    @Test
    void dueTasksRunWithoutMovingTime() {
        VirtualScheduler scheduler = new VirtualScheduler(START);
        List<String> ran = new ArrayList<>();
        scheduler.schedule(Duration.ZERO, () -> ran.add("now"));
        scheduler.runDueTasks();
        assertEquals(List.of("now"), ran);
        assertEquals(START, scheduler.now());
    }

    @Test
    void theClockAndItsZoneViewsFollowVirtualTime() {
        VirtualScheduler scheduler = new VirtualScheduler(START);
        Clock clock = scheduler.clock();
        Clock saigon = clock.withZone(ZoneId.of("Asia/Ho_Chi_Minh"));
        scheduler.advance(Duration.ofMinutes(3));
        assertEquals(START.plusSeconds(180), clock.instant());
        assertEquals(START.plusSeconds(180), saigon.instant());
        assertEquals(ZoneId.of("Asia/Ho_Chi_Minh"), saigon.getZone());
    }

    @Test
    void runNextRunsOneTaskAtATimeAlsoAmongTasksDueAtTheSameInstant() {
        VirtualScheduler scheduler = new VirtualScheduler(START);
        List<String> ran = new ArrayList<>();
        scheduler.schedule(Duration.ofSeconds(5), () -> ran.add("first"));
        scheduler.schedule(Duration.ofSeconds(5), () -> ran.add("second"));
        scheduler.schedule(Duration.ofSeconds(9), () -> ran.add("later"));

        assertFalse(scheduler.runNext(START.plusSeconds(4)));
        assertEquals(START, scheduler.now(), "nothing due: the clock does not move");
        assertTrue(scheduler.runNext(START.plusSeconds(8)));
        assertEquals(List.of("first"), ran);
        assertEquals(START.plusSeconds(5), scheduler.now());
        assertTrue(scheduler.runNext(START.plusSeconds(8)));
        assertFalse(scheduler.runNext(START.plusSeconds(8)));
        assertEquals(List.of("first", "second"), ran);
        assertEquals(START.plusSeconds(5), scheduler.now());
    }

    @Test
    void aNullDelayOrTaskIsRefusedNamingItWhereItIsGivenNotWhenTimeAdvancesAndANegativeDelayIsStillTakenAsZero() {
        // A null task was accepted and threw a NullPointerException from advance(), in the test's next step; a null
        // delay threw one from inside Instant.plus.
        VirtualScheduler scheduler = new VirtualScheduler(START);
        ConfigurationException delay = assertThrows(ConfigurationException.class, () -> scheduler.schedule(null, () -> { }));
        assertEquals("schedule(Duration, Runnable): the delay must not be null (a negative one is taken as zero)",
                delay.getMessage());
        ConfigurationException task = assertThrows(ConfigurationException.class, () -> scheduler.schedule(Duration.ZERO, null));
        assertEquals("schedule(Duration, Runnable): the task must not be null", task.getMessage());
        ConfigurationException sleep = assertThrows(ConfigurationException.class, () -> scheduler.sleep(null));
        assertEquals("sleep(Duration): the delay must not be null (a negative one is taken as zero)", sleep.getMessage());
        ConfigurationException after = assertThrows(ConfigurationException.class, () -> scheduler.after(null));
        assertEquals("after(Duration): the delay must not be null (a negative one is taken as zero)", after.getMessage());
        assertEquals(0, scheduler.pendingTasks());

        List<Instant> ran = new ArrayList<>();
        scheduler.schedule(Duration.ofSeconds(-1), () -> ran.add(scheduler.now()));
        scheduler.runDueTasks();
        assertEquals(List.of(START), ran);
    }

    @Test
    void aNullInstantToAdvanceToOrRunUpToIsRefusedNamingItAndNoTaskRuns() {
        // Both threw a bare NullPointerException from inside Instant.isAfter (advanceTo only when a task was pending).
        VirtualScheduler scheduler = new VirtualScheduler(START);
        List<String> ran = new ArrayList<>();
        scheduler.schedule(Duration.ofSeconds(1), () -> ran.add("task"));
        ConfigurationException advanceTo = assertThrows(ConfigurationException.class, () -> scheduler.advanceTo(null));
        assertEquals("advanceTo(Instant): the target must not be null", advanceTo.getMessage());
        ConfigurationException runNext = assertThrows(ConfigurationException.class, () -> scheduler.runNext(null));
        assertEquals("runNext(Instant): the limit must not be null", runNext.getMessage());
        assertEquals(List.of(), ran);
        assertEquals(START, scheduler.now());
        assertEquals(1, scheduler.pendingTasks());
    }
}
