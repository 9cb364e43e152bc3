package io.streamsaga;

import org.junit.jupiter.api.function.Executable;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

/** What the library logs while a test runs an action: slf4j-simple, the tests' binding, writes to System.err. */
public final class CapturedLog {
    private CapturedLog() {
    }

    /** Runs {@code action} and returns what was logged meanwhile; System.err is restored after. */
    public static String during(Executable action) throws Throwable {
        PrintStream original = System.err;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8));
        try {
            action.execute();
        } finally {
            System.setErr(original);
        }
        return captured.toString(StandardCharsets.UTF_8);
    }
}
