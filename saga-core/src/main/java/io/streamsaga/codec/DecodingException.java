package io.streamsaga.codec;

import io.streamsaga.StreamSagaException;

/**
 * A message could not be turned into the object its handler expects: malformed JSON, an unknown type,
 * or a version with no upcaster path. Never retriable; the bus dead-letters the message with this reason.
 */
public class DecodingException extends StreamSagaException {
    private static final long serialVersionUID = 1L;

    public DecodingException(String message) {
        super(message, false);
    }

    public DecodingException(String message, Throwable cause) {
        super(message, cause, false);
    }
}
