package io.streamsaga.bus;

import io.streamsaga.ConfigurationException;
import io.streamsaga.codec.EventCodec;
import io.streamsaga.codec.JsonEventCodec;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.internal.bus.DefaultEventBus;
import io.streamsaga.message.Message;
import io.streamsaga.metrics.MetricsRecorder;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.spi.Transport;
import io.streamsaga.time.Scheduler;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletionStage;
import java.util.random.RandomGenerator;

/**
 * Publishes events to topics and delivers them to typed handlers, over any {@link Transport}.
 *
 * <p>Semantics, the same on every transport: at-least-once delivery; order kept per key within a topic;
 * a handler that returns acknowledges; one that throws (an exception, an {@link AssertionError} or a
 * {@link StackOverflowError}) is retried per the subscription's
 * {@link RetryPolicy} and then the message goes to {@code <topic>.DLT} with the error class, message and
 * original topic/partition/offset in headers; a message that cannot be decoded is dead-lettered at once.
 * One bad message never stops a consumer and nothing is dropped silently. Any other {@link Error} (out of
 * memory, or an error an application throws to stand for its process dying) is not the message's fault:
 * the bus lets it through to the transport, as a crash would, and the record is not acknowledged.
 *
 * <p>Publishing from inside a handler (on its thread) propagates the handled message's correlation id,
 * saga id and {@code traceparent}, and sets the causation id to its message id. Such a publish is part of the
 * delivery, whether or not the handler waits for its stage: the message is acknowledged only once every publish its
 * handler made on that thread has completed (on Kafka, once the broker took the record), and a publish that failed
 * (bad input, such as a class the registry lacks, or the transport's refusal) fails the handling as if the handler had
 * thrown a {@link PublishException} naming its topic: retried per the policy when it is retriable, then dead-lettered.
 * A failed {@link #publish(Message)} whose message the handler then sends again under the same id, successfully (a
 * smaller form after a refusal as too large), counts as sent. In a transport's transaction with the delivery (Kafka's
 * exactly-once mode) what the transport took or refused is that transaction's, which a failed send aborts. A publish
 * from another thread the handler started is not part of the delivery: wait for that one's stage in the handler. Nor
 * is one made by a {@link MessageInterceptor}'s hook or a {@link DeadLetterListener}, which run after the handler:
 * such a one is waited for, as any outside a handler, in the work {@link #awaitingPublishes} runs.
 *
 * <p>Thread-safe. Closing the bus closes its subscriptions and the scheduler it created, if it created one (not the
 * transport, nor a scheduler it was given, which the application owns and may share); a closed bus refuses to subscribe, with a {@link io.streamsaga.ConfigurationException}, and to
 * publish, failing the stage with one.
 */
public interface EventBus extends AutoCloseable {

    /**
     * Publishes {@code event} under the type id and version registered for its class (inside a handler, as part of
     * its delivery: see the class comment). The key may be null;
     * bad input (a null or illegal topic, a null event) fails the returned stage with a
     * {@link io.streamsaga.ConfigurationException} naming it (an unregistered class: an
     * {@link io.streamsaga.codec.UnknownEventTypeException}; on a transport of bytes, an event the codec cannot encode
     * as JSON that reads back, a lone surrogate in a field name say: an {@link io.streamsaga.codec.EncodingException}),
     * and nothing is sent. The transport's send may
     * block the calling thread while it cannot take the message yet (on Kafka up to the producer's
     * {@code max.block.ms}, 60 s by default: docs/kafka.md). Once {@link #close()} has returned, every publish fails
     * its stage with a {@link io.streamsaga.ConfigurationException} and sends nothing.
     */
    CompletionStage<RecordPosition> publish(String topic, String key, Object event);

    /** Publishes {@code event} with extra headers; null headers, or a null header name or value, fail the stage as bad input. */
    CompletionStage<RecordPosition> publish(String topic, String key, Object event, Map<String, String> headers);

    /**
     * Publishes a fully built message (its id is kept, correlation headers are added when missing); a null
     * message fails the stage as bad input, and so does a payload that is an object of a class of the bus's
     * {@link io.streamsaga.codec.TypeRegistry} under a type or version other than the one registered for it (a
     * {@link io.streamsaga.ConfigurationException} naming the registered one: its consumers would read it as another
     * version, or dead-letter it as an unknown type). An encoded payload (bytes, a JSON tree) and an object of a class
     * the registry does not know are sent as they are.
     */
    CompletionStage<RecordPosition> publish(Message message);

