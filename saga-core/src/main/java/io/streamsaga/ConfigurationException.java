package io.streamsaga;

/** A builder or definition was given an invalid or conflicting value; the message quotes the value. */
public class ConfigurationException extends StreamSagaException {
    private static final long serialVersionUID = 1L;

    public ConfigurationException(String message) {
        super(message, false);
    }

    /** Throws when {@code condition} is false, with a message built from the format and arguments. */
    public static void require(boolean condition, String format, Object... args) {
        if (!condition) {
            throw new ConfigurationException(String.format(format, args));
        }
    }

    /**
     * As {@link #require(boolean, String, Object...)} with one argument, without the varargs array: checks
     * on hot paths (every message's constructor) would otherwise allocate one per call wherever the JIT
     * does not inline them far enough to remove it.
     */
    public static void require(boolean condition, String format, Object arg) {
        if (!condition) {
            throw new ConfigurationException(String.format(format, arg));
        }
    }
}
