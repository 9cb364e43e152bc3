package io.streamsaga.internal.bus;

import io.streamsaga.internal.LogContext;
import io.streamsaga.internal.RetryJitter;
import io.streamsaga.internal.StampClock;
import io.streamsaga.internal.Strings;
import io.streamsaga.ConfigurationException;
import io.streamsaga.StreamSagaException;
import io.streamsaga.bus.DeadLetterListener;
import io.streamsaga.bus.DeliveryContext;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.EventHandler;
import io.streamsaga.bus.EventPattern;
import io.streamsaga.bus.MessageInterceptor;
import io.streamsaga.bus.MessageTooLargeException;
import io.streamsaga.bus.PublishException;
import io.streamsaga.bus.RecordPosition;
import io.streamsaga.bus.RegistrationOptions;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.Subscription;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.bus.TopicPattern;
import io.streamsaga.codec.DecodingException;
import io.streamsaga.codec.EventCodec;
import io.streamsaga.codec.EventTypeId;
import io.streamsaga.message.DerivedIds;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.metrics.MetricsRecorder;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.spi.PendingDelivery;
import io.streamsaga.spi.RecordHandler;
import io.streamsaga.spi.RedeliverLater;
import io.streamsaga.spi.Transport;
import io.streamsaga.spi.TransportRecord;
import io.streamsaga.time.Scheduler;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * The one implementation of {@link EventBus}: decoding, retries, dead letters, correlation and metrics on
 * top of any {@link Transport}. The delivery path takes no locks and makes no thread hops: the transport's
 * consumer thread decodes and calls the handler directly.
 */
public final class DefaultEventBus implements EventBus {
    private static final Logger log = LoggerFactory.getLogger(DefaultEventBus.class);
    private static final String UNDECODABLE = "undecodable";
    private static final String HANDLER_FAILED = "handler-failed";
    /**
     * The longest type of an original its dead letter keeps at every step: a longer one, which may be why the dead
     * letter is too large even without the original's key, is left out at a last step. Registered types are short.
     */
    private static final int MAX_KEPT_TYPE_LENGTH = 256;
    private static final String REJECTED = "rejected-on-receive";

    private final Config config;
    private final Transport transport;
    private final EventCodec codec;
    private final MetricsRecorder metrics;
    /** Arrays, not lists: iterating an empty {@code List.of()} still showed in the publish profile. */
    private final MessageInterceptor[] interceptors;
    /** Config.logContext: the delivered message's keys in the MDC while it is handled ({@link LogContext}). */
    private final boolean logContext;
    /** What the bus does about an interceptor's hook when the transport withdraws a delivery: nothing, it comes again. */
    private static final Runnable NOTHING = () -> {
    };
    private final MessageInterceptor[] receiveInterceptors;
    /** The message being handled on each consumer thread; an instance field, so buses never share it. */
    private final ThreadLocal<Message> current = new ThreadLocal<>();
    /**
     * Per consumer thread, from its first delivery: whose handler runs on it now and the publishes its deliveries wait
     * for ({@link #partOfDelivery}); null on a thread that never ran a handler of this bus.
     */
    private final ThreadLocal<HandlerPublishes> handlerPublishes = new ThreadLocal<>();
    /**
     * Per thread, while {@link #awaitingPublishes} runs work on it outside a handler: the publishes that work made
     * (noted under a null cause), which it waits for; null otherwise.
     */
    private final ThreadLocal<HandlerPublishes> workPublishes = new ThreadLocal<>();
    /**
     * How many {@link #awaitingPublishes} runs are under way outside a handler, on any thread: while none is, a publish
     * outside a handler skips the thread-local lookup (a producer's publish is the bus's hottest path).
     */
    private final AtomicInteger worksRunning = new AtomicInteger();
    private final Set<Subscription> subscriptions = ConcurrentHashMap.newKeySet();
    /** Set by close() before it closes the subscriptions: a subscribe that missed it sees it and closes its own. */
    private volatile boolean closed;
    /** Set once close() has closed the subscriptions: from then on, a publish fails its stage. */
    private volatile boolean publishRefused;
    /**
     * The topic name validated last: publishers mostly repeat one constant, and validating it again on
     * every publish costs more than the rest of the header work. A racy cache of an immutable value.
     */
    private String lastValidTopic;
    /** The event class published last and its type id (a racy cache of an immutable pair). */
    private LastType lastType;
    /** Whether handling is timed and reported; not with the no-op recorder, to spare the fast path. */
    private final boolean timed;
    /** Stamps published messages (see {@link StampClock} for the system clock's millisecond stamps). */
    private final StampClock publishClock;

    /** Whether the builder created the scheduler (none was given): close() then closes it. */
    private final boolean ownsScheduler;

    /** {@code ownsScheduler}: the scheduler was created for this bus, which closes it on {@link #close()}. */
    public DefaultEventBus(Config config, boolean ownsScheduler) {
        this.config = config;
        this.ownsScheduler = ownsScheduler;
        this.transport = config.transport();
        this.codec = config.codec();
        this.metrics = config.metrics();
        this.timed = metrics != MetricsRecorder.NOOP;
        this.publishClock = new StampClock(config.scheduler().clock(), "streamsaga-publish-clock");
        this.interceptors = config.interceptors().toArray(new MessageInterceptor[0]);
        this.logContext = config.logContext();
        List<MessageInterceptor> reversed = new ArrayList<>(config.interceptors());
        java.util.Collections.reverse(reversed);
        this.receiveInterceptors = reversed.toArray(new MessageInterceptor[0]);
    }

    @Override
    public CompletionStage<RecordPosition> publish(String topic, String key, Object event) {
        return publish(topic, key, event, Map.of());
    }

    @Override
    public CompletionStage<RecordPosition> publish(String topic, String key, Object event, Map<String, String> headers) {
        Message cause = current.get();
        CompletionStage<RecordPosition> stage = publish(cause, topic, key, event, headers);
        return cause == null ? partOfWork(topic, null, stage) : partOfDelivery(cause, topic, null, stage);
    }

    private CompletionStage<RecordPosition> publish(Message cause, String topic, String key, Object event,
                                                    Map<String, String> headers) {
        EventTypeId typeId;
        try {
            requireTopicName(topic);
            if (event == null) {
                throw new ConfigurationException("event must not be null (topic " + StreamSagaException.quote(topic) + ")");
            }
            if (headers == null) {
                throw new ConfigurationException("headers must not be null (topic " + StreamSagaException.quote(topic)
                        + "); pass Map.of() for none");
            }
            typeId = typeIdOf(event.getClass());
        } catch (StreamSagaException e) {
            return notSent(e);
        }
        String id = Message.newId();
        Instant now = publishClock.now();
        Map<String, String> added = propagatedHeaders(cause, id, headers);
        if (headers.isEmpty()) {
            // The common case, built once without a builder: this is the publish fast path.
            return send(new Message(id, topic, key, typeId.type(), typeId.version(), event,
                    added == null ? Map.of() : added, now));
        }
        Message message;
        try {
            Message.Builder builder = Message.builder(topic)
                    .id(id)
                    .key(key)
                    .type(typeId.type())
                    .version(typeId.version())
                    .payload(event)
                    .headers(headers) // refuses a null name or value, as Message does everywhere
                    .timestamp(now);
            if (added != null) {
                builder.headers(added);
            }
            message = builder.build();
        } catch (StreamSagaException e) { // fails the stage rather than throwing, as the checks above
            return notSent(e);
        }
        return send(message);
    }

    @Override
    public CompletionStage<RecordPosition> publish(Message message) {
        Message cause = current.get();
        CompletionStage<RecordPosition> stage = publish(cause, message);
        if (message == null) {
            return stage;
        }
        return cause == null ? partOfWork(message.topic(), message.id(), stage)
                : partOfDelivery(cause, message.topic(), message.id(), stage);
    }

    @Override
    public <T> T awaitingPublishes(Callable<T> work) throws Exception {
        if (handlerRunning() != null) { // in a handler: its publishes are noted as the delivery's
            T result = work.call();
            awaitPublishes();
            return result;
        }
        // outside a handler: on a timer, or in an interceptor's hook or a dead-letter listener (a message current, no
        // handler running), whose publishes partOfDelivery hands to partOfWork
        HandlerPublishes outer = workPublishes.get();
        HandlerPublishes publishes = new HandlerPublishes();
        workPublishes.set(publishes);
        worksRunning.incrementAndGet();
        T result;
        try {
            result = work.call();
        } finally {
            worksRunning.decrementAndGet();
            if (outer == null) {
                workPublishes.remove();
            } else {
                workPublishes.set(outer);
            }
        }
        PublishException failure = publishes.isEmpty() ? null : publishes.awaitThoseOf(null, null);
        if (failure != null) {
            throw failure;
        }
        return result;
    }

    /**
     * A publish made outside a handler (also one of an interceptor's hook or a dead-letter listener, which
     * {@link #partOfDelivery} hands here): noted when {@link #awaitingPublishes} runs work on this thread (unless it
     * completed normally at once; a {@code publish(Message)} that went through answers a failed one under its id).
     * While no such work runs on any thread it costs one counter read.
     */
    private CompletionStage<RecordPosition> partOfWork(String topic, String messageId, CompletionStage<RecordPosition> stage) {
        if (worksRunning.get() == 0) {
            return stage;
        }
        HandlerPublishes publishes = workPublishes.get();
        if (publishes == null) {
            return stage;
        }
        boolean done = stage instanceof CompletableFuture<RecordPosition> future && future.isDone()
                && !future.isCompletedExceptionally();
        if (!done) {
            publishes.add(null, topic, messageId, stage);
        } else if (messageId != null && !publishes.isEmpty()) {
            publishes.sentAgain(null, messageId);
        }
        return stage;
    }

