package io.streamsaga.aggregator;

import com.fasterxml.jackson.databind.JsonNode;
import io.streamsaga.codec.EventCodec;
import io.streamsaga.codec.EventTypeId;

import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * A released group, as the releaser sees it, with typed access to its parts. Immutable.
 *
 * @param group   the group (closed)
 * @param partial true when a timeout released it before a completion rule held
 * @param codec   the bus's codec, to decode parts
 */
public record Aggregate(AggregationGroup group, boolean partial, EventCodec codec) {
    public Aggregate {
        Objects.requireNonNull(group, "group");
        Objects.requireNonNull(codec, "codec");
    }

    /** The correlation key. */
    public String key() {
        return group.key();
    }

    /** The parts whose type is the one registered for {@code eventClass}, decoded, in arrival order. */
    public <T> List<T> events(Class<T> eventClass) {
        EventTypeId id = codec.types().idOf(eventClass);
        return group.parts().stream()
                .filter(p -> p.type().equals(id.type()))
                .map(p -> codec.decode(p.toMessage(), eventClass))
                .toList();
    }

    /** The first part of the type registered for {@code eventClass}, decoded. */
    public <T> Optional<T> first(Class<T> eventClass) {
        return events(eventClass).stream().findFirst();
    }

    /** Every part as a JSON tree, in arrival order. */
    public List<JsonNode> trees() {
        return group.parts().stream().map(p -> codec.toTree(p.payload())).toList();
    }
}
