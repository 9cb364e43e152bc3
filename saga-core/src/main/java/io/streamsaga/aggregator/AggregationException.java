package io.streamsaga.aggregator;

import io.streamsaga.StreamSagaException;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.splitter.SequenceInfo;

/**
 * A part the aggregator cannot take. Late parts, uncorrelated messages, parts that do not fit their sequence and
 * parts whose sequence headers describe no part of a sequence are not retriable (the bus dead-letters them at
 * once); a lost optimistic-concurrency race that kept repeating is, and so is a part of a group whose outcome is
 * under way (it may reopen the group). Messages quote the group key, the sequence id and the message ids, which
 * come from the message, bounded ({@link #quote}): a 1 MB key or id does not go whole into logs and a dead letter's
 * headers; {@link #key()} keeps the key whole.
 */
public class AggregationException extends StreamSagaException {
    private static final long serialVersionUID = 1L;
    private final String aggregator;
    private final String key;

    private AggregationException(String message, String aggregator, String key, boolean retriable) {
        super(message, retriable);
        this.aggregator = aggregator;
        this.key = key;
    }

    /** A part arrived for a group that was already released, timed out or dead-lettered. */
    public static AggregationException latePart(String aggregator, String key, GroupState state, String messageId) {
        return new AggregationException("late part " + quote(messageId) + " for group " + quote(key) + " of aggregator '"
                + aggregator + "', which is already " + state, aggregator, key, false);
    }

    /**
     * A part arrived for a group whose release or timeout outcome is under way: retriable, as the outcome may
     * fail and reopen the group (the retry then adds the part), or be recorded (the retry finds a late part).
     * Should the bus's retries run out first, the part is dead-lettered with this error; replaying it once the
     * outcome is recorded adds it to a reopened group or finds it late.
     */
    public static AggregationException closing(String aggregator, String key, GroupState state, String messageId) {
        return new AggregationException("part " + quote(messageId) + " arrived for group " + quote(key) + " of aggregator '"
                + aggregator + "' while it is " + state + "; retry once its outcome is recorded", aggregator, key, true);
    }

    /** The correlation function found no key in the message. */
    public static AggregationException uncorrelated(String aggregator, String messageId) {
        return new AggregationException("message " + quote(messageId) + " has no correlation key for aggregator '"
                + aggregator + "'", aggregator, null, false);
    }

    /** A part of a splitter's sequence does not fit the size the group's parts of that sequence carry. */
    public static AggregationException outOfSequence(String aggregator, String key, String messageId,
                                                     SequenceInfo part, int size) {
        return new AggregationException("part " + quote(messageId) + " of sequence " + quote(part.sequenceId()) + " (number "
                + part.number() + ", size " + (part.size().isPresent() ? part.size().getAsInt() : "?")
                + ") does not fit the size " + size + " the group " + quote(key) + " of aggregator '" + aggregator
                + "' knows", aggregator, key, false);
    }

    /**
     * A part carries sequence headers that describe no part of a splitter's sequence: a blank sequence id, a
     * number that is not a whole number from 1, a size that is not a whole number or is below the number, or the
     * last part's mark with a size other than its number. Quotes the key and the headers' values bounded, as they
     * come from the message.
     */
    static AggregationException malformedSequence(String aggregator, String key, String messageId, String sequenceId,
                                                  String number, String size, String last) {
        return new AggregationException("part " + quote(messageId) + " of group " + quote(key) + " of aggregator '"
                + aggregator + "' carries sequence headers that describe no part of a sequence (sequence-id "
                + quote(sequenceId) + ", sequence-number " + quote(number) + ", sequence-size " + quote(size)
                + ", sequence-last " + quote(last) + "): a sequence's parts are numbered from 1 to its size, "
                + "the last one carrying a size equal to its number", aggregator, key, false);
    }

    /**
     * A part of a splitter's sequence carries the number of another part of the group (under another message id):
     * each number is one part, so it is a faulty producer's, or a split published again under new ids.
     */
    public static AggregationException duplicateNumber(String aggregator, String key, String messageId,
                                                       SequenceInfo part, String holder) {
        return new AggregationException("part " + quote(messageId) + " of sequence " + quote(part.sequenceId()) + " has number "
                + part.number() + ", which part " + quote(holder) + " of group " + quote(key) + " of aggregator '" + aggregator
                + "' already holds", aggregator, key, false);
    }

    /** Other writers kept changing the group between read and save. */
    public static AggregationException contended(String aggregator, String key, int attempts) {
        return new AggregationException("group " + quote(key) + " of aggregator '" + aggregator
                + "' changed concurrently " + attempts + " times in a row", aggregator, key, true);
    }

    /**
     * The release of a complete group kept failing for {@code keepClosed} (retried at every timeout) and its parts
     * were dead-lettered; carries the release's last error whole, as the bus's dead letters carry a handler's, and
     * after it its root cause's class and message when the error's own text does not name them: the cause, a
     * registry's {@code UnknownEventTypeException} under the {@code PublishException} of the release's publish, is
     * what an operator acts on. The message goes into the dead letters' {@code dlt-error-message} header, so it is
     * bounded as theirs is ({@link MessageHeaders#DLT_ERROR_MESSAGE_MAX_LENGTH} characters, then the length): the
     * error is cut to leave room for the root cause, itself bounded to half of that.
     */
    static AggregationException releaseFailed(String aggregator, String key, int parts, java.time.Duration keepClosed,
                                              Exception failure) {
        String failed = "group " + quote(key) + " of aggregator '" + aggregator + "' was complete with " + parts
                + " part(s) but its release kept failing for " + keepClosed + " (keepClosed), last with " + failure;
        String carried = bounded(failed, MessageHeaders.DLT_ERROR_MESSAGE_MAX_LENGTH);
        Throwable root = rootCause(failure);
        if (root == failure || carried.contains(root.toString())) {
            return new AggregationException(carried, aggregator, key, false);
        }
        String rootCause = "; root cause " + bounded(root.toString(), MessageHeaders.DLT_ERROR_MESSAGE_MAX_LENGTH / 2);
        return new AggregationException(bounded(failed, MessageHeaders.DLT_ERROR_MESSAGE_MAX_LENGTH - rootCause.length())
                + rootCause, aggregator, key, false);
    }

    /** The last cause of {@code error}'s chain, {@code error} itself when it has none (a cycle ends the walk). */
    private static Throwable rootCause(Throwable error) {
        Throwable root = error;
        java.util.Set<Throwable> seen = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
        while (root.getCause() != null && seen.add(root)) {
            root = root.getCause();
        }
        return root;
    }

    /** The timeout struck and the policy dead-lettered the group's parts. */
    public static AggregationException timedOut(String aggregator, String key, int parts) {
        return new AggregationException("group " + quote(key) + " of aggregator '" + aggregator + "' timed out with "
                + parts + " part(s)", aggregator, key, false);
    }

    public String aggregator() {
        return aggregator;
    }

    /** The correlation key, or null when there was none. */
    public String key() {
        return key;
    }
}
