package io.streamsaga.cqrs;

import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.TopicPattern;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.function.Supplier;

/**
 * What a {@link Projection} version does: how to make an empty read model and which handler applies each
 * topic's events to it. A new definition with changed handlers is how a Kappa reprocessing brings new
 * logic. Immutable and thread-safe; the builder is not.
 *
 * @param <M> the read model, which must be safe to read while one thread updates it
 */
public final class ProjectionDefinition<M> {
    private final Supplier<M> readModelFactory;
    private final List<Entry<M, ?>> entries;

    private ProjectionDefinition(Builder<M> builder) {
        this.readModelFactory = builder.readModelFactory;
        this.entries = List.copyOf(builder.entries);
    }

    /** Starts a definition whose read models {@code readModelFactory} creates, empty. */
    public static <M> Builder<M> builder(Supplier<M> readModelFactory) {
        return new Builder<>(readModelFactory);
    }

    /** A new, empty read model. */
    public M newReadModel() {
        M model = readModelFactory.get();
        ConfigurationException.require(model != null, "the read model factory returned null");
        return model;
    }

    /** The handled topics with their handlers. */
    public List<Entry<M, ?>> entries() {
        return entries;
    }

    /** The topics the projection reads. */
    public List<String> topics() {
        return entries.stream().map(Entry::topic).toList();
    }

    /**
     * One topic's handler.
     *
     * @param topic   the topic
     * @param type    the event class
     * @param handler applies the event to the read model
     */
    public record Entry<M, E>(String topic, Class<E> type, ProjectionHandler<M, E> handler) {
        public Entry {
            TopicPattern.requireTopicName(topic);
            Objects.requireNonNull(type, "type");
            Objects.requireNonNull(handler, "handler");
        }
    }

    /** Builds a {@link ProjectionDefinition}; not thread-safe. */
    public static final class Builder<M> {
        private final Supplier<M> readModelFactory;
        private final List<Entry<M, ?>> entries = new ArrayList<>();

        private Builder(Supplier<M> readModelFactory) {
            this.readModelFactory = Objects.requireNonNull(readModelFactory, "readModelFactory");
        }

        /** Applies the events of {@code topic} with {@code handler}; one handler per topic. */
        public <E> Builder<M> on(String topic, Class<E> type, ProjectionHandler<M, E> handler) {
            ConfigurationException.require(entries.stream().noneMatch(e -> e.topic().equals(topic)),
                    "topic '%s' has a projection handler already", topic);
            entries.add(new Entry<>(topic, type, handler));
            return this;
        }

        public ProjectionDefinition<M> build() {
            ConfigurationException.require(!entries.isEmpty(), "a projection needs at least one topic");
            return new ProjectionDefinition<>(this);
        }
    }
}
