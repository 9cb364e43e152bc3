package io.streamsaga.codec;

import com.fasterxml.jackson.databind.JsonNode;
import io.streamsaga.message.Message;

/**
 * Turns event objects into wire bytes and messages back into the objects handlers expect, applying the
 * registry's upcasters on the way in. {@link JsonEventCodec} is the default. Thread-safe.
 */
public interface EventCodec {

    /** The registry of type ids, versions and upcasters this codec uses. */
    TypeRegistry types();

    /** Encodes an event object (or passes {@code byte[]} through unchanged). */
    byte[] encode(Object payload);

    /** The payload (object or encoded bytes) as a JSON tree, not upcast. */
    JsonNode toTree(Object payload);

    /**
     * Decodes the message's payload into {@code target}: {@link Message} gives the message itself,
     * {@link JsonNode} the tree upcast to the latest known version, a registered class its version
     * (upcasting older payloads).
     *
     * @throws DecodingException when that is impossible; the message must then be dead-lettered
     */
    <T> T decode(Message message, Class<T> target);

    /**
     * Whether {@link #decode} can give a {@code target} at all: {@link Message}, a {@link JsonNode} or a class of
     * {@link #types()} by default. The bus refuses to subscribe a handler of any other class, whose every message would
     * be dead-lettered; a codec that binds more classes says so here.
     */
    default boolean canDecodeTo(Class<?> target) {
        return target == Message.class || JsonNode.class.isAssignableFrom(target) || types().findIdOf(target).isPresent();
    }
}
