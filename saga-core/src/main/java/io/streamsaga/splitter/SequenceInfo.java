package io.streamsaga.splitter;

import io.streamsaga.ConfigurationException;
import io.streamsaga.StreamSagaException;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * The sequence headers of one part, as written by {@link EventSplitter}. Immutable.
 *
 * @param sequenceId shared by every part of one split (correlates them)
 * @param number     the part's position, from 1
 * @param size       the number of parts, when known at the time this part was sent (always on the last)
 * @param last       whether this is the last part
 */
public record SequenceInfo(String sequenceId, int number, OptionalInt size, boolean last) {
    public SequenceInfo {
        ConfigurationException.require(sequenceId != null && !sequenceId.isBlank(),
                "sequence id must not be blank, but was %s", StreamSagaException.quote(sequenceId));
        ConfigurationException.require(number >= 1, "sequence number must be 1 or more, but was %s", number);
        ConfigurationException.require(size.isEmpty() || size.getAsInt() >= number,
                "sequence size %s is smaller than sequence number %s", text(size), number);
        ConfigurationException.require(!last || size.isPresent() && size.getAsInt() == number,
                "the last part must carry the sequence size equal to its number %s, but size was %s", number, text(size));
    }

    /**
     * The sequence headers that describe this part, as {@link EventSplitter} writes them and {@link #of} reads them
     * back (the size only when known). Give them to the event that answers a part (a worker's result for the part
     * it handled, published or appended to an outbox with these headers), so that an aggregator downstream
     * completes on the sequence's end over the results: {@code SequenceInfo.of(ctx.message()).map(SequenceInfo::headers)}.
     */
    public Map<String, String> headers() {
        Map<String, String> headers = new LinkedHashMap<>();
        headers.put(MessageHeaders.SEQUENCE_ID, sequenceId);
        headers.put(MessageHeaders.SEQUENCE_NUMBER, Integer.toString(number));
        if (size.isPresent()) {
            headers.put(MessageHeaders.SEQUENCE_SIZE, Integer.toString(size.getAsInt()));
        }
        headers.put(MessageHeaders.SEQUENCE_LAST, Boolean.toString(last));
        return Collections.unmodifiableMap(headers);
    }

    private static String text(OptionalInt size) {
        return size.isPresent() ? Integer.toString(size.getAsInt()) : "none";
    }

    /**
     * Reads the sequence headers of {@code message}; empty when it has none.
     *
     * @throws ConfigurationException when the headers are present but malformed; its message names the header and
     *                                quotes its value bounded ({@link StreamSagaException#quote}), never the message
     */
    public static Optional<SequenceInfo> of(Message message) {
        String id = message.headers().get(MessageHeaders.SEQUENCE_ID);
        if (id == null) {
            return Optional.empty();
        }
        int number = wholeNumber(message, MessageHeaders.SEQUENCE_NUMBER, id);
        String sizeHeader = message.headers().get(MessageHeaders.SEQUENCE_SIZE);
        OptionalInt size = sizeHeader == null ? OptionalInt.empty()
                : OptionalInt.of(wholeNumber(message, MessageHeaders.SEQUENCE_SIZE, id));
        boolean last = Boolean.parseBoolean(message.headers().get(MessageHeaders.SEQUENCE_LAST));
        return Optional.of(new SequenceInfo(id, number, size, last));
    }

    private static int wholeNumber(Message message, String header, String sequenceId) {
        String value = message.headers().get(header);
        try {
            return Integer.parseInt(value == null ? "" : value);
        } catch (NumberFormatException e) {
            throw new ConfigurationException(header + " " + StreamSagaException.quote(value) + " of sequence "
                    + StreamSagaException.quote(sequenceId) + " is not a whole number");
        }
    }
}
