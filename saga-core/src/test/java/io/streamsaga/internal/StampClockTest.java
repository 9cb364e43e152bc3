package io.streamsaga.internal;

import org.junit.jupiter.api.Test;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class StampClockTest {

    @Test
    void anyClockButTheSystemClockIsReadOnEveryStampAndNeverTicks() {
        Instant fixed = Instant.parse("2026-01-02T03:04:05.123456789Z");
        StampClock clock = new StampClock(Clock.fixed(fixed, ZoneOffset.UTC), "test-clock");

        for (int i = 0; i < 10 * StampClock.HOT_PER_MILLI; i++) {
            assertEquals(fixed, clock.now(), "exact, not truncated to the millisecond");
        }
        assertFalse(clock.ticking());
    }

    @Test
    void sparseStampsOnTheSystemClockAreTheCurrentMillisecond() {
        try (StampClock clock = new StampClock(Clock.systemUTC(), "test-clock")) {
            Instant before = Instant.ofEpochMilli(System.currentTimeMillis());
            Instant stamp = clock.now();
            Instant after = Instant.ofEpochMilli(System.currentTimeMillis());

            assertEquals(0, stamp.getNano() % 1_000_000, "whole milliseconds: " + stamp);
            assertTrue(!stamp.isBefore(before) && !stamp.isAfter(after), stamp + " outside " + before + ".." + after);
            assertFalse(clock.ticking());
        }
    }

    @Test
    void hotStampingStartsATickerThatStopsItselfOnceStampingStops() {
        try (StampClock clock = new StampClock(Clock.systemUTC(), "test-clock")) {
            // Stamp until the ticker runs: many stamps within one millisecond start it.
            await().atMost(Duration.ofSeconds(10)).until(() -> {
                for (int i = 0; i < 10 * StampClock.HOT_PER_MILLI; i++) {
                    clock.now();
                }
                return clock.ticking();
            });
            for (int i = 0; i < 1_000; i++) {
                Instant stamp = clock.now();
                assertEquals(0, stamp.getNano() % 1_000_000, "whole milliseconds: " + stamp);
                assertFalse(stamp.isAfter(Instant.ofEpochMilli(System.currentTimeMillis())), "never ahead: " + stamp);
            }

            // Nobody stamps: the ticker stops by itself, and stamps are read from the clock again.
            await().atMost(Duration.ofSeconds(10)).until(() -> !clock.ticking());
            Instant before = Instant.ofEpochMilli(System.currentTimeMillis());
            Instant stamp = clock.now();
            Instant after = Instant.ofEpochMilli(System.currentTimeMillis());
            assertTrue(!stamp.isBefore(before) && !stamp.isAfter(after), stamp + " outside " + before + ".." + after);
        }
    }

    @Test
    void aClosedClockStartsNoTicker() {
        StampClock clock = new StampClock(Clock.systemUTC(), "test-clock");
        clock.close();

        Instant before = Instant.ofEpochMilli(System.currentTimeMillis());
        for (int i = 0; i < 100 * StampClock.HOT_PER_MILLI; i++) {
            clock.now();
        }
        Instant stamp = clock.now();

        assertFalse(clock.ticking());
        assertFalse(stamp.isBefore(before), stamp + " before " + before);
    }
}
