package io.streamsaga.splitter;

import io.streamsaga.ConfigurationException;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;

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
                "sequence id must not be blank, but was '%s'", sequenceId);
        ConfigurationException.require(number >= 1, "sequence number must be 1 or more, but was %s", number);
        ConfigurationException.require(size.isEmpty() || size.getAsInt() >= number,
                "sequence size %s is smaller than sequence number %s", size, number);
        ConfigurationException.require(!last || size.isPresent() && size.getAsInt() == number,
                "the last part must carry the sequence size equal to its number %s, but size was %s", number, size);
    }

    /**
     * Reads the sequence headers of {@code message}; empty when it has none.
     *
     * @throws ConfigurationException when the headers are present but malformed
     */
    public static Optional<SequenceInfo> of(Message message) {
        String id = message.headers().get(MessageHeaders.SEQUENCE_ID);
        if (id == null) {
            return Optional.empty();
        }
        try {
            int number = Integer.parseInt(message.headers().getOrDefault(MessageHeaders.SEQUENCE_NUMBER, ""));
            String sizeHeader = message.headers().get(MessageHeaders.SEQUENCE_SIZE);
            OptionalInt size = sizeHeader == null ? OptionalInt.empty() : OptionalInt.of(Integer.parseInt(sizeHeader));
            boolean last = Boolean.parseBoolean(message.headers().get(MessageHeaders.SEQUENCE_LAST));
            return Optional.of(new SequenceInfo(id, number, size, last));
        } catch (NumberFormatException e) {
            throw new ConfigurationException("malformed sequence headers on " + message + ": " + e.getMessage());
        }
    }
}