    /**
     * Subscribes a consumer group to a topic or wildcard pattern, from the latest position; refused once closed, for
     * a topic over {@link TopicPattern#MAX_TOPIC_LENGTH} characters (a long dead-letter topic), whose own dead
     * letters could not be sent, and for a wildcard that matches no topic ({@code *.DLT}, {@code __*}: a wildcard
     * never matches a dead-letter or internal topic; subscribe to one by its exact name), whose subscription would
     * never get a message, and for an {@code eventType} the codec cannot decode to (neither {@link Message}, a
     * {@code JsonNode} nor a class of the bus's {@link io.streamsaga.codec.TypeRegistry}), whose handler would get
     * none either: every message would be dead-lettered as undecodable. The refusal names the call that registers an
     * application's class; for a JDK or generic type ({@code String}, {@code byte[]}, {@code Map}) it says to take
     * {@link Message} or {@code JsonNode} and read the payload instead.
     */
    <T> Subscription subscribe(String group, String topicPattern, Class<T> eventType, EventHandler<T> handler);

    /** Subscribes with explicit options (start position, retry policy). */
    <T> Subscription subscribe(String group, String topicPattern, Class<T> eventType, SubscriptionOptions options,
                               EventHandler<T> handler);

    /**
     * Subscribes every {@link EventPattern} method of {@code handlers} under {@code group}: all or none (every method
     * is checked first, and a subscription that fails closes those already made before the exception is thrown).
     * Each method is a member of the group, and the members of a group share its messages, so an object two of whose
     * methods take topics in common (the same topic, a wildcard matching the other's topic, two wildcards matching
     * one topic, as {@link TopicPattern#matches} matches: never a dead-letter or internal topic for a wildcard) is
     * refused with a {@link io.streamsaga.ConfigurationException}: each would get only some of them. So is a method
     * whose event class the codec cannot decode to, as {@link #subscribe} refuses it.
     * A method implementing a generic interface's is one method, though javac adds a bridge carrying its annotation.
     * A pattern holding a placeholder ({@code ${env}.orders}) is refused, naming the method and the placeholder: '$'
     * and braces are no topic characters, and the placeholder's value is given with
     * {@link #register(String, Object, RegistrationOptions)}. The same as that with {@link RegistrationOptions#defaults()}.
     */
    default List<Subscription> register(String group, Object handlers) {
        return register(group, handlers, RegistrationOptions.defaults());
    }

    /**
     * As {@link #register(String, Object)}, with {@code options}: each {@code ${name}} placeholder of a method's pattern
     * replaced by its value ({@link RegistrationOptions#placeholders()}), and each method's handler wrapped by the
     * {@link RegistrationOptions#decorator() decorator} ({@code idempotentConsumer::wrap}). Every check applies to the
     * resolved patterns (topics in common, a pattern matching no topic, a topic too long); a placeholder with no value,
     * a blank one, one holding other than topic characters ({@code *} included), a malformed placeholder (each named
     * with the method and its annotation's value), and a decorator returning null (naming the method) are refused with a
     * {@link io.streamsaga.ConfigurationException}, before anything is subscribed. A class implementing this interface
     * by delegating to another bus delegates this method (the two-argument one calls it).
     */
    List<Subscription> register(String group, Object handlers, RegistrationOptions options);

    /** The message being handled on the calling thread, if any. */
    Optional<Message> currentMessage();

    /**
     * Waits for what the handler running on the calling thread has published so far as part of its delivery (see the
     * class comment), which the delivery then no longer waits for; throws the {@link PublishException} of a failed one
     * (naming its topic). Outside a handler (on a timer's thread, and in an interceptor's hook or a dead-letter
     * listener, which run with a message current but no handler running) it waits for what the work
     * {@link #awaitingPublishes} runs on the calling thread published so far, which that work then no longer waits for,
     * and returns at once outside such work.
     * In a handler in a transport's transaction with the delivery (Kafka's exactly-once mode) it does not wait for
     * publishes still in flight, which the transaction answers for, and throws only for one that failed already.
     * A handler need not call it: the bus waits for those publishes itself once the handler returns. It is for a
     * wrapper of a handler that acts once the handler's work is done, before the delivery ends:
     * {@link io.streamsaga.idempotency.IdempotentConsumer} marks a key done only after it. A class implementing this
     * interface by delegating to another bus delegates this method too.
     *
     * @throws InterruptedException when interrupted while waiting
     */
    void awaitPublishes() throws InterruptedException;

