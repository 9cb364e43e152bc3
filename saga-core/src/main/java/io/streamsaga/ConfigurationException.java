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
}
