package io.streamsaga.idempotency;

import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.DeliveryContext;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.EventHandler;
import io.streamsaga.idempotency.spi.ClaimOutcome;
import io.streamsaga.idempotency.spi.DeduplicationStore;
import io.streamsaga.message.DerivedIds;
import io.streamsaga.metrics.MetricsRecorder;
import io.streamsaga.spi.Transport;
import io.streamsaga.time.Scheduler;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.Map;
import java.util.Objects;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;

/**
 * Wraps handlers so that each message key is processed once, even when the transport delivers it again
 * (at-least-once) or delivers it twice at the same time.
 *
 * <ul>
 *   <li>Before the handler runs, the key (by default consumer group + message id) is claimed atomically in
 *       the {@link DeduplicationStore}. A key already done is skipped (the delivery is acknowledged); a key
 *       claimed by a concurrent delivery fails this attempt with the retriable
 *       {@link ClaimInProgressException}, so the bus retries it and then sees the outcome.</li>
 *   <li>A claim is a lease: if the process crashes while handling, the claim ends after {@link Config#lease()}
 *       and a redelivery can run. Choose a lease longer than the slowest handler.</li>
 *   <li>A handler that throws releases its claim, so the bus's retry runs it again; so does one whose publish (made
 *       on its thread, awaited or not) failed ({@link EventBus#awaitPublishes}).</li>
 *   <li>A handler that returned has its key marked done once the delivery stays handled
 *       ({@link Transport#afterDelivery}): at once on most transports; on Kafka in exactly-once mode once the poll
 *       batch's transaction committed, while one that aborted (a later record of the batch failed an attempt) has the
 *       claim released, so the record, delivered again, runs again and its outputs are published again rather than
 *       lost. Meanwhile the same key delivered on that thread (a duplicate in the same batch) is skipped with it.</li>
 *   <li>A handler that returned is acknowledged even when the store then fails to mark its key done (logged):
 *       failing the delivery would have the bus's retry run the handler again once the lease ended. The
 *       claim then ends with its lease, as after a crash.</li>
 * </ul>
 * Refuses at build time a store whose window is shorter than the transport's replay horizon.
 *
 * <p>A concurrent duplicate is retried rather than acknowledged because acknowledging it would commit the
 * position past a message whose only other delivery may still crash. Its retries therefore need to outlast
 * the handler: when the subscription's retry policy gives up first, the duplicate is dead-lettered with
 * {@link ClaimInProgressException} — visible, never lost, and the original delivery still completes.
 * Thread-safe.
 */
public final class IdempotentConsumer {
    private static final Logger log = LoggerFactory.getLogger(IdempotentConsumer.class);
    /** Counter of deliveries skipped as duplicates. */
    public static final String DUPLICATES_METRIC = "streamsaga_idempotent_duplicates_total";

    private final Config config;
    private final EventBus bus;
    private final Transport transport;
    /**
     * Keys whose handler returned in a delivery the transport may still withdraw (a Kafka transaction not ended yet),
     * with the thread of that delivery: the claim is held until the transport tells, and a delivery of the same key on
     * that thread meanwhile (a duplicate in the same poll batch) shares its fate, so it is a duplicate, not a claim in
     * progress (retried, that would abort the batch for ever). Empty on a transport that never withdraws a delivery.
     */
    private final Map<String, Thread> awaitingOutcome = new ConcurrentHashMap<>();
    /**
     * Claim owners are this instance's random prefix plus a counter: unique across processes like a UUID,
     * without paying for {@code UUID.randomUUID()} (a SecureRandom read) on every delivery.
     */
    private final String ownerPrefix = UUID.randomUUID() + "-";
    private final AtomicLong owners = new AtomicLong();

    private IdempotentConsumer(Config config, EventBus bus) {
        this.config = config;
        this.bus = bus;
        this.transport = bus.transport();
    }

    /** Starts a consumer over {@code bus} (for time, metrics and the replay horizon) and {@code store}. */
    public static Builder builder(EventBus bus, DeduplicationStore store) {
        return new Builder(bus, store);
    }

    /** This consumer's configuration. */
    public Config config() {
        return config;
    }

    /**
     * A handler that runs {@code handler} at most once per key (see the class comment). For the
     * {@link io.streamsaga.bus.EventPattern} methods of an object, give it as their decorator:
     * {@code bus.register(group, service, RegistrationOptions.builder().around(consumer::wrap).build())}, on the bus this
     * consumer was built over (it waits for the handler's publishes through that bus's
     * {@link EventBus#awaitPublishes}). The default key (group and message id) is then shared by the object's methods,
     * as by any handlers of one group.
     */
    public <T> EventHandler<T> wrap(EventHandler<T> handler) {
        Objects.requireNonNull(handler, "handler");
        return (event, context) -> handleOnce(event, context, handler);
    }

