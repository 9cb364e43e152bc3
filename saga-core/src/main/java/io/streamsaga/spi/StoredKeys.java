package io.streamsaga.spi;

import io.streamsaga.ConfigurationException;
import io.streamsaga.StreamSagaException;

/**
 * What every store refuses in an id, key or name it stores (a saga id, business key, step or node name, an
 * aggregator name and group key, a payload holder, a deduplication owner): the character U+0000 (NUL) and a lone
 * surrogate (a UTF-16 surrogate that is not half of a pair: malformed text). A durable store cannot keep them as they
 * are (PostgreSQL's text types refuse a NUL; its driver, which sends text as UTF-8, writes a lone surrogate as
 * {@code '?'}, so two values differing only there would be one), so the library's stores, in memory and durable,
 * refuse them alike with a {@link ConfigurationException} before storing anything, and a store of an application's
 * own is held to the same by the store contract suites of saga-core's test-jar. A read or a removal by such a value
 * finds nothing: none was ever stored. A well-formed pair (an emoji) is an ordinary character.
 *
 * <p>Each of these values also has a longest length every store keeps, the width of its column in the JDBC schema
 * (saga-jdbc's {@code JdbcSchema}, which a test there holds to these constants): a longer value is refused alike by every
 * store ({@link #requireStorable(String, int, String)}), so that a test on an in-memory store fails where a durable
 * one would. Lengths count UTF-16 code units ({@link String#length()}; an emoji counts two), which is at least the
 * characters a column counts, so a value within the limit always fits. Stateless.
 */
public final class StoredKeys {
    /** The longest saga id: {@code ss_saga.saga_id}. */
    public static final int MAX_SAGA_ID_LENGTH = 200;
    /** The longest saga name: {@code ss_saga.saga_name}. */
    public static final int MAX_SAGA_NAME_LENGTH = 200;
    /** The longest step name (of a step's state, a failure or a transition): {@code ss_saga_transition.step}. */
    public static final int MAX_STEP_NAME_LENGTH = 200;
    /** The longest business key of a saga: {@code ss_saga.business_key}. */
    public static final int MAX_BUSINESS_KEY_LENGTH = 500;
    /** The longest type id of saga data: {@code ss_saga.data_type}. */
    public static final int MAX_DATA_TYPE_LENGTH = 255;
    /** The longest class name of a saga's failure: {@code ss_saga.failure_class}. */
    public static final int MAX_FAILURE_CLASS_LENGTH = 500;
    /** The longest node id (a saga's owner, a heartbeat's node): {@code ss_saga.owner}, {@code ss_saga_node.node_id}. */
    public static final int MAX_NODE_ID_LENGTH = 200;
    /** The longest aggregator name: {@code ss_aggregation_group.aggregator}. */
    public static final int MAX_AGGREGATOR_NAME_LENGTH = 200;
    /** The longest aggregation group key: {@code ss_aggregation_group.group_key}. */
    public static final int MAX_GROUP_KEY_LENGTH = 500;
    /** The longest holder of a claim-checked payload (a message id): {@code ss_payload_holder.holder}. */
    public static final int MAX_HOLDER_LENGTH = 500;
    /**
     * The longest owner of a deduplication claim: {@code ss_dedup.owner}. A deduplication key has no limit: a durable
     * store keeps a longer one under a digest.
     */
    public static final int MAX_DEDUP_OWNER_LENGTH = 200;

    private StoredKeys() {
    }

    /**
     * Refuses {@code value} (null passes) when it is longer than {@code maxLength}, as in
     * "{@code <what> must be at most <maxLength> characters, but was '...'}", or when {@link #requireStorable(String,
     * String)} refuses it. One length check more than that: no allocation unless it refuses.
     *
     * @param maxLength the value's limit, one of this class's {@code MAX_*_LENGTH} constants
     * @throws ConfigurationException naming {@code what} and quoting a bounded prefix of the value
     */
    public static void requireStorable(String value, int maxLength, String what) {
        if (value != null && value.length() > maxLength) {
            throw new ConfigurationException(what + " must be at most " + maxLength + " characters, but was "
                    + StreamSagaException.quote(value));
        }
        requireStorable(value, what);
    }

    /**
     * Refuses {@code value} (null passes: nullability is the caller's rule) when it holds U+0000 or a lone surrogate,
     * as in "{@code <what> must not contain the character U+0000 (NUL) ..., but was '...'}"; the refusal of a lone
     * surrogate names its code unit and index.
     *
     * @param what what the value is, such as {@code "saga id"}
     * @throws ConfigurationException naming {@code what} and quoting a bounded prefix of the value
     *                                ({@link StreamSagaException#quote})
     */
    public static void requireStorable(String value, String what) {
        int unstorable = value == null ? -1 : firstUnstorable(value);
        if (unstorable < 0) {
            return;
        }
        char c = value.charAt(unstorable);
        if (c == '\0') {
            throw new ConfigurationException(what + " must not contain the character U+0000 (NUL), which a durable"
                    + " store cannot keep, but was " + StreamSagaException.quote(value));
        }
        throw new ConfigurationException(String.format("%s must not contain a lone surrogate (U+%04X at index %d, not"
                + " half of a pair: malformed UTF-16, which UTF-8 cannot carry), but was %s", what, (int) c, unstorable,
                StreamSagaException.quote(value)));
    }

    /** Whether {@code value} (null: no) holds U+0000 or a lone surrogate: no store holds a value that does. */
    public static boolean isUnstorable(String value) {
        return value != null && firstUnstorable(value) >= 0;
    }

    /**
     * The index of the first U+0000 or lone surrogate in {@code value}, or -1: one scan, no allocation (stores run it
     * for every id they write or read).
     */
    public static int firstUnstorable(String value) {
        return first(value, true);
    }

    /**
     * The index of the first lone surrogate in {@code value}, or -1 (a NUL is passed over): for text a store keeps in a
     * form that holds a NUL but not a lone surrogate (a name inside JSON text, written as an escape that JSON reads
     * back in a value but not in a name). One scan, no allocation.
     */
    public static int firstLoneSurrogate(String value) {
        return first(value, false);
    }

    private static int first(String value, boolean nul) {
        for (int i = 0, n = value.length(); i < n; i++) {
            char c = value.charAt(i);
            if (nul && c == '\0') {
                return i;
            }
            if (Character.isSurrogate(c)) {
                if (Character.isHighSurrogate(c) && i + 1 < n && Character.isLowSurrogate(value.charAt(i + 1))) {
                    i++;
                } else {
                    return i;
                }
            }
        }
        return -1;
    }
}
