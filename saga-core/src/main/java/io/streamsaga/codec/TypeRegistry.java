package io.streamsaga.codec;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.streamsaga.ConfigurationException;
import io.streamsaga.StreamSagaException;
import io.streamsaga.message.Message;
import io.streamsaga.spi.StoredKeys;

import java.util.Collections;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

/**
 * Maps stable event type ids and versions to Java classes (records welcome) and holds the upcaster chains
 * between versions. Immutable and thread-safe once built; build it once at start-up.
 *
 * <pre>{@code
 * TypeRegistry types = TypeRegistry.builder()
 *     .register("order-created", 2, OrderCreated.class)
 *     .upcaster("order-created", 1, v1 -> v1.put("currency", "USD"))
 *     .build();
 * }</pre>
 */
public final class TypeRegistry {
    private final Map<Class<?>, EventTypeId> idsByClass;
    private final Map<String, TreeMap<Integer, Class<?>>> classesByType;
    private final Map<String, Map<Integer, EventUpcaster>> upcasters;
    private final Map<String, Integer> latestVersions;

    private TypeRegistry(Builder builder) {
        this.idsByClass = Map.copyOf(builder.idsByClass);
        Map<String, TreeMap<Integer, Class<?>>> classes = new HashMap<>();
        builder.classesByType.forEach((type, versions) -> classes.put(type, new TreeMap<>(versions)));
        this.classesByType = Collections.unmodifiableMap(classes);
        Map<String, Map<Integer, EventUpcaster>> chains = new HashMap<>();
        builder.upcasters.forEach((type, byVersion) -> chains.put(type, Map.copyOf(byVersion)));
        this.upcasters = Collections.unmodifiableMap(chains);
        Map<String, Integer> latest = new HashMap<>();
        classesByType.forEach((type, versions) -> latest.put(type, versions.lastKey()));
        upcasters.forEach((type, byVersion) -> byVersion.keySet()
                .forEach(from -> latest.merge(type, from + 1, Math::max)));
        this.latestVersions = Map.copyOf(latest);
    }

    public static Builder builder() {
        return new Builder();
    }

    /** An empty registry: only raw {@code Message} and JSON-tree handlers work with it. */
    public static TypeRegistry empty() {
        return builder().build();
    }

    /**
     * The type id and version registered for {@code eventClass}.
     *
     * @throws UnknownEventTypeException if it is not registered: naming the call that registers an application's class, and
     *                                   telling a publish of a JDK or generic type (a {@code String}, a {@code Map}) to
     *                                   publish a registered event class holding the value instead
     */
    public EventTypeId idOf(Class<?> eventClass) {
        EventTypeId id = idsByClass.get(eventClass);
        if (id == null) {
            throw new UnknownEventTypeException(isApplicationClass(eventClass) ? "event class " + notRegistered(eventClass)
                    : eventClass.getTypeName() + " is not an event class the registry can bind; publish an instance of"
                            + " an event class registered in the TypeRegistry that holds the value, not the bare value");
        }
        return id;
    }

    /**
     * An annotated class, or one of the application's own: not an array, a primitive, a JSON tree or a class of the
     * JDK's packages. Only such a class is told how to register itself; a {@code String}, {@code byte[]}, {@code Map},
     * {@code Object} or {@code JsonNode} is no event class, and registering it would bind every such value to one type.
     */
    static boolean isApplicationClass(Class<?> type) {
        if (type.isAnnotationPresent(EventType.class)) {
            return true;
        }
        if (type.isArray() || type.isPrimitive() || JsonNode.class.isAssignableFrom(type)) {
            return false;
        }
        String name = type.getName();
        return !(name.startsWith("java.") || name.startsWith("javax.") || name.startsWith("jdk.") || name.startsWith("sun."));
    }

