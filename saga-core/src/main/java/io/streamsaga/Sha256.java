package io.streamsaga;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * SHA-256 as the library computes it for the ids and keys it derives (an {@code IdempotentProducer}'s message ids,
 * the claim check's holders, a JDBC deduplication store's digested keys): one form everywhere, so that a module, or
 * an application computing the same id, gets the same digest. Stateless.
 */
public final class Sha256 {
    private Sha256() {
    }

    /** The SHA-256 of {@code bytes}, as 64 lowercase hexadecimal digits. */
    public static String hex(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is required by every JRE", e);
        }
    }

    /**
     * The SHA-256 of {@code text} ({@link #hex}): of its UTF-8 bytes when it is well-formed; of the byte 0xFF (never
     * found in UTF-8) then its UTF-16 code units, big-endian, when it holds a lone surrogate, which UTF-8 would turn
     * into '?' (two texts differing only there would share a digest). Distinct texts give distinct bytes.
     */
    public static String hexOfText(String text) {
        return hex(hasLoneSurrogate(text) ? utf16(text) : text.getBytes(StandardCharsets.UTF_8));
    }

    /** Whether a surrogate of {@code text} is not half of a pair: one scan, no allocation (this runs per send). */
    private static boolean hasLoneSurrogate(String text) {
        for (int i = 0, n = text.length(); i < n; i++) {
            char c = text.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < n && Character.isLowSurrogate(text.charAt(i + 1))) {
                i++;
            } else if (Character.isSurrogate(c)) {
                return true;
            }
        }
        return false;
    }

    private static byte[] utf16(String text) {
        ByteBuffer units = ByteBuffer.allocate(1 + 2 * text.length()).put((byte) 0xFF);
        for (int i = 0; i < text.length(); i++) {
            units.putChar(text.charAt(i));
        }
        return units.array();
    }
}
