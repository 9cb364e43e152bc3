package io.streamsaga.choreography;

import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.TopicPattern;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * The declared shape of a choreographed flow: which events (topics) belong to it, which service emits each
 * and which services react to it, which events end it in success or failure, and how long an instance may
 * take. Nothing in the choreography itself refers to this; it exists so that a {@link FlowTracker} can
 * answer the weakness the source names for choreography: "harder to follow the flow". Immutable.
 *
 * @param name          the flow's name, used in reports, metrics tags and consumer group names
 * @param events        every event of the flow, by event type id (or topic name), in declaration order
 * @param successEvents terminal events that end an instance successfully
 * @param failureEvents terminal events that end an instance in failure (after compensation)
 * @param deadline      how long after its first event an instance may run before it counts as stalled (a tracker
 *                      reading a backlog gives it no less than this from when it first saw the instance:
 *                      {@link FlowTracker})
 */
public record FlowDefinition(String name, Map<String, EventRole> events, Set<String> successEvents,
                             Set<String> failureEvents, Duration deadline) {

    public FlowDefinition {
        ConfigurationException.require(name != null && !name.isBlank(), "flow name must not be blank, but was '%s'", name);
        Objects.requireNonNull(events, "events");
        ConfigurationException.require(!events.isEmpty(), "flow '%s' declares no event", name);
        events = Collections.unmodifiableMap(new LinkedHashMap<>(events)); // declaration order matters in reports
        successEvents = Set.copyOf(successEvents);
        failureEvents = Set.copyOf(failureEvents);
        ConfigurationException.require(!successEvents.isEmpty(), "flow '%s' declares no terminal success event", name);
        for (String terminal : successEvents) {
            ConfigurationException.require(events.containsKey(terminal),
                    "flow '%s': success event '%s' is not one of its events %s", name, terminal, events.keySet());
            ConfigurationException.require(!failureEvents.contains(terminal),
                    "flow '%s': event '%s' cannot be both a success and a failure event", name, terminal);
        }
        for (String terminal : failureEvents) {
            ConfigurationException.require(events.containsKey(terminal),
                    "flow '%s': failure event '%s' is not one of its events %s", name, terminal, events.keySet());
        }
        ConfigurationException.requirePositive(deadline, "flow '" + name + "': deadline");
    }

    /** Starts a definition. */
    public static Builder builder(String name) {
        return new Builder(name);
    }

    /** The role of {@code event}, or null when it is not part of the flow. */
    public EventRole role(String event) {
        return events.get(event);
    }

    /** The status an event moves an instance to: terminal for terminal events, else running. */
    FlowStatus statusAfter(String event) {
        if (successEvents.contains(event)) {
            return FlowStatus.SUCCEEDED;
        }
        if (failureEvents.contains(event)) {
            return FlowStatus.FAILED;
        }
        return FlowStatus.RUNNING;
    }

    /**
     * Who emits an event and who reacts to it; used for the sequence diagram. Immutable.
     *
     * @param emitter  the service that publishes the event
     * @param reactors the services that subscribe to it (empty for an event nobody reacts to), none blank
     */
    public record EventRole(String emitter, List<String> reactors) {
        public EventRole {
            ConfigurationException.require(emitter != null && !emitter.isBlank(), "emitter must not be blank, but was '%s'", emitter);
            reactors = List.copyOf(reactors);
            for (String reactor : reactors) {
                // a service is drawn as a participant named after it: a blank name would be none
                ConfigurationException.require(!reactor.isBlank(), "reactor of an event emitted by '%s' must not be blank,"
                        + " but was '%s'", emitter, reactor);
            }
        }
    }

    /** Builds a {@link FlowDefinition}; not thread-safe. */
    public static final class Builder {
        private final String name;
        private final Map<String, EventRole> events = new LinkedHashMap<>();
        private final Set<String> success = new LinkedHashSet<>();
        private final Set<String> failure = new LinkedHashSet<>();
        private Duration deadline = Duration.ofMinutes(5);

        private Builder(String name) {
            this.name = name;
        }

        /**
         * Declares that {@code emitter} publishes {@code event} (an event type id, or a topic that carries
         * only that event) and {@code reactors} handle it.
         */
        public Builder event(String event, String emitter, String... reactors) {
            TopicPattern.requireTopicName(event);
            ConfigurationException.require(!events.containsKey(event), "flow '%s' declares event '%s' twice", name, event);
            events.put(event, new EventRole(emitter, new ArrayList<>(List.of(reactors))));
            return this;
        }

        /** Marks declared events as terminal successes. */
        public Builder succeedsOn(String... terminalEvents) {
            success.addAll(List.of(terminalEvents));
            return this;
        }

        /** Marks declared events as terminal failures. */
        public Builder failsOn(String... terminalEvents) {
            failure.addAll(List.of(terminalEvents));
            return this;
        }

        /** How long an instance may run before it is reported stalled; default five minutes. */
        public Builder deadline(Duration value) {
            this.deadline = value;
            return this;
        }

        public FlowDefinition build() {
            return new FlowDefinition(name, events, success, failure, deadline);
        }
    }
}