    /**
     * Publishes {@code message} as {@link #publish(Message)} does, but from a handler not as part of its delivery: for
     * the engine's own publishers that act on the outcome themselves (the saga engine's commands, failing the step;
     * its lifecycle events, logged), whose failure must not also fail the delivery that ran them. Any other bus
     * publishes as {@link EventBus#publish(Message)}.
     */
    public static CompletionStage<RecordPosition> publishOutsideDelivery(EventBus bus, Message message) {
        return bus instanceof DefaultEventBus own ? own.publish(own.current.get(), message) : bus.publish(message);
    }

    private CompletionStage<RecordPosition> publish(Message cause, Message message) {
        Message outgoing;
        try {
            if (message == null) {
                throw new ConfigurationException("message must not be null");
            }
            requireTopicName(message.topic());
            requireRegisteredTypeOfPayload(message);
            Map<String, String> added = propagatedHeaders(cause, message.id(), message.headers());
            outgoing = added == null ? message : message.withHeaders(added);
        } catch (StreamSagaException e) {
            return notSent(e);
        }
        return send(outgoing);
    }

    /** A publish the bus refused before handing it to the transport, failed with {@code error}. */
    private static CompletableFuture<RecordPosition> notSent(Throwable error) {
        return CompletableFuture.failedFuture(error);
    }

    /** The registered type id of an event class, through a one-entry cache of the last class published. */
    private EventTypeId typeIdOf(Class<?> eventClass) {
        LastType last = lastType;
        if (last != null && last.eventClass() == eventClass) {
            return last.id();
        }
        EventTypeId id = codec.types().idOf(eventClass);
        lastType = new LastType(eventClass, id);
        return id;
    }

    /**
     * {@link io.streamsaga.codec.TypeRegistry#requireRegisteredTypeOf}: a message whose payload is of the class last
     * published, under that class's type id, passes on the one-entry cache without a registry lookup (the hot path).
     */
    private void requireRegisteredTypeOfPayload(Message message) {
        Object payload = message.payload();
        LastType last = lastType;
        if (payload != null && last != null && last.eventClass() == payload.getClass()
                && last.id().version() == message.version() && last.id().type().equals(message.type())) {
            return;
        }
        codec.types().requireRegisteredTypeOf(message);
    }

    /** An event class and its type id; immutable, so a racy one-entry cache of it is safe. */
    private record LastType(Class<?> eventClass, EventTypeId id) {
    }

    private void requireTopicName(String topic) {
        if (topic != lastValidTopic) {
            TopicPattern.requireTopicName(topic);
            lastValidTopic = topic;
        }
    }

    /** Runs the publish interceptors, encodes for byte transports, and sends. */
    private CompletionStage<RecordPosition> send(Message message) {
        if (publishRefused) {
            return notSent(new ConfigurationException("event bus is closed: cannot publish to "
                    + StreamSagaException.quote(message.topic())));
        }
        Message outgoing = message;
        try {
            for (MessageInterceptor interceptor : interceptors) {
                outgoing = interceptor.beforePublish(outgoing, codec);
            }
            if (!transport.carriesObjects() && outgoing.payload() != null && !(outgoing.payload() instanceof byte[])) {
                outgoing = outgoing.withPayload(codec.encode(outgoing.payload()));
            }
        } catch (StreamSagaException e) {
            return notSent(e);
        } catch (RuntimeException e) {
            return notSent(new PublishException(message.topic(), e.toString(), e, false));
        }
        try {
            return transport.send(outgoing);
        } catch (PublishException e) {
            // the transport's own refusal, thrown rather than failing the stage: kept as it is, so that its type (a
            // MessageTooLargeException an aggregator's dead letter steps down at) and retriability reach the caller
            return CompletableFuture.failedFuture(e);
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(new PublishException(message.topic(), e.toString(), e, true));
        }
    }

    /**
     * The headers to add to a message with id {@code messageId}: the correlation id, saga id and
     * traceparent of the message handled on this thread, and the causation id = its id; or, outside a
     * handler, a correlation id = the message's own id. Headers already set win. Null when nothing is added.
     */
    private static Map<String, String> propagatedHeaders(Message cause, String messageId, Map<String, String> headers) {
        if (cause == null) {
            return headers.containsKey(MessageHeaders.CORRELATION_ID)
                    ? null : Map.of(MessageHeaders.CORRELATION_ID, messageId);
        }
        Map<String, String> added = cause.inheritedHeaders();
        for (Iterator<String> names = added.keySet().iterator(); names.hasNext(); ) {
            if (headers.containsKey(names.next())) {
                names.remove();
            }
        }
        return added.isEmpty() ? null : added;
    }

    /**
     * A publish made on a consumer thread while {@code cause} is its current message: a stage already completed
     * normally (the in-memory transport's) is returned as it is, after a completed-check; one made outside the
     * handler (an interceptor's hook or a dead-letter listener, which run with the message current) is not the
     * delivery's: it goes to {@link #partOfWork}, as a publish with no message current does. Any other (in
     * flight, or failed) is noted as part of that delivery, which is acknowledged only once it completed and fails when
     * it failed ({@link HandlerPublishes#awaitThoseOf}: by the bus once the handler returned, or later by a transport
     * that finishes the delivery itself, {@link Transport#finishLater}), so that a publish the handler does not wait
     * for is not lost unseen; in the delivery's transaction ({@link Transport#publishesInDeliveryTransaction}) one
     * still in flight when the handler returns is not waited for but left to the transaction, and its refusal, should
     * the transport withdraw the delivery, fails the delivery's attempt then ({@link Dispatcher#refusedInTransaction}).
     * A failed {@code publish(Message)} whose message the handler published again under the same id, and which went
     * through, counts as sent (a dead letter sent in a smaller form after a refusal as too large, as the aggregator
     * does).
     */
    private CompletionStage<RecordPosition> partOfDelivery(Message cause, String topic, String messageId,
                                                           CompletionStage<RecordPosition> stage) {
        boolean done = stage instanceof CompletableFuture<RecordPosition> future && future.isDone();
        if (done && !((CompletableFuture<RecordPosition>) stage).isCompletedExceptionally()) {
            if (messageId != null) { // publish(Message): it may be a failed one's message again, which it answers
                HandlerPublishes publishes = handlerPublishes.get();
                if (publishes == null || publishes.handling != cause) {
                    return partOfWork(topic, messageId, stage); // a hook's: answers one of awaitingPublishes' work
                }
                if (!publishes.isEmpty()) {
                    publishes.sentAgain(cause, messageId);
                }
            }
            return stage;
        }
        HandlerPublishes publishes = handlerPublishes.get();
        if (publishes == null || publishes.handling != cause) {
            // not the handler's: a hook's or a dead-letter listener's, run after it, noted only in awaitingPublishes' work
            return partOfWork(topic, messageId, stage);
        }
        publishes.add(cause, topic, messageId, stage);
        return stage;
    }

    /**
     * The thread's handler's delivery when a handler runs on it, the current message being its delivered one; null
     * outside a handler, also in an interceptor's hook or a dead-letter listener (a message current, the handler
     * returned or none called), or a nested delivery's hook in a handler (drainAll), whose message is not the one
     * handled.
     */
    private HandlerPublishes handlerRunning() {
        HandlerPublishes publishes = handlerPublishes.get();
        return publishes != null && publishes.handling != null && publishes.handling == current.get() ? publishes : null;
    }

    @Override
    public void awaitPublishes() throws InterruptedException {
        HandlerPublishes publishes = handlerRunning();
        if (publishes == null) { // outside a handler: what awaitingPublishes' work running on this thread published
            HandlerPublishes work = worksRunning.get() == 0 ? null : workPublishes.get();
            PublishException failure = work == null || work.isEmpty() ? null : work.awaitThoseOf(null, null);
            if (failure != null) {
                throw failure;
            }
            return;
        }
        if (!publishes.isEmpty()) {
            // in the delivery's transaction those in flight go with it, as the attempt leaves them: not waited for
            HandlerPublishes inFlight = transport.publishesInDeliveryTransaction() ? new HandlerPublishes() : null;
            PublishException failure = publishes.awaitThoseOf(publishes.handling, inFlight);
            if (inFlight != null) {
                publishes.addAll(inFlight);
            }
            if (failure != null) {
                throw failure;
            }
        }
    }

    @Override
    public <T> Subscription subscribe(String group, String topicPattern, Class<T> eventType, EventHandler<T> handler) {
        return subscribe(group, topicPattern, eventType, SubscriptionOptions.defaults(), handler);
    }

    @Override
    public <T> Subscription subscribe(String group, String topicPattern, Class<T> eventType,
                                      SubscriptionOptions options, EventHandler<T> handler) {
        ConfigurationException.require(group != null && !group.isBlank(), "consumer group must not be blank, but was '%s'", group);
        ConfigurationException.require(eventType != null, "event type class must not be null (group '%s')", group);
        ConfigurationException.require(handler != null, "handler must not be null (group '%s')", group);
        TopicPattern pattern = subscribable(group, topicPattern);
        requireDecodable(group, topicPattern, eventType);
        RetryPolicy policy = options.retryPolicy() != null ? options.retryPolicy() : config.retryPolicy();
        Dispatcher<T> dispatcher = new Dispatcher<>(group, eventType, policy, options.deadLetterListener(), handler);
        return subscribeTracked(group, pattern, options.start(), dispatcher, NOTHING);
    }