    /**
     * That {@code eventClass} is not registered, and the call that registers it. An annotated class is only
     * registered by {@code register(Class)}: the annotation names its type, so such a class is told to be registered,
     * not to be annotated, which it is.
     */
    static String notRegistered(Class<?> eventClass) {
        String name = eventClass.getSimpleName().isEmpty() ? eventClass.getName() : eventClass.getSimpleName();
        EventType annotation = eventClass.getAnnotation(EventType.class);
        if (annotation != null) {
            return eventClass.getName() + " (@EventType(\"" + annotation.value() + "\"), version " + annotation.version()
                    + ") is not registered; the annotation gives its type id, and the registry still needs it:"
                    + " TypeRegistry.builder().register(" + name + ".class)";
        }
        return eventClass.getName() + " is not registered; register it with TypeRegistry.builder().register(type, version, "
                + name + ".class) or annotate it with @EventType and register(" + name + ".class)";
    }

    /** The type id and version of {@code eventClass}, if registered. */
    public Optional<EventTypeId> findIdOf(Class<?> eventClass) {
        return Optional.ofNullable(idsByClass.get(eventClass));
    }

    /**
     * Refuses a built message whose payload is an object of a registered class but whose type or version is not that
     * class's: the type and version are the builder's to set (to give a message a deterministic id, say), and a consumer
     * decodes by them, so a version left at the builder's default 1 for a class at version 2 would run the v1 upcasters
     * over a v2 payload, and a misspelt type would be dead-lettered by every consumer. Encoded payloads (bytes, JSON
     * trees), a null payload and classes this registry does not know pass as they are. The one check of both
     * {@code EventBus.publish(Message)} and the JDBC outbox's {@code append(Connection, Message)}.
     *
     * @throws ConfigurationException naming the message's type and version, the payload's class, its registered type
     *                                id and the {@code Message.Builder} call that fixes it
     */
    public void requireRegisteredTypeOf(Message message) {
        Object payload = message.payload();
        if (payload == null || payload instanceof byte[] || payload instanceof JsonNode) {
            return;
        }
        EventTypeId id = idsByClass.get(payload.getClass());
        if (id != null && (id.version() != message.version() || !id.type().equals(message.type()))) {
            throw new ConfigurationException("message " + StreamSagaException.quote(message.id()) + " says type "
                    + StreamSagaException.quote(message.type()) + " version " + message.version() + " but its payload, a "
                    + payload.getClass().getName() + ", is registered as " + id + "; build it with Message.Builder.type("
                    + StreamSagaException.quote(id.type()) + ").version(" + id.version() + ")");
        }
    }

    /** As {@link #findIdOf} without the Optional, for the codec's per-message path. */
    EventTypeId idOrNull(Class<?> eventClass) {
        return idsByClass.get(eventClass);
    }

    /** The class registered for exactly this type and version. */
    public Optional<Class<?>> classFor(String type, int version) {
        TreeMap<Integer, Class<?>> versions = classesByType.get(type);
        return versions == null ? Optional.empty() : Optional.ofNullable(versions.get(version));
    }

    /** Whether the type id has a class or an upcaster registered. */
    public boolean isKnown(String type) {
        return latestVersions.containsKey(type);
    }

    /** The newest version known for {@code type} (from classes and upcasters). */
    public Optional<Integer> latestVersion(String type) {
        return Optional.ofNullable(latestVersions.get(type));
    }

    /**
     * Lifts {@code tree} of {@code type} from version {@code from} to version {@code to} through the
     * registered upcasters, one version at a time.
     *
     * @throws DecodingException when a step of the chain is missing or fails, or {@code from} is newer than {@code to}
     */
    public ObjectNode upcast(String type, int from, int to, ObjectNode tree) {
        if (from > to) {
            throw new DecodingException("event " + type + " has version " + from
                    + ", newer than version " + to + " that this consumer understands");
        }
        ObjectNode current = tree;
        Map<Integer, EventUpcaster> chain = upcasters.getOrDefault(type, Map.of());
        for (int version = from; version < to; version++) {
            EventUpcaster upcaster = chain.get(version);
            if (upcaster == null) {
                throw new DecodingException("no upcaster registered for " + type + " from version " + version
                        + " to " + (version + 1) + " (needed to read version " + from + " as version " + to + ")");
            }
            try {
                current = upcaster.upcast(current);
            } catch (DecodingException e) {
                throw e;
            } catch (RuntimeException e) {
                // An old payload the upcaster cannot lift (a field missing or of another type) is undecodable:
                // dead-lettered by the bus, not redelivered forever.
                throw new DecodingException("upcaster of " + type + " from version " + version + " failed: " + e, e);
            }
            if (current == null) {
                throw new DecodingException("upcaster of " + type + " from version " + version + " returned null");
            }
        }
        return current;
    }

