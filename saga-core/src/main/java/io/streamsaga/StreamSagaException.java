package io.streamsaga;

import io.streamsaga.internal.Strings;

/**
 * Root of every exception StreamSaga throws. Subclasses carry context (topic, offset, saga id, step)
 * and say whether repeating the failed operation can succeed, so callers decide by type, not by message.
 */
public class StreamSagaException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    /** How many characters of a refused value {@link #quote} keeps. */
    private static final int QUOTED = 64;
    private final boolean retriable;

    public StreamSagaException(String message, boolean retriable) {
        super(message);
        this.retriable = retriable;
    }

    public StreamSagaException(String message, Throwable cause, boolean retriable) {
        super(message, cause);
        this.retriable = retriable;
    }

    /**
     * {@code value} quoted for an exception's message or a log line: whole up to 64 characters, else its first 64
     * (never half a character) and its length, as {@code 'abc...' (1048576 characters)}; a control character shows
     * as its escape (a NUL as <code>&#92;u0000</code>, a line feed as <code>&#92;u000a</code>), and so does a lone
     * surrogate (half of a pair without the other half, which a log encoder writes as {@code ?}), null as
     * {@code null}. For values that come from outside (a topic, a key, a header): the message goes into logs and a
     * dead letter's headers, where a 1 MB value would go whole and a line break would start a forged log line.
     */
    public static String quote(String value) {
        if (value == null) {
            return "null";
        }
        if (value.length() <= QUOTED) {
            return "'" + visible(value) + "'";
        }
        int end = Character.isHighSurrogate(value.charAt(QUOTED - 1)) ? QUOTED - 1 : QUOTED;
        return "'" + visible(value.substring(0, end)) + "...' (" + value.length() + " characters)";
    }

    /**
     * {@link Strings#bounded}, for a subclass whose message goes into a dead letter's
     * {@link io.streamsaga.message.MessageHeaders#DLT_ERROR_MESSAGE} header, bounded as the bus bounds its own there
     * ({@link io.streamsaga.message.MessageHeaders#DLT_ERROR_MESSAGE_MAX_LENGTH}): {@code value} as it is when it has
     * at most {@code max} characters; otherwise its first {@code max} (one less where that would split a surrogate
     * pair), then {@code ... (N characters)} with its whole length; null as null. Protected, not public: the library's
     * exceptions in packages that may not import the engine's internals (the aggregator's) need it, callers do not.
     */
    protected static String bounded(String value, int max) {
        return Strings.bounded(value, max);
    }

    /**
     * {@code value} with each control character (U+0000 to U+001F, U+007F to U+009F) and each lone surrogate written
     * as its escape.
     */
    private static String visible(String value) {
        int first = 0;
        while (first < value.length() && !escaped(value, first)) {
            first++;
        }
        if (first == value.length()) {
            return value;
        }
        StringBuilder shown = new StringBuilder(value.length() + 16).append(value, 0, first);
        for (int i = first; i < value.length(); i++) {
            char c = value.charAt(i);
            if (escaped(value, i)) {
                shown.append(String.format("\\u%04x", (int) c));
            } else {
                shown.append(c);
            }
        }
        return shown.toString();
    }

    private static boolean escaped(String value, int i) {
        char c = value.charAt(i);
        if (Character.isISOControl(c)) {
            return true;
        }
        if (Character.isHighSurrogate(c)) {
            return i + 1 >= value.length() || !Character.isLowSurrogate(value.charAt(i + 1));
        }
        return Character.isLowSurrogate(c) && (i == 0 || !Character.isHighSurrogate(value.charAt(i - 1)));
    }

    /** Whether trying the same operation again may succeed (a broker outage) or cannot (bad input). */
    public boolean isRetriable() {
        return retriable;
    }
}
