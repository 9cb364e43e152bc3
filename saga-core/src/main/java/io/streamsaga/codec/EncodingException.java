package io.streamsaga.codec;

import io.streamsaga.StreamSagaException;

/** An event object could not be encoded (for example, Jackson cannot serialise one of its fields). */
public class EncodingException extends StreamSagaException {
    private static final long serialVersionUID = 1L;

    public EncodingException(String message, Throwable cause) {
        super(message, cause, false);
    }
}
