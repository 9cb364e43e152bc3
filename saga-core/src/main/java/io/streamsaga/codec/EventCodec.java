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
     * Whether {@link #decode} can give a {@code target} at all. The bus refuses to subscribe a handler of a class this
     * says no to, whose every message would be dead-lettered. {@link JsonEventCodec} answers for what it binds:
     * {@link Message}, a {@link JsonNode} or a class of {@link #types()}. The default says yes to every class: a codec
     * that does not answer (one written before this method) binds what its {@link #decode} binds, which the bus cannot
     * know, and its handlers are taken as they were.
     */
    default boolean canDecodeTo(Class<?> target) {
        return true;
    }

    /**
     * Why {@code codec} cannot decode to {@code target} ({@link #canDecodeTo} said no), for the refusal of a handler of
     * that class (by the bus, {@code EventRouter} and {@code Reprocessor}, which give the same reason): registered but
     * not bound by the codec; not registered, with the call that registers it, for an application's class (annotated
     * with {@link EventType}, or outside the JDK's packages); for a JDK or generic type ({@code String}, {@code byte[]},
     * {@code Map}, {@code Object}), which is no event class to register, that the handler is to take the
     * {@link Message} or its {@link JsonNode} and read the payload.
     */
    static String whyCannotDecodeTo(EventCodec codec, Class<?> target) {
        EventTypeId id = codec.types().idOrNull(target);
        if (id != null) {
            return target.getName() + " is registered as " + id + ", which the codec does not decode to";
        }
        return TypeRegistry.isApplicationClass(target) ? "event class " + TypeRegistry.notRegistered(target)
                : target.getTypeName() + " is not an event class the registry can bind; take Message (its payload()) or"
                        + " JsonNode (the payload as a JSON tree) and read the value from it";
    }
}