    /**
     * Subscribes {@code handler} through the transport as one of this bus's subscriptions, which {@link #close()}
     * closes; runs {@code afterClose} once the returned subscription was closed (by whoever closed it). Refused with
     * a {@link ConfigurationException} once the bus is closed. What a {@link io.streamsaga.bus.DeadLetterRedrive} run
     * reads its dead-letter topic with, so that closing the bus stops it.
     */
    Subscription subscribeTracked(String group, TopicPattern pattern, StartPosition start, RecordHandler handler,
                                  Runnable afterClose) {
        requireOpen(group, pattern);
        Subscription subscription = transport.subscribe(group, pattern, start, handler);
        Subscription tracked = new TrackedSubscription(subscription, afterClose);
        subscriptions.add(tracked);
        if (closed) { // close() ran during the transport's subscribe and may not have seen this one
            tracked.close();
            requireOpen(group, pattern);
        }
        return tracked;
    }

    @Override
    public List<Subscription> register(String group, Object handlers, RegistrationOptions options) {
        ConfigurationException.require(handlers != null, "handler object must not be null (group '%s')", group);
        ConfigurationException.require(options != null, "registration options must not be null (group '%s')", group);
        // Every method is checked before any is subscribed, and a subscription that fails closes those made: the
        // caller gets no handle to close them when register throws.
        List<PlannedMethod> planned = new ArrayList<>();
        for (Method method : handlers.getClass().getMethods()) {
            EventPattern annotation = method.getAnnotation(EventPattern.class);
            // javac copies a method's annotations to the bridge it adds when the method implements a generic one
            // (on(Object) beside on(OrderCreated)): the bridge is the same method, not a second member of the group
            if (annotation != null && !method.isBridge()) {
                planned.add(planMethod(group, handlers, method, annotation, options.placeholders()));
            }
        }
        ConfigurationException.require(!planned.isEmpty(), "%s has no public method annotated with @EventPattern",
                handlers.getClass().getName());
        // Each method is a member of the group, and the members of a group share its messages: two methods whose
        // topics overlap would each get only some of the messages of the topics they both take. Resolved patterns:
        // what is subscribed.
        for (int a = 0; a < planned.size(); a++) {
            for (int b = a + 1; b < planned.size(); b++) {
                PlannedMethod first = planned.get(a);
                PlannedMethod second = planned.get(b);
                ConfigurationException.require(!first.pattern().overlaps(second.pattern()), "@EventPattern methods %s (%s)"
                        + " and %s (%s) take topics in common, and under the one group '%s' each would get only some of"
                        + " their messages (the members of a group share them); handle them in one method, or register the"
                        + " object's handlers under a group each", first.method().getName(), first.shown(),
                        second.method().getName(), second.shown(), group);
            }
        }
        // Decorated once every check passed: a refused registration never calls the decorator for some methods only.
        List<Supplier<Subscription>> subscriptions = new ArrayList<>();
        for (PlannedMethod plan : planned) {
            EventHandler<Object> handler = plan.handler();
            if (options.decorator() != null) {
                handler = options.decorator().apply(handler);
                ConfigurationException.require(handler != null, "the handler decorator of registration options returned"
                        + " null for @EventPattern method %s, whose messages would have no handler", describe(plan.method()));
            }
            EventHandler<Object> subscribed = handler;
            subscriptions.add(() -> subscribe(group, plan.pattern().pattern(), plan.eventType(),
                    SubscriptionOptions.defaults().withStart(plan.start()), subscribed));
        }
        return Subscription.allOrNone(subscriptions, Supplier::get);
    }

    /**
     * An {@code @EventPattern} method checked for registration: its annotation's value, the pattern it resolved to, and
     * the handler calling it.
     */
    private record PlannedMethod(Method method, String value, TopicPattern pattern, StartPosition start,
                                 Class<Object> eventType, EventHandler<Object> handler) {
        /** The pattern as a refusal shows it: as written, and what it resolved to when that differs. */
        String shown() {
            return value.equals(pattern.pattern()) ? "'" + value + "'"
                    : StreamSagaException.quote(value) + " resolved to " + StreamSagaException.quote(pattern.pattern());
        }
    }

    /** {@code ClassName.method}, as a refusal names a method; an anonymous class (no simple name) by its name. */
    private static String describe(Method method) {
        Class<?> declaring = method.getDeclaringClass();
        String simpleName = declaring.getSimpleName();
        return (simpleName.isEmpty() ? declaring.getName() : simpleName) + "." + method.getName();
    }

    /**
     * {@code topicPattern} parsed, refused when a subscription to it would deliver nothing or could not dead-letter.
     */
    private static TopicPattern subscribable(String group, String topicPattern) {
        TopicPattern pattern = TopicPattern.of(topicPattern);
        // A handler's failure is dead-lettered to the topic and .DLT: a topic whose dead-letter topic Kafka refuses
        // (a dead-letter topic of 246-249 characters itself) would have its failing record delivered again and again.
        ConfigurationException.require(pattern.isWildcard() || topicPattern.length() <= TopicPattern.MAX_TOPIC_LENGTH,
                "group '%s' cannot subscribe to a topic over %s characters, whose dead-letter topic (the name and %s)"
                        + " would be over the 249 Kafka takes, but was %s", group, TopicPattern.MAX_TOPIC_LENGTH,
                MessageHeaders.DEAD_LETTER_SUFFIX, StreamSagaException.quote(topicPattern));
        // A subscription that can never get a message is a mistake, most likely a wish to follow the dead letters
        // (*.DLT), which a wildcard never takes so that a catch-all handler does not consume its own.
        pattern.requireMatchesSomeTopic("group '" + group + "' cannot subscribe to");
        return pattern;
    }

    /**
     * Refuses a handler of a class the codec cannot decode to ({@link EventCodec#canDecodeTo}): every message would be
     * dead-lettered.
     */
    private void requireDecodable(String group, String topicPattern, Class<?> eventType) {
        if (codec.canDecodeTo(eventType)) {
            return;
        }
        throw new ConfigurationException("group '" + group + "' cannot handle " + StreamSagaException.quote(topicPattern)
                + " as a class the bus's codec cannot decode to, every message would be dead-lettered: "
                + EventCodec.whyCannotDecodeTo(codec, eventType));
    }

    private PlannedMethod planMethod(String group, Object target, Method method, EventPattern annotation,
                                     Function<String, String> placeholders) {
        Class<?>[] params = method.getParameterTypes();
        boolean withContext = params.length == 2 && params[1] == DeliveryContext.class;
        ConfigurationException.require(!Modifier.isStatic(method.getModifiers()) && (params.length == 1 || withContext),
                "@EventPattern method %s must be an instance method taking (event) or (event, DeliveryContext)", method);
        String value = annotation.value();
        String topicPattern = TopicPlaceholders.resolve(value, placeholders, describe(method));
        TopicPattern pattern;
        try {
            requireDecodable(group, topicPattern, params[0]);
            pattern = subscribable(group, topicPattern); // refused with the others, before any subscription
        } catch (ConfigurationException e) {
            if (topicPattern.equals(value)) {
                throw e;
            }
            // the refusal quotes the resolved pattern: say where it came from
            throw new ConfigurationException(TopicPlaceholders.where(value, describe(method)) + ", resolved to "
                    + StreamSagaException.quote(topicPattern) + ", is refused: " + e.getMessage());
        }
        // A public method of a package-private class (the usual test or service class) is not callable
        // by reflection from here without this; fail at registration, not on every message.
        ConfigurationException.require(method.trySetAccessible(),
                "@EventPattern method %s is not accessible to StreamSaga; make its class public or open its package", method);
        @SuppressWarnings("unchecked")
        Class<Object> eventType = (Class<Object>) params[0];
        EventHandler<Object> handler = (event, context) -> {
            Object result;
            try {
                result = withContext ? method.invoke(target, event, context) : method.invoke(target, event);
            } catch (InvocationTargetException e) {
                throw rethrowable(e.getCause());
            }
            if (result instanceof CompletionStage<?> stage) {
                try {
                    stage.toCompletableFuture().get();
                } catch (ExecutionException e) {
                    throw rethrowable(e.getCause());
                }
            }
        };
        return new PlannedMethod(method, value, pattern, annotation.start(), eventType, handler);
    }

    private static Exception rethrowable(Throwable cause) {
        if (cause instanceof Exception e) {
            return e;
        }
        if (cause instanceof Error error) {
            throw error;
        }
        return new IllegalStateException(cause);
    }

    @Override
    public Optional<Message> currentMessage() {
        return Optional.ofNullable(current.get());
    }

    @Override
    public EventCodec codec() {
        return codec;
    }

    @Override
    public Transport transport() {
        return transport;
    }

    @Override
    public Scheduler scheduler() {
        return config.scheduler();
    }

    @Override
    public MetricsRecorder metrics() {
        return metrics;
    }

    private void requireOpen(String group, TopicPattern pattern) {
        ConfigurationException.require(!closed, "event bus is closed: group '%s' cannot subscribe to '%s'", group,
                pattern.pattern());
    }

    @Override
    public void close() {
        closed = true;
        for (Subscription subscription : List.copyOf(subscriptions)) {
            subscription.close();
        }
        // Only now: a handler finishing while its subscription closes may still publish what it was publishing.
        publishRefused = true;
        publishClock.close();
        if (ownsScheduler) { // after the subscriptions: a handler's backoff sleeps on it
            config.scheduler().close();
        }
    }