    private <T> void handleOnce(T event, DeliveryContext context, EventHandler<T> handler) throws Exception {
        String key = config.keyFunction().apply(context);
        ConfigurationException.require(key != null && !key.isBlank(),
                "idempotency key function returned a blank key for %s", context.message());
        String owner = ownerPrefix + owners.incrementAndGet();
        Scheduler scheduler = config.scheduler();
        ClaimOutcome outcome = config.store().tryClaim(key, owner, scheduler.clock().instant(), config.lease());
        switch (outcome) {
            case DONE -> {
                skipDuplicate(context, key);
                return;
            }
            case IN_PROGRESS -> {
                if (!awaitingOutcome.isEmpty() && awaitingOutcome.get(key) == Thread.currentThread()) {
                    skipDuplicate(context, key); // kept or withdrawn with the delivery that holds the claim
                    return;
                }
                throw new ClaimInProgressException(key);
            }
            case ACQUIRED -> {
                // fall through to run the handler
            }
        }
        try {
            handler.handle(event, context);
            bus.awaitPublishes(); // its publishes are its work: one that failed fails it before the key is done
        } catch (Exception | Error e) {
            try {
                config.store().release(key, owner);
            } catch (RuntimeException releaseFailure) {
                // the claim then ends with its lease; the delivery fails with the handler's error, not the store's
                e.addSuppressed(releaseFailure);
            }
            throw e;
        }
        // Done once the delivery stays handled: a delivery the transport withdraws (a Kafka transaction aborted for a
        // later record of its batch, with this handler's outputs) is delivered again and must run again.
        Outcome told = new Outcome(key, owner, context);
        transport.afterDelivery(told::kept, told::withdrawn);
        if (!told.told) {
            told.awaited = Thread.currentThread();
            awaitingOutcome.put(key, told.awaited);
        }
    }

    private void skipDuplicate(DeliveryContext context, String key) {
        log.debug("skipping duplicate {} (key {})", context.message(), key);
        config.metrics().increment(DUPLICATES_METRIC, Map.of("group", context.group(), "topic", context.topic()));
    }

    /** What to do with a handled delivery's claim once the transport tells whether the delivery stays handled. */
    private final class Outcome {
        private final String key;
        private final String owner;
        private final DeliveryContext context;
        /** Told already (at once, on most transports); read and written on the delivery's thread. */
        private boolean told;
        private Thread awaited;

        Outcome(String key, String owner, DeliveryContext context) {
            this.key = key;
            this.owner = owner;
            this.context = context;
        }

        void kept() {
            settled();
            complete(key, owner, context);
        }

        void withdrawn() {
            settled();
            try {
                config.store().release(key, owner);
            } catch (RuntimeException e) {
                log.warn("delivery of {} was withdrawn by the transport but key {} could not be released ({}); its claim"
                        + " ends with the lease {}, and its redelivery waits for that", context.message(), key, e.toString(),
                        config.lease());
            }
        }

        private void settled() {
            told = true;
            if (awaited != null) {
                awaitingOutcome.remove(key, awaited);
            }
        }
    }

    private void complete(String key, String owner, DeliveryContext context) {
        boolean completed;
        try {
            completed = config.store().complete(key, owner, config.scheduler().clock().instant());
        } catch (RuntimeException e) {
            // The handler ran: failing the delivery would have the bus retry it, and the retry run the handler
            // again once the claim's lease ended. Acknowledge it; the claim ends with its lease, as after a crash.
            log.warn("handler of {} succeeded but key {} could not be marked done ({}); its claim ends with the lease {},"
                    + " after which a redelivery would run it again", context.message(), key, e.toString(), config.lease());
            return;
        }
        if (!completed) {
            // The lease ended while the handler ran and another delivery took the key over: both ran.
            log.warn("handler of {} outlived its idempotency lease {}; key {} may have been processed twice",
                    context.message(), config.lease(), key);
        }
    }

    /**
     * Immutable configuration.
     *
     * @param store       where claims and done keys live
     * @param scheduler   source of time
     * @param metrics     where duplicates are counted; kept {@link MetricsRecorder#guarded guarded}
     * @param lease       how long a claim lasts if its holder never completes or releases it
     * @param keyFunction the deduplication key of a delivery
     */
    public record Config(DeduplicationStore store, Scheduler scheduler, MetricsRecorder metrics, Duration lease,
                         Function<DeliveryContext, String> keyFunction) {
        public Config {
            Objects.requireNonNull(store, "store");
            Objects.requireNonNull(scheduler, "scheduler");
            metrics = MetricsRecorder.guarded(Objects.requireNonNull(metrics, "metrics")); // what it throws: logged, ignored
            Objects.requireNonNull(keyFunction, "keyFunction");
            ConfigurationException.requirePositive(lease, "lease");
        }
    }

    /** Builds an {@link IdempotentConsumer}; not thread-safe. */
    public static final class Builder {
        private final EventBus bus;
        private final DeduplicationStore store;
        private Duration lease = Duration.ofMinutes(5);
        private Function<DeliveryContext, String> keyFunction = ctx -> DerivedIds.joined(ctx.group(), ctx.message().id());

        private Builder(EventBus bus, DeduplicationStore store) {
            this.bus = Objects.requireNonNull(bus, "bus");
            this.store = Objects.requireNonNull(store, "store");
        }

        /** How long a claim lasts without completion (default 5 minutes). */
        public Builder lease(Duration lease) {
            this.lease = lease;
            return this;
        }

        /**
         * The deduplication key (default: consumer group + "/" + message id, so that two groups sharing a
         * store each process the message; a '/' or '\' within either escaped with a '\', {@link DerivedIds#joined},
         * so that group {@code billing/eu} with message {@code 7} and group {@code billing} with message {@code eu/7}
         * keep apart). Use an application key when producers cannot keep ids stable.
         */
        public Builder keyFunction(Function<DeliveryContext, String> keyFunction) {
            this.keyFunction = Objects.requireNonNull(keyFunction, "keyFunction");
            return this;
        }

        public IdempotentConsumer build() {
            WindowChecks.requireCoversReplay(store, bus.transport());
            return new IdempotentConsumer(new Config(store, bus.scheduler(), bus.metrics(), lease, keyFunction), bus);
        }
    }
}
