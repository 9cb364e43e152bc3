package io.streamsaga.codec;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.Module;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectReader;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.cfg.JsonNodeFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.util.TokenBuffer;
import io.streamsaga.StreamSagaException;
import io.streamsaga.internal.codec.IsoJavaTimeModule;
import io.streamsaga.internal.codec.JsonEscapes;
import io.streamsaga.message.Message;

import java.io.IOException;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * The default {@link EventCodec}: Jackson JSON. Unknown JSON properties are ignored (a newer producer may
 * add fields); dates are written as ISO-8601 strings. The default mapper handles {@code java.time} values in
 * events and saga data out of the box: {@code Instant}, {@code LocalDate}, {@code LocalDateTime},
 * {@code LocalTime}, {@code OffsetDateTime}, {@code ZonedDateTime} and {@code Duration} are written as ISO-8601
 * strings ({@code "2024-05-01T10:15:30Z"}, {@code "PT1.5S"}; a zoned value keeps its zone,
 * {@code "...+02:00[Europe/Paris]"}) and read back equal, offset and zone kept. When
 * {@code com.fasterxml.jackson.datatype:jackson-datatype-jsr310} is on the classpath the default mapper
 * registers its {@code JavaTimeModule} instead ({@link ObjectMapper#findAndRegisterModules()}) and the
 * built-in support is left out, so an application that has it keeps jsr310's behaviour (with which a
 * {@code Duration} is written as decimal seconds and offset and zoned values are read back adjusted to UTC).
 * Other {@code java.time} types ({@code ZoneId}, {@code Period}, {@code Year}...) still need jsr310: without
 * it they fail to encode with an {@link EncodingException} naming that module. Thread-safe.
 */
public final class JsonEventCodec implements EventCodec {
    private final ObjectMapper mapper;
    private final TypeRegistry types;
    /**
     * Reads payload bytes into trees with decimals exact (digits and scale): a tree read the default way
     * holds a JSON decimal as a double, so an upcast event or a JSON-tree handler would lose the digits of
     * a {@code BigDecimal} amount beyond a double's 17 and its trailing zeros.
     */
    private final ObjectReader treeReader;

    public JsonEventCodec(TypeRegistry types) {
        this(defaultMapper(), types);
    }

    public JsonEventCodec(ObjectMapper mapper, TypeRegistry types) {
        this.mapper = Objects.requireNonNull(mapper, "mapper");
        this.types = Objects.requireNonNull(types, "types");
        this.treeReader = mapper.reader().with(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS)
                .without(JsonNodeFeature.STRIP_TRAILING_BIGDECIMAL_ZEROES);
    }

    /**
     * The mapper used when none is given: records, ISO-8601 dates (the modules found on the classpath, and
     * the built-in {@code java.time} support unless jackson-datatype-jsr310 is among them, see the class
     * comment), lenient on unknown properties.
     */
    public static ObjectMapper defaultMapper() {
        ObjectMapper mapper = new ObjectMapper();
        // findAndRegisterModules() is registerModules(findModules()); done in two steps to see what was found.
        List<Module> found = ObjectMapper.findModules();
        mapper.registerModules(found);
        if (!IsoJavaTimeModule.containsJsr310(found)) {
            mapper.registerModule(new IsoJavaTimeModule());
        }
        return mapper
                .disable(SerializationFeature.WRITE_DATES_AS_TIMESTAMPS)
                .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);
    }

    @Override
    public TypeRegistry types() {
        return types;
    }

    /** The Jackson mapper, for components (saga data, stores) that share its configuration. */
    public ObjectMapper mapper() {
        return mapper;
    }

    /**
     * The payload as JSON bytes (a {@code byte[]} as it is). A payload whose JSON would not read back is refused with an
     * {@link EncodingException}: one with a lone surrogate (a UTF-16 surrogate that is not half of a pair) in a field
     * name, a map key say, which Jackson writes as an escape ({@code \uD800}) that it reads back in a value but refuses
     * in a name. Sent, it would be dead-lettered as undecodable by every consumer; stored, no read of it would succeed.
     * Only bytes holding such an escape are parsed to learn it (one scan of the bytes otherwise).
     */
    @Override
    public byte[] encode(Object payload) {
        if (payload instanceof byte[] bytes) {
            return bytes;
        }
        byte[] bytes;
        try {
            bytes = mapper.writeValueAsBytes(payload);
        } catch (JsonProcessingException e) {
            throw new EncodingException("cannot encode " + payload.getClass().getName() + " as JSON: "
                    + e.getOriginalMessage(), e);
        }
        if (JsonEscapes.holdsLoneSurrogateEscape(bytes)) {
            try {
                mapper.readTree(bytes);
            } catch (IOException e) {
                String reason = e instanceof JsonProcessingException json ? json.getOriginalMessage() : e.getMessage();
                throw new EncodingException("cannot encode " + payload.getClass().getName() + " as JSON that reads back:"
                        + " a field name holds a lone surrogate (malformed UTF-16, not half of a pair), which JSON"
                        + " cannot read back in a name (" + reason + ")", e);
            }
        }
        return bytes;
    }

    @Override
    public JsonNode toTree(Object payload) {
        if (payload == null) {
            return mapper.nullNode();
        }
        if (payload instanceof JsonNode node) {
            return node;
        }
        if (payload instanceof byte[] bytes) {
            try {
                JsonNode node = mapper.readTree(bytes);
                return node == null ? mapper.missingNode() : node;
            } catch (IOException e) {
                throw new DecodingException("malformed JSON payload: " + e.getMessage(), e);
            }
        }
        return mapper.valueToTree(payload);
    }

    @Override
    @SuppressWarnings("unchecked")
    public <T> T decode(Message message, Class<T> target) {
        if (target == Message.class) {
            return (T) message;
        }
        String type = message.type();
        if (JsonNode.class.isAssignableFrom(target)) {
            JsonNode tree = exactTree(message.payload());
            Optional<Integer> latest = types.latestVersion(type);
            if (latest.isPresent() && tree instanceof ObjectNode object && message.version() < latest.get()) {
                tree = types.upcast(type, message.version(), latest.get(), object.deepCopy());
            }
            if (!target.isInstance(tree)) {
                throw new DecodingException("payload of " + StreamSagaException.quote(type) + " is a JSON " + tree.getNodeType()
                        + ", not a " + target.getSimpleName());
            }
            return (T) tree;
        }
        EventTypeId expected = types.idOrNull(target);
        if (expected == null) {
            throw new DecodingException("the handler's " + EventCodec.whyCannotDecodeTo(this, target));
        }
        Object payload = message.payload();
        if (message.version() == expected.version() && target.isInstance(payload) && expected.type().equals(type)) {
            return (T) payload; // zero-copy: the in-memory transport hands over the published object
        }
        if (!types.isKnown(type)) {
            throw new DecodingException("unknown event type " + StreamSagaException.quote(type) + " (v" + message.version()
                    + "); the handler expects " + expected);
        }
        if (!expected.type().equals(type)) {
            throw new DecodingException("message type '" + type + "' does not match the handler's type " + expected);
        }
        if (message.version() > expected.version()) {
            throw new DecodingException("event " + type + " has version " + message.version()
                    + ", newer than version " + expected.version() + " that " + target.getSimpleName() + " represents");
        }
        if (message.version() == expected.version() && payload instanceof byte[] bytes && startsObject(bytes)) {
            // Fast path for the common case (bytes from a broker, current version): bind straight from the
            // bytes instead of building a tree first. Anything it rejects goes through the tree path below,
            // which reports the same errors as before.
            try {
                T value = mapper.readValue(bytes, target);
                if (value != null) {
                    return value;
                }
            } catch (IOException | IllegalArgumentException e) {
                // fall through: the tree path raises the DecodingException with its usual message
            }
        }
        JsonNode tree = exactTree(payload);
        if (!(tree instanceof ObjectNode object)) {
            throw new DecodingException("payload of " + type + " must be a JSON object, but was " + tree.getNodeType());
        }
        ObjectNode lifted = message.version() == expected.version()
                ? object
                : types.upcast(type, message.version(), expected.version(), object.deepCopy());
        try {
            return mapper.treeToValue(lifted, target);
        } catch (JsonProcessingException | IllegalArgumentException e) {
            throw new DecodingException("cannot bind " + type + " v" + message.version() + " to "
                    + target.getSimpleName() + ": " + e.getMessage(), e);
        }
    }

    /** {@link Message}, a {@link JsonNode} (or a subtype) or a class of the registry: what {@link #decode} binds. */
    @Override
    public boolean canDecodeTo(Class<?> target) {
        return target == Message.class || JsonNode.class.isAssignableFrom(target) || types.idOrNull(target) != null;
    }

    /**
     * As {@link #toTree}, with decimals exact (digits and scale), for decoding: {@link #toTree} reads JSON
     * decimals as doubles and {@code valueToTree} strips a {@code BigDecimal}'s trailing zeros. ({@link #toTree}
     * is left as it was: the idempotent producer's content ids and the aggregator's correlation values come
     * from it.)
     */
    private JsonNode exactTree(Object payload) {
        if (payload == null || payload instanceof JsonNode) {
            return toTree(payload);
        }
        if (payload instanceof byte[] bytes) {
            try {
                JsonNode node = treeReader.readTree(bytes);
                return node == null ? mapper.missingNode() : node;
            } catch (IOException e) {
                throw new DecodingException("malformed JSON payload: " + e.getMessage(), e);
            }
        }
        try (TokenBuffer buffer = new TokenBuffer(mapper, false)) {
            mapper.writeValue(buffer, payload);
            try (JsonParser parser = buffer.asParser()) {
                JsonNode node = treeReader.readTree(parser);
                return node == null ? mapper.missingNode() : node;
            }
        } catch (IOException | IllegalArgumentException e) {
            throw new DecodingException("cannot turn " + payload.getClass().getName() + " into JSON: " + e.getMessage(), e);
        }
    }

    /** Whether the JSON text starts with an object (after whitespace); only then is direct binding tried. */
    private static boolean startsObject(byte[] json) {
        for (byte b : json) {
            if (b == '{') {
                return true;
            }
            if (b != ' ' && b != '\n' && b != '\r' && b != '\t') {
                return false;
            }
        }
        return false;
    }
}