    /** Decodes, calls the handler with retries, and dead-letters what cannot be handled. */
    private final class Dispatcher<T> implements RecordHandler {
        private final String group;
        private final Class<T> eventType;
        private final RetryPolicy policy;
        /** The subscription's own listener for what it dead-lettered, or null. */
        private final DeadLetterListener deadLetterListener;
        private final EventHandler<T> handler;
        /**
         * On a transport that redelivers per partition: for each partition whose records wait for their
         * redelivery, by topic and partition, a chain of their offsets and the attempts they made, in offset order
         * ({@link Waiting#later}). Mostly one record (the partition waits at it), but a seek back to an earlier record
         * (one whose delivery the transport finished later failed, {@link Transport#finishLater}; an exactly-once batch
         * handled again) leaves the later ones of the batch waiting too, with the attempts they made: one record's
         * entry replacing another's restarted that one's attempts. A record whose next attempt the transport finishes
         * later keeps its entry ({@link Waiting#finishing}) until that finishes: should an earlier record's failure
         * seek back past it unfinished, its attempt is made again, not a fresh count started. Looked up only while it
         * is not empty; when a record is delivered, the entries before it (not being finished) and another record's at
         * its offset are stale (handled, or handled elsewhere after a rebalance, or its topic created again:
         * {@link Waiting#deliveringOf}) and are dropped, and so is the partition's chain when the transport says the
         * partition may have been handled elsewhere since ({@link #forgetPartition}), so the map holds at most the
         * records of the batches in flight, of the partitions this member reads. A record whose attempts are spent but whose dead letter failed
         * waits with the error to dead-letter: its redelivery writes only the dead letter (in exactly-once mode
         * the handler's failed publish leaves its Kafka transaction unable to send anything, so the dead letter
         * can only go in the next one), instead of running the handler again with fresh attempts.
         */
        private final Map<String, Waiting> attemptsMade;
        /**
         * On a transport that redelivers per partition, by topic, partition and offset: each record a publish of whose
         * handler was refused for good in a transaction the transport then withdrew ({@link #refusedInTransaction}),
         * the attempt made and the refusal its next handling dead-letters it with, without calling the handler (null
         * when the policy retries it). Per record, apart from {@link #attemptsMade}: every record of an aborted batch
         * may have had a publish refused, and a record beside them may be counting its own attempts. An entry stays
         * until the transaction holding the record's dead letter commits (one that aborts has the record dead-lettered
         * again at the batch's next handling), or is dropped as stale (another record met at its offset) or with its
         * partition ({@link #forgetPartition}), so it holds at most the records of the batches in flight. Looked up
         * only while it is not empty; null on any other transport.
         */
        private final Map<String, Waiting> refused;
        /**
         * By topic and partition, the record whose dead letter the transport refused as too large
         * ({@link MessageTooLargeException}: the original with the dead-letter headers added, over a limit the original
         * just fitted) and what its redelivery leaves out: the payload, then the original's headers too, then its key
         * too ({@link Omitted}). Not at once: in exactly-once mode the refused send leaves the Kafka transaction unable
         * to send anything. One entry per partition at most (the partition waits at that record), dropped once that
         * dead letter is sent, or stale (a later record, or another at its offset: {@link TooLarge#isOf}), and when
         * the transport says the partition may have been handled elsewhere since
         * ({@link #forgetPartition}): a step learnt before could skip one the record's dead letter now passes at.
         */
        private final Map<String, TooLarge> deadLetterTooLarge = new ConcurrentHashMap<>();
        /**
         * Whether the transport may take the rest of a delivery whose publishes are in flight
         * ({@link Transport#mayFinishLater}): when not, the bus offers none, allocating nothing for it.
         */
        private final boolean mayFinishLater;

        Dispatcher(String group, Class<T> eventType, RetryPolicy policy, DeadLetterListener deadLetterListener,
                   EventHandler<T> handler) {
            this.group = group;
            this.eventType = eventType;
            this.policy = policy;
            this.deadLetterListener = deadLetterListener;
            this.handler = handler;
            this.attemptsMade = transport.redeliversPerPartition() ? new java.util.concurrent.ConcurrentHashMap<>() : null;
            this.refused = attemptsMade == null ? null : new ConcurrentHashMap<>();
            this.mayFinishLater = transport.mayFinishLater();
        }

        /**
         * The common path: decode and one attempt. Interceptors, failures, retries and dead letters continue
         * in the methods below, out of line, so that the per-record path compiles small (the single-thread
         * benchmark gained a few percent; C2 still declines to inline it into the transport's loop, which
         * would spare the transport record's allocation).
         */
        @Override
        public void handle(TransportRecord record) throws Exception {
            if (!logContext) {
                handleInContext(record);
                return;
            }
            Message received = record.message();
            String[] previous = LogContext.putMessage(received.id(), received.topic(), group,
                    received.correlationId().orElse(received.id()), // none: it starts the conversation
                    record.partition(), record.offset());
            try {
                handleInContext(record);
            } finally {
                LogContext.restoreMessage(previous);
            }
        }

        private void handleInContext(TransportRecord record) throws Exception {
            Message received = record.message();
            Message message = receiveInterceptors.length == 0 ? received : afterReceive(record, received);
            if (message == null) {
                return; // dead-lettered on receive
            }
            T event;
            try {
                event = codec.decode(message, eventType);
            } catch (DecodingException e) {
                deadLetter(record, received, e, UNDECODABLE, 0);
                return;
            }
            // Restored afterwards rather than removed: a handler may drive a nested delivery (drainAll).
            Message outer = current.get();
            // A nested delivery's message is a copy of its own: the bus tells a delivery's publishes, and a running
            // handler, by the delivered message's identity, and the in-memory transport hands one record's message to
            // every group, so a handler's drainAll can deliver the very message it handles to another group.
            Message delivered = message.payload() == event && outer == null ? message : message.withPayload(event);
            if (attemptsMade != null) {
                deliverOrRedeliverLater(record, received, message, delivered, event, outer);
                return;
            }
            Throwable failure = attempt(record, message, delivered, event, 1, outer);
            if (failure != null) {
                retry(record, received, message, delivered, event, outer, failure, 1);
            }
        }

        /**
         * One attempt per delivery, on a transport that redelivers per partition: between the policy's
         * attempts the record's partition waits ({@link RedeliverLater}) while the others keep flowing,
         * instead of the consumer thread sleeping. The attempts made survive the redelivery in
         * {@link #attemptsMade}; a rebalance that moves the partition starts them again (at-least-once), also
         * when the partition comes back to this member after another could have had it ({@link #forgetPartition}).
         * Called on the subscription's consumer thread.
         */
        private void deliverOrRedeliverLater(TransportRecord record, Message received, Message message, Message delivered,
                                             T event, Message outer) throws Exception {
            Waiting refusal = refused.isEmpty() ? null : refusalOf(record);
            if (refusal != null && refusal.deadLetterOf() != null) {
                deadLetterRefused(record, received, delivered, outer, refusal);
                return;
            }
            String key = attemptsMade.isEmpty() ? null : partitionOf(record);
            Waiting waiting = null;
            Waiting chain = key == null ? null : attemptsMade.get(key);
            if (chain != null) {
                // stale entries dropped; those of later records keep the attempts they made
                waiting = chain.entryOf(record);
                Waiting left = chain.deliveringOf(record);
                if (left == null) {
                    attemptsMade.remove(key);
                } else if (left != chain) {
                    attemptsMade.put(key, left);
                }
            }
            if (waiting != null && waiting.deadLetterOf() != null) {
                current.set(delivered);
                try {
                    deadLetterAfterAttempts(key, record, received, waiting.deadLetterOf(), waiting.attempts());
                } finally {
                    current.set(outer);
                }
                return;
            }
            int attempt = refusal != null ? refusal.attempts() + 1 : waiting == null ? 1 : waiting.attempts() + 1;
            Throwable error = attempt(record, message, delivered, event, attempt, outer);
            if (error == null) {
                if (waiting != null) {
                    dropWaiting(key, record, false); // kept while the transport finishes the attempt later
                }
                return;
            }
            redeliverLaterOrDeadLetter(key != null ? key : partitionOf(record), record, received, message, delivered,
                    outer, error, attempt);
        }

        /**
         * The entry of {@code record} in {@link #refused}, or null; a policy's retry is taken (its handler runs again),
         * a stale entry dropped.
         */
        private Waiting refusalOf(TransportRecord record) {
            String key = refusedKey(record);
            Waiting refusal = refused.get(key);
            if (refusal != null && (!refusal.isOf(record) || refusal.deadLetterOf() == null)) {
                refused.remove(key, refusal);
                return refusal.isOf(record) ? refusal : null;
            }
            return refusal;
        }

        /**
         * Dead-letters a record whose publish was refused in a transaction the transport withdrew. Its entry in
         * {@link #refused} stays until the transaction holding the dead letter commits: should that one abort too (the
         * refusal of another record's publish, a later record's failure), the batch's next handling dead-letters the
         * record again rather than calling its handler.
         */
        private void deadLetterRefused(TransportRecord record, Message received, Message delivered, Message outer,
                                       Waiting refusal) {
            current.set(delivered);
            try {
                deadLetter(record, received, refusal.deadLetterOf(), HANDLER_FAILED, refusal.attempts());
            } finally {
                current.set(outer);
            }
            String key = refusedKey(record);
            transport.afterDelivery(() -> refused.remove(key, refusal), NOTHING);
        }