    /** The longest event type id, the width a durable store keeps (the JDBC outbox's {@code event_type}). */
    public static final int MAX_TYPE_LENGTH = 255;

    /** Builds a {@link TypeRegistry}; not thread-safe. */
    public static final class Builder {
        private final Map<Class<?>, EventTypeId> idsByClass = new HashMap<>();
        private final Map<String, Map<Integer, Class<?>>> classesByType = new HashMap<>();
        private final Map<String, Map<Integer, EventUpcaster>> upcasters = new HashMap<>();

        private Builder() {
        }

        /** Registers a class annotated with {@link EventType}. */
        public Builder register(Class<?> eventClass) {
            ConfigurationException.require(eventClass != null, "event class must not be null");
            EventType annotation = eventClass.getAnnotation(EventType.class);
            ConfigurationException.require(annotation != null,
                    "%s has no @EventType annotation; use register(type, version, class)", eventClass.getName());
            return register(annotation.value(), annotation.version(), eventClass);
        }

        /**
         * Registers {@code eventClass} as version {@code version} of {@code type}.
         *
         * @throws ConfigurationException when the type is blank, longer than {@link #MAX_TYPE_LENGTH} characters or
         *                                holds U+0000 or a lone surrogate (the id travels in every message and is stored
         *                                by the JDBC outbox: one it could not keep would fail every publish of the
         *                                event there, and leave a saga step sending it stuck), the version is below 1,
         *                                or the class or the id is already registered otherwise
         */
        public Builder register(String type, int version, Class<?> eventClass) {
            EventTypeId id = typeId(type, version);
            ConfigurationException.require(eventClass != null, "the event class of %s must not be null", id);
            EventTypeId previous = idsByClass.get(eventClass);
            ConfigurationException.require(previous == null || previous.equals(id),
                    "%s is already registered as %s, cannot also be %s", eventClass.getName(), previous, id);
            Class<?> existing = classesByType.getOrDefault(type, Map.of()).get(version);
            ConfigurationException.require(existing == null || existing == eventClass,
                    "%s is already registered to %s, cannot also be %s", id, existing, eventClass.getName());
            idsByClass.put(eventClass, id);
            classesByType.computeIfAbsent(type, t -> new HashMap<>()).put(version, eventClass);
            return this;
        }

        /**
         * Registers the upcaster that turns {@code type} version {@code fromVersion} into {@code fromVersion + 1}.
         *
         * @throws ConfigurationException for a type id {@link #register(String, int, Class)} refuses (no event could
         *                                be registered under it, so the upcaster would never run), a version below 1,
         *                                a null upcaster, or a second upcaster from the same version
         */
        public Builder upcaster(String type, int fromVersion, EventUpcaster upcaster) {
            typeId(type, fromVersion);
            ConfigurationException.require(upcaster != null, "upcaster of %s v%s must not be null", type, fromVersion);
            EventUpcaster previous = upcasters.computeIfAbsent(type, t -> new HashMap<>()).putIfAbsent(fromVersion, upcaster);
            ConfigurationException.require(previous == null,
                    "an upcaster of %s from version %s is already registered", type, fromVersion);
            return this;
        }

        /** The id of {@code type} version {@code version}, refused as described at {@link #register(String, int, Class)}. */
        private static EventTypeId typeId(String type, int version) {
            EventTypeId id = new EventTypeId(type, version);
            ConfigurationException.require(type.length() <= MAX_TYPE_LENGTH,
                    "event type must be at most %s characters, but was %s", MAX_TYPE_LENGTH, StreamSagaException.quote(type));
            StoredKeys.requireStorable(type, "event type");
            return id;
        }

        public TypeRegistry build() {
            return new TypeRegistry(this);
        }
    }
}
