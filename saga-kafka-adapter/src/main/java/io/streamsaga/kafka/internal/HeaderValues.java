package io.streamsaga.kafka.internal;

import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The UTF-8 bytes of header values that repeat on nearly every record (event types and versions), encoded
 * once and shared by the records that carry them.
 *
 * <p>Why: a send's header values stay reachable until the broker acknowledges the record (the producer
 * keeps the headers for its interceptors), and under load the producer holds a hundred thousand records.
 * Two fresh arrays per record were live data that every young collection copied; a plain kafka-clients
 * producer that writes constant header bytes has none of it. The shared arrays are never written here, and
 * Kafka copies header values into the batch; a producer interceptor could reach them through
 * {@code Header.value()} and must not modify them in place (docs/kafka.md says so).
 *
 * <p>Bounded: at most {@value #MAX_TYPES} event types are kept; further types are encoded per record, so an
 * application with unbounded type names costs what it did before and no more memory. Thread-safe.
 */
public final class HeaderValues {
    /** Event types a service publishes are a small, fixed set; this bounds memory if they are not. */
    static final int MAX_TYPES = 256;

    private final Map<String, byte[]> types = new ConcurrentHashMap<>();
    private final byte[][] versions = new byte[10][];

    public HeaderValues() {
        for (int version = 1; version < versions.length; version++) {
            versions[version] = Integer.toString(version).getBytes(StandardCharsets.UTF_8);
        }
    }

    /** The bytes of {@code type}, shared when the type is one of the first {@value #MAX_TYPES} seen. */
    public byte[] type(String type) {
        if (type == null) {
            return null;
        }
        byte[] bytes = types.get(type);
        if (bytes != null) {
            return bytes;
        }
        bytes = type.getBytes(StandardCharsets.UTF_8);
        if (types.size() < MAX_TYPES) {
            byte[] raced = types.putIfAbsent(type, bytes);
            return raced != null ? raced : bytes;
        }
        return bytes;
    }

    /** The decimal bytes of {@code version}, shared for 1 to 9. */
    public byte[] version(int version) {
        if (version >= 1 && version < versions.length) {
            return versions[version];
        }
        return Integer.toString(version).getBytes(StandardCharsets.UTF_8);
    }

    int cachedTypes() {
        return types.size();
    }
}