        /** The key of a record in {@link #refused}: its topic, partition and offset. */
        private static String refusedKey(TransportRecord record) {
            return partitionOf(record) + '@' + record.offset();
        }

        /**
         * After a failed attempt, on a transport that redelivers per partition: dead-letters the record when the policy
         * retries no more, else has it delivered again after the policy's backoff ({@link RedeliverLater}), its
         * attempts noted in {@link #attemptsMade} under {@code key}.
         */
        private void redeliverLaterOrDeadLetter(String key, TransportRecord record, Message received, Message message,
                                                Message delivered, Message outer, Throwable error, int attempt)
                throws RedeliverLater {
            current.set(delivered);
            try {
                metrics.eventFailed(message.topic(), group, error.getClass().getSimpleName());
                if (!policy.shouldRetry(error, attempt)) {
                    deadLetterAfterAttempts(key, record, received, error, attempt);
                    return;
                }
                log.debug("handler of group {} failed on {} (attempt {}), redelivering: {}", group, message, attempt,
                        error.toString());
            } finally {
                current.set(outer);
            }
            noteWaiting(key, new Waiting(record.offset(), record.message().id(), attempt, null));
            throw new RedeliverLater(RetryJitter.delayBefore(policy, attempt + 1, config.retryJitter()), error);
        }

        /**
         * Dead-letters a record whose attempts are spent; when the dead letter fails, the record waits with
         * {@code error}, so that its redelivery writes the dead letter rather than calling the handler again.
         */
        private void deadLetterAfterAttempts(String key, TransportRecord record, Message received, Throwable error,
                                             int attempts) {
            try {
                deadLetter(record, received, error, HANDLER_FAILED, attempts);
            } catch (RuntimeException e) {
                noteWaiting(key, new Waiting(record.offset(), record.message().id(), attempts, error));
                throw e;
            }
            dropWaiting(key, record, true);
        }

        /** Notes {@code entry} in the chain of its partition in {@link #attemptsMade}, in place of one at its offset. */
        private void noteWaiting(String key, Waiting entry) {
            attemptsMade.compute(key, (partition, chain) -> chain == null ? entry : chain.with(entry));
        }

        /**
         * Drops the entry of {@code record} (when it has one) from the chain of its partition in {@link #attemptsMade};
         * one the transport is finishing only when {@code finished}.
         */
        private void dropWaiting(String key, TransportRecord record, boolean finished) {
            if (!attemptsMade.isEmpty()) {
                attemptsMade.computeIfPresent(key, (partition, chain) -> chain.without(record, finished));
            }
        }

        /**
         * The receive interceptors' view of the record, or null when one rejected it (then dead-lettered). Only
         * a retriable {@link StreamSagaException} has the record delivered again; any other exception (and an
         * {@link AssertionError} or {@link StackOverflowError}), and a null returned, is a rejection:
         * redelivering would fail again and again and stop the partition.
         */
        private Message afterReceive(TransportRecord record, Message received) throws StreamSagaException {
            Message message = received;
            try {
                for (MessageInterceptor interceptor : receiveInterceptors) {
                    message = interceptor.afterReceive(message, group);
                    if (message == null) {
                        throw new ConfigurationException("interceptor " + interceptor + " returned null from afterReceive of "
                                + StreamSagaException.quote(received.id()) + " for group '" + group + "'");
                    }
                }
                return message;
            } catch (StreamSagaException e) {
                if (e.isRetriable()) {
                    throw e; // the transport redelivers; the payload may be readable later
                }
                deadLetter(record, received, e, REJECTED, 0);
                return null;
            } catch (RuntimeException | AssertionError | StackOverflowError e) {
                deadLetter(record, received, e, REJECTED, 0);
                return null;
            }
        }

        /**
         * Calls the handler once with {@code delivered} as the thread's current message (the outer one
         * restored afterwards); returns its failure, or null when it and the acknowledgement hooks succeeded.
         */
        private Throwable attempt(TransportRecord record, Message message, Message delivered, T event, int attempt,
                                  Message outer) throws InterruptedException {
            long started = timed ? System.nanoTime() : 0L;
            current.set(delivered);
            HandlerPublishes publishes = handlerPublishes.get();
            if (publishes == null) { // once per consumer thread
                publishes = new HandlerPublishes();
                handlerPublishes.set(publishes);
            }
            Message outerHandling = publishes.handling; // a nested delivery's (drainAll) is restored
            try {
                publishes.handling = delivered;
                try {
                    handler.handle(event, new DeliveryContext(delivered, group, record.partition(), record.offset(), attempt));
                } finally {
                    publishes.handling = outerHandling; // the hooks and listeners after it publish as their own
                }
                Throwable publishFailure = null;
                if (!publishes.isEmpty()) {
                    if (mayFinishLater && publishes.onlyInFlightOf(delivered)
                            && finishedLater(record, message, delivered, event, attempt, started, publishes)) {
                        return null; // the transport finishes the delivery (acknowledgement included) later
                    }
                    publishFailure = awaitPublishesOf(publishes, record, message, delivered, attempt);
                }
                if (publishFailure != null) {
                    handlerFailed(message, publishFailure);
                    return publishFailure;
                }
                if (timed || interceptors.length != 0) {
                    acknowledged(message, started);
                }
                return null;
            } catch (InterruptedException e) {
                forgetPublishesOf(delivered);
                Thread.currentThread().interrupt();
                throw e;
            } catch (Exception | AssertionError | StackOverflowError e) {
                forgetPublishesOf(delivered); // the attempt failed anyway: its retry publishes again
                // Errors of the message's own making are failures like exceptions; any other Error (out of
                // memory, an Error standing for the process dying) goes to the transport, which redelivers.
                Throwable failure = e instanceof CompletionException ce && ce.getCause() != null ? ce.getCause() : e;
                handlerFailed(message, failure);
                return failure;
            } catch (Error e) {
                forgetPublishesOf(delivered);
                handlerFailed(message, e);
                throw e;
            } finally {
                current.set(outer);
            }
        }

        /**
         * Offers the transport the rest of the delivery of {@code delivered}, whose handler returned with publishes in
         * flight ({@link Transport#finishLater}); when it takes it, those publishes move from the thread's list to that
         * rest, which it finishes later. Returns whether it took it.
         */
        private boolean finishedLater(TransportRecord record, Message message, Message delivered, T event, int attempt,
                                      long started, HandlerPublishes publishes) {
            Finishing rest = new Finishing(record, message, delivered, event, attempt, started);
            if (!transport.finishLater(rest)) {
                return false;
            }
            rest.publishes = publishes.takeThoseOf(delivered);
            if (timed) {
                rest.timePublishes();
            }
            if (attempt > 1 && attemptsMade != null) {
                // a retry: its entry stays until it finishes, so that a seek back past it unfinished makes this
                // attempt again rather than start the record's attempts anew
                noteWaiting(partitionOf(record), new Waiting(record.offset(), record.message().id(), attempt - 1, null,
                        true, null));
            }
            return true;
        }

        /**
         * The rest of an attempt whose handler returned with publishes in flight, which the transport finishes later on
         * the delivering thread ({@link PendingDelivery}): waits for them, then acknowledges the record as the attempt
         * would have, or handles their failure as the attempt's (retried per the policy, then dead-lettered).
         */
        private final class Finishing implements PendingDelivery {
            private final TransportRecord record;
            private final Message message;
            private final Message delivered;
            private final T event;
            private final int attempt;
            private final long started;
            /** The handler's publishes in flight, set once the transport took this; used by the delivering thread. */
            private HandlerPublishes publishes;
            /**
             * With the bus timed: how many of those publishes are timed, how many of them completed, and when the last
             * did ({@code System.nanoTime}); guarded by this.
             */
            private int publishesTimed;
            private int publishesDone;
            private long publishesDoneAt;

            Finishing(TransportRecord record, Message message, Message delivered, T event, int attempt, long started) {
                this.record = record;
                this.message = message;
                this.delivered = delivered;
                this.event = event;
                this.attempt = attempt;
                this.started = started;
            }

            /**
             * Notes when each publish completes, so that the processing time ends when the record's own handling did
             * (its handler returned, its publishes completed), not when the transport finished the batch.
             */
            void timePublishes() {
                publishesTimed = publishes.stages.size();
                for (CompletionStage<RecordPosition> stage : publishes.stages) {
                    stage.whenComplete((position, error) -> publishDone());
                }
            }

            private synchronized void publishDone() {
                publishesDone++;
                publishesDoneAt = System.nanoTime(); // the last one is the latest: the lock orders them
            }

            /**
             * When the record's own handling ended: when its last publish completed (noted after the handler returned,
             * so no earlier than that); now, if a publish's note has not run yet (its waiter woke first).
             */
            private synchronized long handledAt() {
                return publishesDone == publishesTimed ? publishesDoneAt : System.nanoTime();
            }

            @Override
            public void finish() throws Exception {
                if (!logContext) {
                    finishInContext();
                    return;
                }
                Message received = record.message();
                String[] previous = LogContext.putMessage(received.id(), received.topic(), group,
                        received.correlationId().orElse(received.id()), record.partition(), record.offset());
                try {
                    finishInContext();
                } finally {
                    LogContext.restoreMessage(previous);
                }
            }

