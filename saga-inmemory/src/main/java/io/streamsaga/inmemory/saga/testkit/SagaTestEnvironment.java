package io.streamsaga.inmemory.saga.testkit;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.MessageInterceptor;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.inmemory.saga.InMemorySagaStore;
import io.streamsaga.message.Message;
import io.streamsaga.retry.RetryPolicy;

import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.SplittableRandom;
import java.util.concurrent.Executor;
import java.util.random.RandomGenerator;

/**
 * The world of one test-kit run: an in-memory transport in manual delivery, a virtual clock, a bus over
 * both, an in-memory saga store and an executor for work on other threads. A fixture subscribes its remote
 * participants on {@link #bus()}. Not thread-safe: the kit drives it from the test thread (and waits while
 * tasks of {@link #executor()} run). Created by the kit for each run, and closed by it when the run is
 * finished (see {@link SagaRunReport}): the store, the transport's records and the clock stay readable.
 */
public final class SagaTestEnvironment {
    /** How long the kit waits for the tasks of {@link #executor()} before it fails the test. */
    public static final Duration EXECUTOR_WAIT = Duration.ofSeconds(30);

    private final InMemoryTransport transport;
    private final VirtualScheduler scheduler;
    private final EventBus bus;
    private final InMemorySagaStore store;
    private final KitExecutor executor = new KitExecutor();
    /** The retry jitter of the run's orchestrators, one sequence over them all (recovery goes on with it). */
    private final Random retryJitter;
    /** The retry jitter of the bus's subscriptions (a participant's handler retried), a sequence of its own. */
    private final Random busRetryJitter;
    /** The Errors handlers threw during the kit's deliveries, not yet taken ({@link #takeHandlerErrors()}). */
    private final List<Error> handlerErrors = new ArrayList<>();
    /**
     * The messages handed to handlers since {@link #clearDeliveries()}, counted by topic and type: the kit clears
     * them when its clock moves, and names them when deliveries at one instant do not end. Keyed by the pair, not
     * its text: the text is needed only for that failure, and this runs on every delivery.
     */
    private final Map<Delivered, Integer> deliveries = new LinkedHashMap<>();

    /** A topic and event type delivered. */
    private record Delivered(String topic, String type) {
    }

    /**
     * {@code observer}: sees what the bus publishes (the kit records when remote compensations start); {@code seed}:
     * of the orchestrators' and the bus's retry jitter; {@code logContext}: the bus's ({@link SagaTestKit#logContext}).
     */
    SagaTestEnvironment(TypeRegistry types, MessageInterceptor observer, long seed, boolean logContext) {
        // Random, drawn from under its lock (RetryJitter) as a stage may complete on the executor's threads. Its seed
        // mixed first: the first draws of Randoms of nearby seeds (0, 1, 2...) are nearly equal, which would explore
        // the same delays. The bus's a sequence of its own, so that a participant's retries do not shift the
        // orchestrators' delays.
        SplittableRandom seeds = new SplittableRandom(seed);
        this.retryJitter = new Random(seeds.nextLong());
        this.busRetryJitter = new Random(seeds.nextLong());
        this.transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        this.scheduler = new VirtualScheduler();
        // Participants' handlers are not retried by the bus: their failures are the saga's to handle.
        // The bus shows the kit every Error a handler throws (a participant's failed assertion, the application's
        // SimulatedCrash, one from the orchestrator's reply handling), which it would otherwise dead-letter or leave
        // to the transport to log and deliver again: the kit fails its call with it.
        this.bus = EventBus.builder(transport).types(types).scheduler(scheduler).retryPolicy(RetryPolicy.NONE)
                .retryJitter(busRetryJitter) // seeded: a subscription with a retry policy of its own repeats its delays
                .logContext(logContext).interceptor(observer).interceptor(new MessageInterceptor() {
                    @Override
                    public Message afterReceive(Message message, String group) {
                        delivered(message);
                        return message;
                    }

                    @Override
                    public void onHandlerFailed(Message message, String group, Throwable error) {
                        if (error instanceof Error e) { // an exception is the bus's retry and dead-letter path
                            handlerFailed(e);
                        }
                    }
                }).build();
        this.store = new InMemorySagaStore();
    }

    public InMemoryTransport transport() {
        return transport;
    }

    public VirtualScheduler scheduler() {
        return scheduler;
    }

    public EventBus bus() {
        return bus;
    }

    public InMemorySagaStore store() {
        return store;
    }

    /**
     * An executor for work that completes the stage of an asynchronous action or compensation on another thread
     * ({@code CompletableFuture.supplyAsync(work, env.executor())}): each task runs on a daemon thread of its own,
     * which ends with the task (a run left open keeps no idle thread), and the kit waits for its tasks (at most
     * {@link #EXECUTOR_WAIT}, then fails) before it delivers messages, moves the virtual clock or returns, so such
     * work takes no virtual time and the run settles as if it were synchronous. Once the run is closed it rejects
     * tasks ({@link java.util.concurrent.RejectedExecutionException}) and a task still running is interrupted.
     * Thread-safe.
     */
    public Executor executor() {
        return executor;
    }

    /** The random source of the run's orchestrators' retry jitter, seeded ({@link SagaTestKit#seed}). */
    RandomGenerator retryJitter() {
        return retryJitter;
    }

    private synchronized void handlerFailed(Error error) {
        handlerErrors.add(error);
    }

    private synchronized void delivered(Message message) {
        deliveries.merge(new Delivered(message.topic(), message.type()), 1, Integer::sum);
    }

    /**
     * The messages handed to handlers since {@link #clearDeliveries()}, by topic and type (as
     * {@code topic 't' type 'e'}), in first-seen order.
     */
    synchronized Map<String, Integer> deliveries() {
        Map<String, Integer> named = new LinkedHashMap<>();
        deliveries.forEach((delivered, count) ->
                named.put("topic '" + delivered.topic() + "' type '" + delivered.type() + "'", count));
        return named;
    }

    synchronized void clearDeliveries() {
        deliveries.clear();
    }

    /** The Errors handlers threw since the last call, in order (the same instance may repeat: redelivered). */
    synchronized List<Error> takeHandlerErrors() {
        List<Error> taken = List.copyOf(handlerErrors);
        handlerErrors.clear();
        return taken;
    }

    /** Waits until no task of {@link #executor()} runs (see there). */
    void awaitExecutor() {
        executor.awaitIdle(EXECUTOR_WAIT);
    }

    /** Closes the bus, transport, virtual clock and executor (the kit's; the store needs no closing). */
    void close() {
        try {
            bus.close();
        } finally {
            try {
                transport.close();
            } finally {
                scheduler.close();
                executor.close();
            }
        }
    }
}
