package io.streamsaga.routing;

import io.streamsaga.ConfigurationException;
import io.streamsaga.StreamSagaException;
import io.streamsaga.bus.DeliveryContext;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.EventHandler;
import io.streamsaga.bus.Subscription;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.bus.TopicPattern;
import io.streamsaga.codec.EventCodec;
import io.streamsaga.message.Message;
import io.streamsaga.metrics.MetricsRecorder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * Dispatches the messages of one subscription to handlers by topic and by event type — the source's
 * {@code EventRouter} with its {@code switch (topic)}, minus the {@code default} branch that only logged.
 *
 * <p>Precedence: a route naming the exact topic, then a route naming the event type, then wildcard routes
 * ({@link TopicPattern}, the same rules on every transport) in the order they were declared. The handler's
 * {@link RouteContext} tells which route matched and the concrete topic. A message no route accepts
 * follows the {@link UnmatchedPolicy}: dead-lettered at once (the default; an {@link UnroutableMessageException}
 * is not retriable, so it never loops) or dropped with a warning; both are counted in
 * {@value #UNMATCHED_METRIC}. Immutable and thread-safe once built.
 */
public final class EventRouter {
    private static final Logger log = LoggerFactory.getLogger(EventRouter.class);
    /** Counter of messages no route accepted, tagged by router, topic and policy. */
    public static final String UNMATCHED_METRIC = "streamsaga_router_unmatched_total";

    private final EventBus bus;
    private final String name;
    private final Map<String, Route<?>> byTopic;
    private final Map<String, Route<?>> byType;
    private final List<Route<?>> wildcards;
    private final UnmatchedPolicy unmatched;
    private final MetricsRecorder metrics;

    private EventRouter(Builder builder) {
        this.bus = builder.bus;
        this.name = builder.name;
        this.byTopic = Map.copyOf(builder.byTopic);
        this.byType = Map.copyOf(builder.byType);
        this.wildcards = List.copyOf(builder.wildcards);
        this.unmatched = builder.unmatched;
        this.metrics = MetricsRecorder.guarded(bus.metrics());
    }

    /** Starts a router over {@code bus}. */
    public static Builder builder(EventBus bus) {
        return new Builder(bus);
    }

    /** Subscribes {@code group} to every topic (pattern {@code *}) and routes what arrives. */
    public Subscription subscribe(String group) {
        return subscribe(group, "*", SubscriptionOptions.defaults());
    }

    /** Subscribes {@code group} to {@code topicPattern} and routes what arrives. */
    public Subscription subscribe(String group, String topicPattern, SubscriptionOptions options) {
        return bus.subscribe(group, topicPattern, Message.class, options, handler());
    }

    /** The routing handler, to subscribe with other options. */
    public EventHandler<Message> handler() {
        return this::dispatch;
    }

    /** The route that would take {@code message}, with the kind of match; empty when none would. */
    public Optional<String> describeRoute(Message message) {
        return find(message).map(route -> route.kind + ":" + route.matchedBy);
    }

    private void dispatch(Message message, DeliveryContext context) throws Exception {
        Optional<Route<?>> route = find(message);
        if (route.isPresent()) {
            route.get().deliver(bus, message, context);
            return;
        }
        metrics.increment(UNMATCHED_METRIC, Map.of("router", name, "topic", message.topic(), "policy",
                unmatched.name().toLowerCase(java.util.Locale.ROOT)));
        if (unmatched == UnmatchedPolicy.DROP) {
            log.warn("router '{}' dropped {}: no route for topic '{}' or type '{}'", name, message, message.topic(), message.type());
            return;
        }
        throw new UnroutableMessageException(name, message.topic(), message.type(), message.id());
    }

    private Optional<Route<?>> find(Message message) {
        Route<?> exact = byTopic.get(message.topic());
        if (exact != null) {
            return Optional.of(exact);
        }
        Route<?> typed = byType.get(message.type());
        if (typed != null) {
            return Optional.of(typed);
        }
        for (Route<?> route : wildcards) {
            if (route.pattern.matches(message.topic())) {
                return Optional.of(route);
            }
        }
        return Optional.empty();
    }

    /** One route: how it matches, what it decodes to, who handles it. */
    private static final class Route<T> {
        private final RouteContext.Kind kind;
        private final String matchedBy;
        private final TopicPattern pattern;
        private final Class<T> eventClass;
        private final RouteHandler<T> handler;

        Route(RouteContext.Kind kind, String matchedBy, TopicPattern pattern, Class<T> eventClass, RouteHandler<T> handler) {
            this.kind = kind;
            this.matchedBy = matchedBy;
            this.pattern = pattern;
            this.eventClass = Objects.requireNonNull(eventClass, "eventClass");
            this.handler = Objects.requireNonNull(handler, "handler");
        }

        void deliver(EventBus bus, Message message, DeliveryContext context) throws Exception {
            // A decoding failure is a non-retriable StreamSagaException: the bus dead-letters it at once.
            T event = bus.codec().decode(message, eventClass);
            handler.handle(event, new RouteContext(context, kind, matchedBy));
        }
    }

    /** Builds an {@link EventRouter}; not thread-safe. */
    public static final class Builder {
        private final EventBus bus;
        private String name = "router";
        private final Map<String, Route<?>> byTopic = new LinkedHashMap<>();
        private final Map<String, Route<?>> byType = new LinkedHashMap<>();
        private final List<Route<?>> wildcards = new ArrayList<>();
        private UnmatchedPolicy unmatched = UnmatchedPolicy.DEAD_LETTER;

        private Builder(EventBus bus) {
            this.bus = Objects.requireNonNull(bus, "bus");
        }

        /** A name for logs and metrics (default {@code router}). */
        public Builder name(String name) {
            ConfigurationException.require(name != null && !name.isBlank(), "router name must not be blank, but was '%s'", name);
            this.name = name;
            return this;
        }

        /**
         * Routes an exact topic or a wildcard pattern ({@code payment-*}) to {@code handler}, decoding to
         * {@code eventClass} (a registered class, {@code JsonNode} or {@code Message}). A wildcard that matches no
         * topic ({@code *.DLT}, {@code __*}: see {@link TopicPattern#matchesSomeTopic}) is refused with a
         * {@link ConfigurationException} naming it (route a dead-letter topic by its exact name), and so is an exact
         * name over the 249 characters of a topic name. An {@code eventClass} the bus's codec cannot decode to
         * ({@link io.streamsaga.codec.EventCodec#canDecodeTo}: a class left out of the registry) is refused too, as the
         * bus refuses such a subscription: every message the route took would fail.
         */
        public <T> Builder onTopic(String topicOrPattern, Class<T> eventClass, RouteHandler<T> handler) {
            // A route no message can take is a mistake, most likely a wish to route the dead letters (*.DLT)
            TopicPattern pattern = TopicPattern.of(topicOrPattern)
                    .requireMatchesSomeTopic("router '" + name + "' cannot route");
            requireDecodable(topicOrPattern, eventClass);
            if (pattern.isWildcard()) {
                ConfigurationException.require(wildcards.stream().noneMatch(r -> r.matchedBy.equals(topicOrPattern)),
                        "router '%s' already has a route for pattern '%s'", name, topicOrPattern);
                wildcards.add(new Route<>(RouteContext.Kind.WILDCARD, topicOrPattern, pattern, eventClass, handler));
            } else {
                ConfigurationException.require(!byTopic.containsKey(topicOrPattern),
                        "router '%s' already has a route for topic '%s'", name, topicOrPattern);
                byTopic.put(topicOrPattern, new Route<>(RouteContext.Kind.TOPIC, topicOrPattern, pattern, eventClass, handler));
            }
            return this;
        }

        /**
         * Routes every message of event type {@code eventType} (whatever its topic) to {@code handler}, decoding to
         * {@code eventClass}, refused as by {@link #onTopic} when the bus's codec cannot decode to it.
         */
        public <T> Builder onType(String eventType, Class<T> eventClass, RouteHandler<T> handler) {
            ConfigurationException.require(eventType != null && !eventType.isBlank(), "event type must not be blank, but was '%s'", eventType);
            ConfigurationException.require(!byType.containsKey(eventType),
                    "router '%s' already has a route for event type '%s'", name, eventType);
            requireDecodable(eventType, eventClass);
            byType.put(eventType, new Route<>(RouteContext.Kind.EVENT_TYPE, eventType, null, eventClass, handler));
            return this;
        }

        /** A route decodes what it takes to its class: one the codec cannot decode to would fail every message. */
        private void requireDecodable(String route, Class<?> eventClass) {
            Objects.requireNonNull(eventClass, "eventClass");
            if (bus.codec().canDecodeTo(eventClass)) {
                return;
            }
            throw new ConfigurationException("router '" + name + "' cannot route " + StreamSagaException.quote(route) + " to "
                    + eventClass.getName() + ", a class the bus's codec cannot decode to, every message it took would be"
                    + " dead-lettered: " + EventCodec.whyCannotDecodeTo(bus.codec(), eventClass));
        }

        /** What happens to a message no route accepts (default {@link UnmatchedPolicy#DEAD_LETTER}). */
        public Builder unmatched(UnmatchedPolicy policy) {
            this.unmatched = Objects.requireNonNull(policy, "policy");
            return this;
        }

        public EventRouter build() {
            ConfigurationException.require(!byTopic.isEmpty() || !byType.isEmpty() || !wildcards.isEmpty(),
                    "router '%s' has no routes", name);
            return new EventRouter(this);
        }
    }
}