            private void finishInContext() throws Exception {
                // interrupted: the transport is closing
                PublishException failure = publishes.awaitThoseOf(delivered, null);
                Message outer = current.get();
                current.set(delivered); // as during the attempt: its hooks see the delivered message as current
                try {
                    if (failure == null) {
                        if (attempt > 1 && attemptsMade != null) {
                            dropWaiting(partitionOf(record), record, true); // the retry's entry, kept while it was finishing
                        }
                        if (timed || interceptors.length != 0) {
                            acknowledged(message, started, timed ? handledAt() : 0L);
                        }
                        return;
                    }
                    handlerFailed(message, failure);
                } finally {
                    current.set(outer);
                }
                if (attemptsMade != null) {
                    redeliverLaterOrDeadLetter(partitionOf(record), record, record.message(), message, delivered, outer,
                            failure, attempt);
                } else {
                    retry(record, record.message(), message, delivered, event, outer, failure, attempt);
                }
            }
        }

        /**
         * Waits for the publishes the handler of {@code delivered} made and returns the first one's failure (see
         * {@link HandlerPublishes#awaitThoseOf}). In the delivery's transaction ({@link
         * Transport#publishesInDeliveryTransaction}) only a publish already failed is its failure now: those in flight
         * go with the transaction, which a refusal of one aborts, and when the transport then withdraws the delivery,
         * {@link #refusedInTransaction} looks at them.
         */
        private Throwable awaitPublishesOf(HandlerPublishes publishes, TransportRecord record, Message message,
                                           Message delivered, int attempt) throws InterruptedException {
            if (attemptsMade == null || !transport.publishesInDeliveryTransaction()) {
                return publishes.awaitThoseOf(delivered, null);
            }
            HandlerPublishes inFlight = new HandlerPublishes();
            PublishException failure = publishes.awaitThoseOf(delivered, inFlight);
            if (failure == null && !inFlight.isEmpty()) {
                transport.afterDelivery(NOTHING,
                        () -> refusedInTransaction(record, message, delivered, attempt, inFlight));
            }
            return failure;
        }

        /**
         * The transport withdrew a delivery (Kafka's exactly-once mode aborted its batch's transaction) whose handler
         * returned leaving {@code inFlight} publishes to the transaction: when one of them failed
         * non-retriably (a record the broker refused as too large, a topic not authorised; the transport reports a
         * record aborted only with its transaction as retriable), that is the failure of the delivery's attempt, as a
         * publish awaited in plain mode is: the record waits with it in {@link #refused}, so the batch's next handling
         * dead-letters it when the policy says no more (as it always does for a non-retriable error), without calling
         * the handler again; otherwise the handler has the record again as its next attempt. The failure hooks
         * and the failure metric are told now. A withdrawal for another reason (a later record of the batch failed, a
         * retriable send failure) leaves the record to be handled again as it was. Called on the thread that delivers
         * the record, before any record of the batch is delivered again.
         */
        private void refusedInTransaction(TransportRecord record, Message message, Message delivered, int attempt,
                                          HandlerPublishes inFlight) {
            PublishException refusal = inFlight.refusalAmong();
            if (refusal == null) {
                return;
            }
            Message outer = current.get();
            current.set(delivered);
            try {
                metrics.eventFailed(message.topic(), group, refusal.getClass().getSimpleName());
                handlerFailed(message, refusal);
            } finally {
                current.set(outer);
            }
            boolean retry = policy.shouldRetry(refusal, attempt);
            log.warn("a publish of the handler of group {} on {} (attempt {}) was refused in its transaction, which is"
                    + " aborted; the batch's next handling {} it: {}", group, message, attempt,
                    retry ? "retries" : "dead-letters", refusal.toString());
            // per record: others of the batch may have been refused too, or wait in attemptsMade for their retry
            refused.put(refusedKey(record), new Waiting(record.offset(), record.message().id(), attempt,
                    retry ? null : refusal));
        }

        private void forgetPublishesOf(Message delivered) {
            HandlerPublishes publishes = handlerPublishes.get();
            if (publishes != null && !publishes.isEmpty()) {
                publishes.forget(delivered);
            }
        }

        private void handlerFailed(Message message, Throwable error) {
            for (MessageInterceptor interceptor : interceptors) {
                try {
                    interceptor.onHandlerFailed(message, group, error);
                } catch (RuntimeException | AssertionError | StackOverflowError e) {
                    // The attempt failed: a failing hook must not change what the bus does about it.
                    log.warn("interceptor {} failed on the handler failure of {} by group {}: {}",
                            interceptor, message.id(), group, e.toString());
                }
            }
        }

        private void acknowledged(Message message, long started) {
            acknowledged(message, started, timed ? System.nanoTime() : 0L);
        }

        /** As {@link #acknowledged(Message, long)}, the handling timed as ended at {@code ended} ({@code System.nanoTime}). */
        private void acknowledged(Message message, long started, long ended) {
            if (timed) {
                metrics.eventProcessed(message.topic(), group, Duration.ofNanos(ended - started));
            }
            if (interceptors.length != 0) {
                // once the delivery stays handled: a Kafka transaction that aborts withdraws it, and the record comes
                // again (the claim check must not release a payload its redelivery needs)
                transport.afterDelivery(() -> tellAcknowledged(message), NOTHING);
            }
        }

        private void tellAcknowledged(Message message) {
            for (MessageInterceptor interceptor : interceptors) {
                try {
                    interceptor.onAcknowledged(message, group);
                } catch (RuntimeException | AssertionError | StackOverflowError e) {
                    // The handler succeeded: a failing hook must not make the bus handle the message again.
                    log.warn("interceptor {} failed on the acknowledgement of {} by group {}; the message stays handled: {}",
                            interceptor, message.id(), group, e.toString());
                }
            }
        }

        /**
         * After failed attempt {@code failedAttempt}: retries per the policy (sleeping between attempts), then
         * dead-letters. The failure hooks run with {@code delivered} as the current message, as the handler did.
         */
        private void retry(TransportRecord record, Message received, Message message, Message delivered, T event,
                           Message outer, Throwable firstFailure, int failedAttempt) throws Exception {
            String topic = message.topic();
            Throwable error = firstFailure;
            int attempt = failedAttempt;
            while (true) {
                current.set(delivered);
                try {
                    metrics.eventFailed(topic, group, error.getClass().getSimpleName());
                    if (!policy.shouldRetry(error, attempt)) {
                        deadLetter(record, received, error, HANDLER_FAILED, attempt);
                        return;
                    }
                    log.debug("handler of group {} failed on {} (attempt {}), retrying: {}", group, message, attempt, error.toString());
                } finally {
                    current.set(outer);
                }
                config.scheduler().sleep(RetryJitter.delayBefore(policy, attempt + 1, config.retryJitter()));
                attempt++;
                error = attempt(record, message, delivered, event, attempt, outer);
                if (error == null) {
                    return;
                }
            }
        }

        /** The key of a record's topic and partition in {@link #attemptsMade} and {@link #deadLetterTooLarge}. */
        private static String partitionOf(TransportRecord record) {
            return partitionOf(record.message().topic(), record.partition());
        }

        private static String partitionOf(String topic, int partition) {
            return topic + '/' + partition;
        }

        @Override
        public void forgetPartition(String topic, int partition) {
            if (!deadLetterTooLarge.isEmpty()) {
                deadLetterTooLarge.remove(partitionOf(topic, partition));
            }
            // the attempts too: met again after another member had the record, it starts them again (at-least-once)
            // rather than resume from a count of this member's, and with spent attempts be dead-lettered unhandled
            if (attemptsMade != null && !attemptsMade.isEmpty()) {
                attemptsMade.remove(partitionOf(topic, partition));
            }
            if (refused != null && !refused.isEmpty()) {
                String prefix = partitionOf(topic, partition) + '@';
                refused.keySet().removeIf(key -> key.startsWith(prefix));
            }
        }

