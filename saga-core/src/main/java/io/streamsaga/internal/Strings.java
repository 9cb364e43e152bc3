package io.streamsaga.internal;

/** String checks for constructors that run on every message or saga transition. Stateless. */
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
}
