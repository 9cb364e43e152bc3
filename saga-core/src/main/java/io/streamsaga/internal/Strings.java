package io.streamsaga.internal;

/** String checks for constructors that run on every message or saga transition, and the bound of text for a header. Stateless. */
public final class Strings {
    private Strings() {
    }

    /**
     * {@code value != null && !value.isBlank()}, answering from the first character when it is printable
     * ASCII, as ids and names almost always start: {@code isBlank} scans with a per-character lookup.
     */
    public static boolean notBlank(String value) {
        if (value == null || value.isEmpty()) {
            return false;
        }
        char first = value.charAt(0);
        return (first > ' ' && first < 0x7f) || !value.isBlank();
    }

    /**
     * {@code value} as it is when it has at most {@code max} characters; otherwise its first {@code max} (one less
     * where that would split a surrogate pair), then {@code ... (N characters)} with its whole length. For text from
     * outside that goes into a header, where a huge one (an exception message holding a payload) would not fit.
     */
    public static String bounded(String value, int max) {
        if (value == null || value.length() <= max) {
            return value;
        }
        int end = Character.isHighSurrogate(value.charAt(max - 1)) ? max - 1 : max;
        return value.substring(0, end) + "... (" + value.length() + " characters)";
    }
}