        private void deadLetter(TransportRecord record, Message original, Throwable error, String reason, int attempts) {
            Map<String, String> headers = new LinkedHashMap<>();
            headers.put(MessageHeaders.DLT_REASON, reason);
            headers.put(MessageHeaders.DLT_ERROR_CLASS, error.getClass().getName());
            // bounded: an exception message can be as long as anything (one quoting a payload) and a header must fit
            headers.put(MessageHeaders.DLT_ERROR_MESSAGE, Strings.bounded(String.valueOf(error.getMessage()),
                    MessageHeaders.DLT_ERROR_MESSAGE_MAX_LENGTH));
            headers.put(MessageHeaders.DLT_ORIGINAL_TOPIC, original.topic());
            headers.put(MessageHeaders.DLT_ORIGINAL_PARTITION, Integer.toString(record.partition()));
            headers.put(MessageHeaders.DLT_ORIGINAL_OFFSET, Long.toString(record.offset()));
            headers.put(MessageHeaders.DLT_ORIGINAL_GROUP, group);
            headers.put(MessageHeaders.DLT_ATTEMPTS, Integer.toString(attempts));
            // the dead letter's id is its own: a redrive gives the original's back, for consumers deduplicating by it
            headers.put(MessageHeaders.DLT_ORIGINAL_MESSAGE_ID, original.id());
            // A deterministic id: if this record is redelivered and dead-lettered again, consumers of the
            // dead-letter topic can recognise the duplicate. A redriven message (the original's id again) that fails
            // again is another dead letter, not that duplicate: its redrive count, which the record carries, tells it.
            String redriveCount = original.headers().get(MessageHeaders.REDRIVE_COUNT);
            String id = redriveCount == null ? DerivedIds.uuidOf(original.id(), group)
                    : DerivedIds.uuidOf(original.id(), group, redriveCount);
            String partition = partitionOf(record);
            TooLarge tooLarge = deadLetterTooLarge.isEmpty() ? null : deadLetterTooLarge.get(partition);
            Omitted omitted = tooLarge != null && tooLarge.isOf(record) ? tooLarge.omitted() : Omitted.NOTHING;
            Message deadLetter = deadLetterOf(original, id, headers, omitted);
            try {
                // Synchronous on purpose: the record is acknowledged only once its dead letter is durable.
                transport.send(deadLetter).toCompletableFuture().join();
            } catch (RuntimeException e) {
                Throwable refusal = e instanceof CompletionException && e.getCause() != null ? e.getCause() : e;
                if (refusal instanceof MessageTooLargeException) {
                    Omitted next = omitted.next(original);
                    if (next != null) {
                        deadLetterTooLarge.put(partition, new TooLarge(record.offset(), record.message().id(), next));
                        log.warn("the dead letter of {} by group {} ({}) was refused as too large ({}); its redelivery"
                                + " sends it {}, naming the original's topic, partition and offset", original, group,
                                omitted.description(), refusal.toString(), next.description());
                    } else {
                        // nothing more to leave out but the pointers to the original: the record waits, not lost
                        log.error("the dead letter of {} by group {} was refused as too large even with only its"
                                + " dead-letter headers ({}); the record is delivered again until the transport takes"
                                + " it: raise its limit (on Kafka max.request.size, message.max.bytes)", original, group,
                                refusal.toString());
                    }
                }
                throw e;
            }
            if (tooLarge != null && tooLarge.offset() <= record.offset()) {
                // sent, or stale (a later record of the partition, or another record at its offset)
                deadLetterTooLarge.remove(partition, tooLarge);
            }
            log.warn("dead-lettered {} of group {} to {} ({}{}): {}", original, group, deadLetter.topic(), reason,
                    omitted == Omitted.NOTHING ? "" : ", " + omitted.description(), error.toString());
            metrics.eventDeadLettered(original.topic(), group, reason);
            if (interceptors.length != 0) {
                // as for an acknowledgement: a dead letter in a Kafka transaction that aborts is withdrawn with it
                transport.afterDelivery(() -> tellDeadLettered(original), NOTHING);
            }
            if (deadLetterListener != null) {
                try {
                    deadLetterListener.onDeadLettered(
                            new DeliveryContext(original, group, record.partition(), record.offset(), attempts), reason);
                } catch (RuntimeException | AssertionError | StackOverflowError e) {
                    // The dead letter is sent: the record is acknowledged whatever the listener does.
                    log.warn("dead-letter listener of group {} failed on {}: {}", group, original, e.toString());
                }
            }
        }

        private void tellDeadLettered(Message original) {
            for (MessageInterceptor interceptor : interceptors) {
                try {
                    interceptor.onDeadLettered(original, group);
                } catch (RuntimeException | AssertionError | StackOverflowError e) {
                    // The dead letter is sent: a failing hook must not make the bus handle the record again.
                    log.warn("interceptor {} failed on the dead letter of {} by group {}; the record stays dead-lettered: {}",
                            interceptor, original.id(), group, e.toString());
                }
            }
        }

        /**
         * The dead letter of {@code original} under {@code id}, with the dead-letter {@code headers}, leaving out what
         * {@code omitted} says: with nothing left out it is the original (key, payload, headers) with the headers added
         * and a causation id (the original's id, when it had none); each step further leaves out one thing more, marked
         * by a header of its own, down to the dead-letter headers alone, which point at the original.
         */
        private Message deadLetterOf(Message original, String id, Map<String, String> headers, Omitted omitted) {
            String topic = original.topic() + MessageHeaders.DEAD_LETTER_SUFFIX;
            if (omitted.compareTo(Omitted.HEADERS) < 0 && !original.headers().containsKey(MessageHeaders.CAUSATION_ID)) {
                // Only when the original had none: these headers are merged over the original's.
                headers.put(MessageHeaders.CAUSATION_ID, original.id());
            }
            if (omitted == Omitted.NOTHING) {
                Message deadLetter = original.toBuilder().id(id).headers(headers).build().withTopic(topic);
                Object payload = deadLetter.payload();
                return !transport.carriesObjects() && payload != null && !(payload instanceof byte[])
                        ? deadLetter.withPayload(codec.encode(payload)) : deadLetter;
            }
            headers.put(MessageHeaders.DLT_PAYLOAD_OMITTED, "the dead letter with the payload was refused as too large;"
                    + " the original is at its topic, partition and offset");
            if (omitted == Omitted.PAYLOAD) {
                return original.toBuilder().id(id).headers(headers).payload(null).build().withTopic(topic);
            }
            headers.put(MessageHeaders.DLT_HEADERS_OMITTED, "the dead letter without the payload was refused as too"
                    + " large; the original's " + original.headers().size() + " header(s) are at its topic, partition"
                    + " and offset");
            String key = original.key();
            String type = original.type();
            if (omitted.compareTo(Omitted.KEY) >= 0) {
                headers.put(MessageHeaders.DLT_KEY_OMITTED, "the dead letter without the payload and the headers was"
                        + " refused as too large; " + (key == null ? "the original had no key"
                        : "the original's key " + StreamSagaException.quote(key) + " is at its topic, partition and"
                        + " offset"));
                key = null;
            }
            if (omitted == Omitted.TYPE) {
                headers.put(MessageHeaders.DLT_TYPE_OMITTED, "the dead letter without the payload, the headers and the"
                        + " key was refused as too large; the original's type " + StreamSagaException.quote(type)
                        + " is at its topic, partition and offset");
                type = topic; // what a Kafka record without an event-type header reads as
            }
            return new Message(id, topic, key, type, original.version(), null, headers, original.timestamp());
        }
    }

    /**
     * The publishes made by handlers on one consumer thread whose stage was not completed normally when publish
     * returned, each with the delivered message whose handler made it (a handler may drive a nested delivery on its
     * thread, the in-memory transport's drainAll, whose publishes are that delivery's). Used by its thread only.
     */
    private static final class HandlerPublishes {
        /** The delivered message whose handler runs on the thread now, or null: only its publishes are noted. */
        Message handling;
        private final List<Message> causes = new ArrayList<>();
        private final List<String> topics = new ArrayList<>();
        /** The message id of a {@code publish(Message)}, which the handler may publish again; else null. */
        private final List<String> messageIds = new ArrayList<>();
        private final List<CompletionStage<RecordPosition>> stages = new ArrayList<>();

        boolean isEmpty() {
            return causes.isEmpty();
        }

        /**
         * Whether the handler of {@code delivered} made a publish noted here and none of them failed already: one that
         * did fails the attempt at once, as it does without a transport finishing deliveries later.
         */
        boolean onlyInFlightOf(Message delivered) {
            boolean any = false;
            for (int i = 0; i < causes.size(); i++) {
                if (causes.get(i) == delivered) {
                    if (failedAlready(stages.get(i))) {
                        return false;
                    }
                    any = true;
                }
            }
            return any;
        }

        /** Whether {@code stage} completed exceptionally; false for one that will not convert to a future. */
        private static boolean failedAlready(CompletionStage<RecordPosition> stage) {
            try {
                return stage.toCompletableFuture().isCompletedExceptionally();
            } catch (UnsupportedOperationException e) {
                return false;
            }
        }

        /** Moves the publishes of the handler of {@code delivered} to a list of their own, which is returned. */
        HandlerPublishes takeThoseOf(Message delivered) {
            HandlerPublishes taken = new HandlerPublishes();
            for (int i = 0; i < causes.size(); ) {
                if (causes.get(i) == delivered) {
                    taken.add(causes.get(i), topics.get(i), messageIds.get(i), stages.get(i));
                    remove(i);
                } else {
                    i++;
                }
            }
            return taken;
        }

        void add(Message cause, String topic, String messageId, CompletionStage<RecordPosition> stage) {
            causes.add(cause);
            topics.add(topic);
            messageIds.add(messageId);
            stages.add(stage);
        }

        /** Notes every publish of {@code others} here, in their order. */
        void addAll(HandlerPublishes others) {
            causes.addAll(others.causes);
            topics.addAll(others.topics);
            messageIds.addAll(others.messageIds);
            stages.addAll(others.stages);
        }

        /** The handler of {@code cause} sent {@code messageId} again, successfully: its earlier failures are answered. */
        void sentAgain(Message cause, String messageId) {
            for (int i = causes.size() - 1; i >= 0; i--) {
                if (causes.get(i) == cause && messageId.equals(messageIds.get(i))) {
                    remove(i);
                }
            }
        }

        /**
         * Waits for the publishes made by the handler of {@code delivered} (null: by the work {@link DefaultEventBus#awaitingPublishes}
         * runs) and forgets them; returns the first one's
         * failure (the others' suppressed by it) as a {@link PublishException} naming its topic, or null when all
         * completed normally (or a failed one's message went through under its id in another of them). With
         * {@code inFlight}, one not completed yet is not waited for but moved to it (without its message id).
         */
        PublishException awaitThoseOf(Message delivered, HandlerPublishes inFlight) throws InterruptedException {
            List<String> failedTopics = null;
            List<String> failedIds = null;
            List<Throwable> errors = null;
            List<String> sentIds = null;
            for (int i = 0; i < causes.size(); ) {
                if (causes.get(i) != delivered) {
                    i++;
                    continue;
                }
                String topic = topics.get(i);
                String messageId = messageIds.get(i);
                CompletionStage<RecordPosition> stage = stages.get(i);
                remove(i);
                if (inFlight != null && !isDone(stage)) {
                    inFlight.add(delivered, topic, null, stage);
                    continue;
                }
                Throwable error = outcomeOf(stage);
                if (error == null) {
                    if (messageId != null) {
                        sentIds = sentIds == null ? new ArrayList<>() : sentIds;
                        sentIds.add(messageId);
                    }
                } else {
                    if (errors == null) {
                        failedTopics = new ArrayList<>();
                        failedIds = new ArrayList<>();
                        errors = new ArrayList<>();
                    }
                    failedTopics.add(topic);
                    failedIds.add(messageId);
                    errors.add(error);
                }
            }
            if (errors == null) {
                return null;
            }
            PublishException failure = null;
            for (int i = 0; i < errors.size(); i++) {
                if (sentIds != null && failedIds.get(i) != null && sentIds.contains(failedIds.get(i))) {
                    continue;
                }
                PublishException named = named(failedTopics.get(i), errors.get(i), delivered == null);
                if (failure == null) {
                    failure = named;
                } else if (named != failure) {
                    failure.addSuppressed(named);
                }
            }
            return failure;
        }

