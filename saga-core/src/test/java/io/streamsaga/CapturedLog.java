package io.streamsaga;

import org.junit.jupiter.api.function.Executable;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What the library logs while a test runs an action: slf4j-simple, the tests' binding, writes to System.err. System.err
 * is the whole JVM's, so a thread an earlier test left behind may log meanwhile; each method keeps only the entries of
 * what the test looks at, by slf4j-simple's format ({@code [thread] LEVEL logger - message}, then the stack trace of a
 * throwable, written as one piece), so that a test can count them.
 */
public final class CapturedLog {
    private static final Pattern ENTRY = Pattern.compile("^\\[(.*?)] (TRACE|DEBUG|INFO|WARN|ERROR) (\\S+) - ");

    private CapturedLog() {
    }

    /**
     * Runs {@code action} and returns the entries logged meanwhile on the thread that runs it (the caller's), each with
     * the lines that follow it (a stack trace); System.err is restored after.
     */
    public static String ofThisThread(Executable action) throws Throwable {
        String thread = Thread.currentThread().getName();
        return entries(action, entry -> entry.group(1).equals(thread));
    }

    /**
     * {@link #ofThisThread}, with the DEBUG lines of every logger on this thread written meanwhile whatever slf4j-simple's
     * level; only under the tests' {@link MdcTestLoggingProvider} (the modules whose surefire configuration names it):
     * elsewhere the DEBUG lines stay off.
     */
    public static String ofThisThreadAtDebug(Executable action) throws Throwable {
        MdcTestLoggingProvider.debugOnThisThread(true);
        try {
            return ofThisThread(action);
        } finally {
            MdcTestLoggingProvider.debugOnThisThread(false);
        }
    }

    /**
     * Runs {@code action} and returns the entries of the logger named {@code logger} (slf4j's name, the class's for
     * {@code LoggerFactory.getLogger(Class)}), on any thread, logged meanwhile; System.err is restored after.
     */
    public static String ofLogger(String logger, Executable action) throws Throwable {
        return entries(action, entry -> entry.group(3).equals(logger));
    }

    private static String entries(Executable action, Predicate<Matcher> kept) throws Throwable {
        PrintStream original = System.err;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8));
        try {
            action.execute();
        } finally {
            System.setErr(original);
        }
        StringBuilder log = new StringBuilder();
        boolean keeping = false;
        for (String line : captured.toString(StandardCharsets.UTF_8).split("\\R")) {
            Matcher entry = ENTRY.matcher(line);
            if (entry.find()) {
                keeping = kept.test(entry);
            }
            if (keeping) { // an entry's first line, or one that follows it (its stack trace)
                log.append(line).append(System.lineSeparator());
            }
        }
        return log.toString();
    }
}
