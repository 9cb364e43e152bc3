package io.streamsaga.codec;

import io.streamsaga.ConfigurationException;

/**
 * A (type id, version) pair naming one schema of one event.
 *
 * @param type    stable type id such as {@code order-created}
 * @param version schema version, 1 or more
 */
public record EventTypeId(String type, int version) {
    public EventTypeId {
        ConfigurationException.require(type != null && !type.isBlank(), "event type must not be blank, but was '%s'", type);
        ConfigurationException.require(version >= 1, "event version must be 1 or more, but was %s", version);
    }

    @Override
    public String toString() {
        return type + "/v" + version;
    }
}