    /**
     * Runs {@code work} on the calling thread and waits for what it published there through this bus, whether or not it
     * waited for those stages itself; throws the {@link PublishException} of one that failed (naming its topic), as a
     * delivery fails on a failed publish of its handler, else returns what {@code work} returned. In a handler it waits
     * for what the delivery published so far, as {@link #awaitPublishes()} does (in a transport's transaction with the
     * delivery, Kafka's exactly-once mode, that transaction answers for them instead); outside one, where no delivery
     * waits for them (a timer's thread, an interceptor's hook or a dead-letter listener: a message current but no
     * handler running), for the publishes {@code work} made on this thread. For work whose outcome is recorded only once
     * what it published went through: an aggregator records a group released only once its releaser's publishes did; a
     * hook that must know its alert went out. A publish from another thread the work started is not waited for. The
     * default, for a class implementing this interface by
     * delegating to another bus (which should delegate this method), runs {@code work} and then {@link
     * #awaitPublishes()}.
     *
     * @throws Exception what {@code work} threw, or the {@link PublishException} of a publish of it that failed
     */
    default <T> T awaitingPublishes(Callable<T> work) throws Exception {
        T result = work.call();
        awaitPublishes();
        return result;
    }

    /** The codec (and through it the type registry). */
    EventCodec codec();

    /** The transport underneath. */
    Transport transport();

    /** The scheduler used for backoff and time. */
    Scheduler scheduler();

    /**
     * The metrics recorder, {@link MetricsRecorder#guarded guarded}: what the configured one throws is logged and
     * ignored (the patterns built on this bus record through it).
     */
    MetricsRecorder metrics();

    /**
     * Closes every subscription made through this bus, one being made meanwhile included (its subscribe then throws);
     * from then on, subscribing is refused with a {@link io.streamsaga.ConfigurationException}. Once it has returned,
     * publishing fails the stage with one too (a handler finishing while its subscription closes may still publish).
     * A bus built without a {@link Builder#scheduler scheduler} then closes the one it created (its thread ends; a
     * component built on the bus, an aggregator say, can schedule nothing on it afterwards: close those first); a
     * scheduler the bus was given is left running.
     */
    @Override
    void close();

    /** Starts a bus over {@code transport}. */
    static Builder builder(Transport transport) {
        return new Builder(transport);
    }

    /**
     * Immutable configuration of a bus.
     *
     * @param transport    the transport
     * @param codec        the codec
     * @param retryPolicy  default retry policy of subscriptions
     * @param scheduler    time and backoff
     * @param metrics      metrics recorder; kept {@link MetricsRecorder#guarded guarded}
     * @param interceptors publish/receive interceptors, in order
     * @param logContext   whether a delivered message's id, topic, group, correlation id, partition and offset are in
     *                     slf4j's MDC while the bus handles it ({@link Builder#logContext})
     * @param retryJitter  the random source of the retry policies' jitter ({@link Builder#retryJitter}), or null for
     *                     {@link java.util.concurrent.ThreadLocalRandom}'s of the thread that retries
     */
    record Config(Transport transport, EventCodec codec, RetryPolicy retryPolicy, Scheduler scheduler,
                  MetricsRecorder metrics, List<MessageInterceptor> interceptors, boolean logContext,
                  RandomGenerator retryJitter) {

        /** A configuration without log context (see {@link Builder#logContext}), with the default jitter. */
        public Config(Transport transport, EventCodec codec, RetryPolicy retryPolicy, Scheduler scheduler,
                      MetricsRecorder metrics, List<MessageInterceptor> interceptors) {
            this(transport, codec, retryPolicy, scheduler, metrics, interceptors, false, null);
        }

        /** A configuration with the default jitter ({@link java.util.concurrent.ThreadLocalRandom}). */
        public Config(Transport transport, EventCodec codec, RetryPolicy retryPolicy, Scheduler scheduler,
                      MetricsRecorder metrics, List<MessageInterceptor> interceptors, boolean logContext) {
            this(transport, codec, retryPolicy, scheduler, metrics, interceptors, logContext, null);
        }

        public Config {
            Objects.requireNonNull(transport, "transport");
            Objects.requireNonNull(codec, "codec");
            Objects.requireNonNull(retryPolicy, "retryPolicy");
            Objects.requireNonNull(scheduler, "scheduler");
            metrics = MetricsRecorder.guarded(Objects.requireNonNull(metrics, "metrics")); // what it throws: logged, ignored
            interceptors = List.copyOf(interceptors);
        }
    }

