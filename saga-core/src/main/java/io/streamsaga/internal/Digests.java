package io.streamsaga.internal;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/** SHA-256 in lower-case hex, the one digest the library uses for content addresses and derived ids. Stateless. */
public final class Digests {
    private Digests() {
    }

    /** The SHA-256 of {@code bytes}, as 64 lower-case hex characters. */
    public static String sha256Hex(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is required by every JRE", e);
        }
    }

    /** The SHA-256 of {@code text} encoded as UTF-8, as 64 lower-case hex characters. */
    public static String sha256Hex(String text) {
        return sha256Hex(text.getBytes(StandardCharsets.UTF_8));
    }
}
