package io.streamsaga.internal.codec;

/**
 * Finds, in JSON bytes as Jackson writes them, the escape of a lone surrogate (a UTF-16 surrogate that is not half of
 * a pair: malformed text), which Jackson reads back in a string value but refuses in a field name. Stateless.
 */
public final class JsonEscapes {
    private JsonEscapes() {
    }

    /**
     * Whether JSON {@code json} (UTF-8, as Jackson writes it: every surrogate escaped, {@code \uD83D\uDE00} for an
     * emoji) holds the escape of a lone surrogate, which Jackson reads back in a string value but refuses in a field
     * name. One scan, no allocation: {@link io.streamsaga.codec.JsonEventCodec#encode}, finding one, parses its bytes once to
     * learn whether they read back.
     */
    public static boolean holdsLoneSurrogateEscape(byte[] json) {
        for (int i = 0; i < json.length; i++) {
            if (json[i] != '\\') {
                continue;
            }
            int unit = escapedUnit(json, i);
            if (unit < 0) {
                i++; // another escape (\\, \"): its character is no escape's start
            } else if (Character.isHighSurrogate((char) unit)
                    && Character.isLowSurrogate((char) escapedUnit(json, i + 6))) {
                i += 11; // a pair
            } else if (Character.isSurrogate((char) unit)) {
                return true;
            } else {
                i += 5;
            }
        }
        return false;
    }

    /** The code unit of the escape at {@code at} (a backslash, {@code u} and four hex digits), or -1 when there is none. */
    private static int escapedUnit(byte[] json, int at) {
        if (at + 5 >= json.length || json[at] != '\\' || json[at + 1] != 'u') {
            return -1;
        }
        int unit = 0;
        for (int k = at + 2; k < at + 6; k++) {
            int digit = Character.digit(json[k], 16);
            if (digit < 0) {
                return -1;
            }
            unit = unit << 4 | digit;
        }
        return unit;
    }
}