    /** Builds an {@link EventBus}; not thread-safe. */
    final class Builder {
        private final Transport transport;
        /** Null until given: the default JSON codec's registry is then empty. */
        private TypeRegistry types;
        private EventCodec codec;
        private RetryPolicy retryPolicy = RetryPolicy.DEFAULT;
        private Scheduler scheduler;
        private MetricsRecorder metrics = MetricsRecorder.NOOP;
        private final List<MessageInterceptor> interceptors = new ArrayList<>();
        private boolean logContext;
        private RandomGenerator retryJitter;

        private Builder(Transport transport) {
            this.transport = Objects.requireNonNull(transport, "transport");
        }

        /** The type registry for the default JSON codec; refused at {@link #build} together with a {@link #codec}. */
        public Builder types(TypeRegistry types) {
            this.types = Objects.requireNonNull(types, "types");
            return this;
        }

        /**
         * A codec other than JSON over {@link #types}, bringing its own registry ({@link EventCodec#types}): given with
         * {@code types(...)} it is refused at {@link #build}, which one to keep being the application's to say.
         */
        public Builder codec(EventCodec codec) {
            this.codec = Objects.requireNonNull(codec, "codec");
            return this;
        }

        public Builder retryPolicy(RetryPolicy retryPolicy) {
            this.retryPolicy = Objects.requireNonNull(retryPolicy, "retryPolicy");
            return this;
        }

        /**
         * Time and backoff, and the scheduler of the components built on this bus that take it from
         * {@link EventBus#scheduler()}; the application's to close. Without one, the bus creates a
         * {@link Scheduler#system()} and closes it on {@link EventBus#close()}: close such components first.
         */
        public Builder scheduler(Scheduler scheduler) {
            this.scheduler = Objects.requireNonNull(scheduler, "scheduler");
            return this;
        }

        public Builder metrics(MetricsRecorder metrics) {
            this.metrics = Objects.requireNonNull(metrics, "metrics");
            return this;
        }

        public Builder interceptor(MessageInterceptor interceptor) {
            interceptors.add(Objects.requireNonNull(interceptor, "interceptor"));
            return this;
        }

        /**
         * Puts the id ({@code streamsaga.messageId}), topic ({@code streamsaga.topic}), consumer group
         * ({@code streamsaga.group}), correlation id ({@code streamsaga.correlationId}), partition
         * ({@code streamsaga.partition}) and offset ({@code streamsaga.offset}) of the message being delivered in
         * slf4j's {@link org.slf4j.MDC} while the bus handles it on the subscription's thread (receive
         * interceptors, decoding, the handler and its retries, the dead letter), so that the handler's log lines and
         * the bus's carry them; the thread's own values are put back afterwards. Off by default: each put costs a
         * thread-local map update in a real MDC adapter, on every delivery. See docs/architecture.md, "Log
         * correlation".
         */
        public Builder logContext(boolean logContext) {
            this.logContext = logContext;
            return this;
        }

        /**
         * The random source of the jitter of every subscription's retry policy's backoff
         * ({@link RetryPolicy#delayBefore}); {@link java.util.concurrent.ThreadLocalRandom} by default. A seeded one
         * ({@code new java.util.Random(seed)}) makes the delays repeat from run to run, as the test kit does for
         * reproducible runs ({@code SagaOrchestrator.Builder.retryJitter} is the same for sagas' steps). It is drawn
         * from only when a handler's failure is retried, on the subscription's thread, holding its lock (synchronized
         * on it): subscriptions on several threads, and other buses and orchestrators given the same source, never draw
         * from it at once, so it need not be thread-safe itself ({@code SplittableRandom} will do) as long as nothing
         * else draws from it; the delays then repeat only as far as the order of the retries does.
         */
        public Builder retryJitter(RandomGenerator random) {
            this.retryJitter = Objects.requireNonNull(random, "random");
            return this;
        }

        /**
         * Builds the bus.
         *
         * @throws ConfigurationException for both a {@link #codec} and a {@link #types} registry
         */
        public EventBus build() {
            // The codec's registry is the one it decodes with: the other one was dropped without a word.
            ConfigurationException.require(codec == null || types == null, "an EventBus takes a codec(...) or a types(...)"
                    + " registry for the default JSON codec, not both: keep codec(...) and give it the registry, or keep"
                    + " types(...) and drop codec(...) for the JSON codec");
            boolean ownScheduler = scheduler == null; // closed with the bus
            return new DefaultEventBus(new Config(transport, codec != null ? codec
                    : new JsonEventCodec(types != null ? types : TypeRegistry.empty()),
                    retryPolicy, ownScheduler ? Scheduler.system() : scheduler, metrics, interceptors, logContext,
                    retryJitter),
                    ownScheduler);
        }
    }
}
