package io.streamsaga;

import org.junit.jupiter.api.Test;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** CapturedLog keeps what a test looks at, not what another thread logs meanwhile on the JVM's one System.err. */
class CapturedLogTest {
    private static final Logger UNDER_TEST = LoggerFactory.getLogger("io.streamsaga.CapturedLogTest.underTest");
    private static final Logger ELSEWHERE = LoggerFactory.getLogger("io.streamsaga.CapturedLogTest.elsewhere");

    /** Logs on the caller's thread, then on another thread (an earlier test's leftover, say), and waits for it. */
    private static void logHereAndOnAnotherThread() throws InterruptedException {
        UNDER_TEST.warn("logged here", new IllegalStateException("why"));
        Thread other = new Thread(() -> ELSEWHERE.warn("logged by a thread left behind"), "left-behind");
        other.start();
        other.join();
    }

    @Test
    void theEntriesOfTheCapturingThreadAreKeptWithTheirStackTracesAndNoneOfAnotherThread() throws Throwable {
        String log = CapturedLog.ofThisThread(CapturedLogTest::logHereAndOnAnotherThread);

        String first = "[" + Thread.currentThread().getName() + "] WARN io.streamsaga.CapturedLogTest.underTest"
                + " - logged here";
        assertEquals(first, log.lines().findFirst().orElseThrow(), log);
        assertEquals("java.lang.IllegalStateException: why", log.lines().skip(1).findFirst().orElseThrow(), log);
        assertEquals(0, log.lines().filter(line -> line.contains("left behind")).count(), log);
        assertEquals(1, log.lines().filter(line -> line.startsWith("[")).count(), log);
    }

    @Test
    void theEntriesOfTheLoggerUnderTestAreKeptOnAnyThreadAndNoneOfAnotherLogger() throws Throwable {
        String log = CapturedLog.ofLogger("io.streamsaga.CapturedLogTest.elsewhere",
                CapturedLogTest::logHereAndOnAnotherThread);

        assertEquals("[left-behind] WARN io.streamsaga.CapturedLogTest.elsewhere - logged by a thread left behind"
                + System.lineSeparator(), log);
    }
}
