package io.streamsaga.message;

import io.streamsaga.ConfigurationException;

import java.nio.charset.StandardCharsets;
import java.util.UUID;

/**
 * Message ids derived from other ids, so that work done again (a retried handler, a redelivered message) publishes
 * under the same ids and is taken once downstream: the ids of a split's parts, of dead letters, and of what an
 * application publishes from a handler that may run twice (an aggregator's release). Stateless and thread-safe.
 */
public final class DerivedIds {
    private DerivedIds() {
    }

    /**
     * The name-based UUID of {@code parts} joined with '/', each part's '\' and '/' escaped with a '\': two different
     * lists of parts never give one name (a plain join gave {@code a/b} + {@code c} and {@code a} + {@code b/c} the
     * same), and parts holding neither character give the name of the plain join, so ids derived before stay as they
     * were.
     *
     * @throws ConfigurationException when there is no part, or a part is null
     */
    public static String uuidOf(String... parts) {
        return UUID.nameUUIDFromBytes(joined(parts).getBytes(StandardCharsets.UTF_8)).toString();
    }

    /**
     * The name {@link #uuidOf} derives its id from: {@code parts} joined with '/', each part's '\' and '/' escaped
     * with a '\', so that two different lists of parts never give one name, and parts holding neither character give
     * their plain join. For keys built of several names, such as an idempotent consumer's group and message id.
     *
     * @throws ConfigurationException when there is no part, or a part is null
     */
    public static String joined(String... parts) {
        if (parts == null || parts.length == 0) { // no parts and one empty part would both be the empty name
            throw new ConfigurationException("an id is derived from at least one part");
        }
        if (parts.length == 2 && parts[0] != null && parts[1] != null && plain(parts[0]) && plain(parts[1])) {
            return parts[0] + '/' + parts[1]; // the common case (a group and a message id), without a builder
        }
        StringBuilder name = new StringBuilder();
        for (int p = 0; p < parts.length; p++) {
            if (p > 0) {
                name.append('/');
            }
            String part = parts[p];
            if (part == null) {
                throw new ConfigurationException("part " + p + " of a derived id must not be null");
            }
            for (int i = 0, n = part.length(); i < n; i++) {
                char c = part.charAt(i);
                if (c == '/' || c == '\\') {
                    name.append('\\');
                }
                name.append(c);
            }
        }
        return name.toString();
    }

    private static boolean plain(String part) {
        return part.indexOf('/') < 0 && part.indexOf('\\') < 0;
    }
}