        /**
         * {@code error} of a publish to {@code topic} as a {@link PublishException} naming it, as retriable as it was
         * ({@code outsideAHandler}: made by work {@link DefaultEventBus#awaitingPublishes} ran, not by a handler).
         */
        private static PublishException named(String topic, Throwable error, boolean outsideAHandler) {
            return error instanceof PublishException publish ? publish
                    : new PublishException(topic, (outsideAHandler ? "a publish outside a handler failed: "
                    : "a publish of the handler failed: ") + error, error,
                    !(error instanceof StreamSagaException refusal) || refusal.isRetriable());
        }

        /**
         * The first non-retriable failure among the completed stages noted here (those {@link #awaitThoseOf} left in
         * flight), named as there; null when none failed so. Does not wait.
         */
        PublishException refusalAmong() {
            for (int i = 0; i < stages.size(); i++) {
                CompletionStage<RecordPosition> stage = stages.get(i);
                if (!isDone(stage)) {
                    continue; // the transaction's end was left to the broker (closing): not told
                }
                CompletableFuture<RecordPosition> future = stage.toCompletableFuture();
                if (future.isCompletedExceptionally()) {
                    Throwable error = future.handle((position, e) -> e).join(); // done: no wait
                    error = error instanceof CompletionException && error.getCause() != null ? error.getCause() : error;
                    PublishException named = named(topics.get(i), error, false);
                    if (!named.isRetriable()) {
                        return named;
                    }
                }
            }
            return null;
        }

        /** Whether {@code stage} completed; false for one that will not convert to a future (waited for otherwise). */
        private static boolean isDone(CompletionStage<RecordPosition> stage) {
            try {
                return stage.toCompletableFuture().isDone();
            } catch (UnsupportedOperationException e) {
                return false;
            }
        }

        void forget(Message delivered) {
            for (int i = causes.size() - 1; i >= 0; i--) {
                if (causes.get(i) == delivered) {
                    remove(i);
                }
            }
        }

        private void remove(int i) {
            causes.remove(i);
            topics.remove(i);
            messageIds.remove(i);
            stages.remove(i);
        }

        /** Waits for {@code stage}; its failure (unwrapped), or null. */
        private static Throwable outcomeOf(CompletionStage<RecordPosition> stage) throws InterruptedException {
            CompletableFuture<RecordPosition> future;
            try {
                future = stage.toCompletableFuture();
            } catch (UnsupportedOperationException e) { // a stage that will not convert: followed through a callback
                CompletableFuture<RecordPosition> followed = new CompletableFuture<>();
                stage.whenComplete((position, error) -> {
                    if (error != null) {
                        followed.completeExceptionally(error);
                    } else {
                        followed.complete(position);
                    }
                });
                future = followed;
            }
            try {
                future.get();
                return null;
            } catch (ExecutionException e) {
                Throwable error = e.getCause();
                return error instanceof CompletionException && error.getCause() != null ? error.getCause() : error;
            } catch (java.util.concurrent.CancellationException e) {
                return e;
            }
        }
    }

    /**
     * What a dead letter leaves out of its original, one thing more at each redelivery of a record whose dead letter
     * the transport refused as too large ({@link MessageTooLargeException}): nothing, the payload, the original's
     * headers too, its key too, and, for a type over {@link #MAX_KEPT_TYPE_LENGTH}, its type too. What is left at the
     * last step, the dead-letter headers, points at the original (topic, partition, offset, group, error); a dead
     * letter refused even so holds its record until the transport takes it.
     */
    private enum Omitted {
        NOTHING("whole"),
        PAYLOAD("without its payload"),
        HEADERS("without its payload and headers"),
        KEY("without its payload, headers and key"),
        /** Only for a type long enough to be why (a short one cannot be): the type is the topic's name then. */
        TYPE("without its payload, headers, key and type");

        private final String description;

        Omitted(String description) {
            this.description = description;
        }

        String description() {
            return description;
        }

        /** The next step for {@code original}'s dead letter, or null when there is nothing more to leave out. */
        Omitted next(Message original) {
            if (this == KEY) {
                return original.type().length() > MAX_KEPT_TYPE_LENGTH ? TYPE : null;
            }
            return this == TYPE ? null : values()[ordinal() + 1];
        }
    }

    /**
     * The record (by its offset and message id) whose dead letter was refused as too large, and what its next one
     * leaves out.
     */
    private record TooLarge(long offset, String messageId, Omitted omitted) {
        boolean isOf(TransportRecord record) {
            return isSameRecord(offset, messageId, record);
        }
    }

    /**
     * A record waiting for its redelivery: its offset and message id, the attempts made, and when they are spent the
     * error it is to be dead-lettered with (null while attempts remain). In {@code attemptsMade}, also whether the
     * transport is finishing its next attempt ({@link Transport#finishLater}), and the entry of the partition's next
     * waiting record: a partition's entries are a chain in offset order. Immutable: a chain is changed by copying.
     */
    private record Waiting(long offset, String messageId, int attempts, Throwable deadLetterOf, boolean finishing,
                           Waiting later) {
        Waiting(long offset, String messageId, int attempts, Throwable deadLetterOf) {
            this(offset, messageId, attempts, deadLetterOf, false, null);
        }

        boolean isOf(TransportRecord record) {
            return isSameRecord(offset, messageId, record);
        }

        /** The entry of {@code record} in this chain, or null. */
        Waiting entryOf(TransportRecord record) {
            for (Waiting entry = this; entry != null && entry.offset <= record.offset(); entry = entry.later) {
                if (entry.isOf(record)) {
                    return entry;
                }
            }
            return null;
        }

        /**
         * This chain as {@code record} is delivered: without another record's entry at its offset (stale: its topic
         * created again), nor those before it, stale too (handled, or handled elsewhere after a rebalance), unless the
         * transport is finishing their delivery; the record's own entry is no longer being finished (its delivery
         * was given up unfinished); those of later records stay (a seek back to an earlier record, or an exactly-once
         * batch handled again from its first: they keep the attempts they made). Null when none is left.
         */
        Waiting deliveringOf(TransportRecord record) {
            if (offset > record.offset()) {
                return this;
            }
            Waiting rest = later == null ? null : later.deliveringOf(record);
            if (isOf(record) && finishing) {
                return new Waiting(offset, messageId, attempts, deadLetterOf, false, rest);
            }
            if (!isOf(record) && (offset == record.offset() || !finishing)) {
                return rest;
            }
            return rest == later ? this : withLater(rest);
        }

        /** This chain with {@code entry} in offset order, in place of one at its offset. */
        Waiting with(Waiting entry) {
            if (offset == entry.offset) {
                return entry.withLater(later);
            }
            if (offset > entry.offset) {
                return entry.withLater(this);
            }
            return withLater(later == null ? entry.withLater(null) : later.with(entry));
        }

        /**
         * This chain without the entry of {@code record}, unless that is being finished and {@code finished} is
         * false; null when none is left.
         */
        Waiting without(TransportRecord record, boolean finished) {
            if (isOf(record)) {
                return finished || !finishing ? later : this;
            }
            if (later == null || offset > record.offset()) {
                return this;
            }
            Waiting rest = later.without(record, finished);
            return rest == later ? this : withLater(rest);
        }

        private Waiting withLater(Waiting next) {
            return new Waiting(offset, messageId, attempts, deadLetterOf, finishing, next);
        }
    }

    /**
     * Whether {@code record} is the one at {@code offset} with id {@code messageId}: a topic deleted and created again
     * has other records at the old offsets, which Kafka need not tell by a revoke (a consumer rebalances when a topic's
     * partition count changes, not its id). A record without a message id of its own carries one of its position
     * (WireFormat), so for it only a revoke tells. An equals of two ids, no allocation.
     */
    private static boolean isSameRecord(long offset, String messageId, TransportRecord record) {
        return offset == record.offset() && messageId.equals(record.message().id());
    }

    /** Forgets the subscription in the bus when it is closed. */
    private final class TrackedSubscription implements Subscription {
        private final Subscription delegate;
        private final Runnable afterClose;

        TrackedSubscription(Subscription delegate, Runnable afterClose) {
            this.delegate = delegate;
            this.afterClose = afterClose;
        }

        @Override
        public String group() {
            return delegate.group();
        }

        @Override
        public io.streamsaga.bus.TopicPattern pattern() {
            return delegate.pattern();
        }

        @Override
        public boolean isActive() {
            return delegate.isActive();
        }

        @Override
        public void close() {
            subscriptions.remove(this);
            delegate.close();
            afterClose.run();
        }
    }
}
