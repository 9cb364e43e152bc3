package io.streamsaga.strangler;

import io.streamsaga.ConfigurationException;
import io.streamsaga.metrics.MetricsRecorder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Clock;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BiPredicate;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.function.UnaryOperator;

/**
 * The strangler fig's front door: routes each request to the legacy or the new implementation by
 * {@link RoutingRules} that can be replaced at run time (route by route, by percentage, by tenant), so a
 * migration moves one route at a time and can be rolled back by a rule change.
 *
 * <p>In {@link Target#SHADOW} the gateway calls both (the new one on the caller's thread after the legacy one,
 * or on a {@linkplain Builder#shadowExecutor shadow executor}), returns the legacy answer, and records every
 * mismatch (a different answer by the configured equality, or an exception from the new implementation,
 * which never reaches the caller, nor does an {@link AssertionError}, a {@link StackOverflowError} or a
 * {@link LinkageError} such as {@link NoClassDefFoundError}): each one goes to the {@link #onMismatch}
 * listeners (whose own failures, of the same kinds, are logged and reach no caller either), is counted ({@link #mismatchCount()}, and the {@code strangler_shadow_mismatches} metric)
 * and the latest ones are kept for inspection. Percentage routing is deterministic: a request's sticky key (by default its tenant)
 * is hashed into one of 100 buckets, so a user stays on one side; requests without a key are spread by a
 * counter.
 *
 * <p>Thread-safe; the builder is not.
 *
 * @param <Q> the request type
 * @param <R> the response type
 */
public final class StranglerGateway<Q, R> {
    private static final Logger log = LoggerFactory.getLogger(StranglerGateway.class);
    /** Counter of routed requests (tags {@code route}, {@code target}). */
    public static final String REQUESTS_COUNTER = "strangler_requests";
    /** Counter of shadow mismatches (tag {@code route}). */
    public static final String MISMATCH_COUNTER = "strangler_shadow_mismatches";

    private final Backend<Q, R> legacy;
    private final Backend<Q, R> modern;
    private final Function<Q, String> routeOf;
    private final Function<Q, String> tenantOf;
    private final Function<Q, String> stickyKeyOf;
    private final BiPredicate<R, R> sameAnswer;
    private final MetricsRecorder metrics;
    private final Clock clock;
    private final int keptMismatches;
    private final Executor shadowExecutor;
    private final AtomicReference<RoutingRules> rules;
    private final AtomicLong spread = new AtomicLong();
    private final AtomicLong mismatchCount = new AtomicLong();
    private final Deque<Mismatch> latestMismatches = new ArrayDeque<>();
    private final List<Consumer<Mismatch>> listeners = new CopyOnWriteArrayList<>();

    private StranglerGateway(Builder<Q, R> builder) {
        this.legacy = builder.legacy;
        this.modern = builder.modern;
        this.routeOf = builder.routeOf;
        this.tenantOf = builder.tenantOf;
        this.stickyKeyOf = builder.stickyKeyOf != null ? builder.stickyKeyOf : builder.tenantOf;
        this.sameAnswer = builder.sameAnswer;
        this.metrics = MetricsRecorder.guarded(builder.metrics);
        this.clock = builder.clock;
        this.keptMismatches = builder.keptMismatches;
        this.shadowExecutor = builder.shadowExecutor;
        this.rules = new AtomicReference<>(builder.rules);
    }

    /** Starts a gateway in front of {@code legacy} and {@code modern}; {@code routeOf} names a request's route. */
    public static <Q, R> Builder<Q, R> builder(Backend<Q, R> legacy, Backend<Q, R> modern, Function<Q, String> routeOf) {
        return new Builder<>(legacy, modern, routeOf);
    }

    /** The rules in force. */
    public RoutingRules rules() {
        return rules.get();
    }

    /** Replaces the rules; requests already routed finish where they went. */
    public void rules(RoutingRules next) {
        RoutingRules previous = rules.getAndSet(Objects.requireNonNull(next, "rules"));
        log.info("strangler rules changed from {} to {}", previous, next);
    }

    /**
     * Changes the rules atomically, e.g. {@code gateway.update(r -> r.withRoute("orders", Target.MODERN))}. A change
     * that returns null is refused with a {@link NullPointerException}, as {@link #rules(RoutingRules)} refuses null,
     * and the rules in force stay (installed, null would fail every request after it).
     */
    public RoutingRules update(UnaryOperator<RoutingRules> change) {
        Objects.requireNonNull(change, "change");
        RoutingRules next = rules.updateAndGet(current -> Objects.requireNonNull(change.apply(current),
                () -> "rules change returned null for " + current));
        log.info("strangler rules changed to {}", next);
        return next;
    }

    /**
     * Calls {@code listener} for every mismatch found in shadow mode, on the thread of the shadow call. A
     * listener that throws (an exception, or an error the gateway records from the new implementation) is
     * logged and skipped: it never reaches the caller nor keeps the mismatch from the other listeners.
     */
    public void onMismatch(Consumer<Mismatch> listener) {
        listeners.add(Objects.requireNonNull(listener, "listener"));
    }

    /** Where {@code request} would go under the current rules. */
    public RoutingDecision route(Q request) {
        RoutingRules current = rules.get();
        String route = routeOf.apply(request);
        ConfigurationException.require(route != null, "request %s has no route", request);
        String tenant = tenantOf == null ? null : tenantOf.apply(request);
        if (tenant != null && current.tenants().containsKey(tenant)) {
            return new RoutingDecision(route, tenant, current.tenants().get(tenant), "tenant");
        }
        Target explicit = current.routes().get(route);
        if (explicit != null) {
            return new RoutingDecision(route, tenant, explicit, "route");
        }
        Integer percent = current.percentToModern().get(route);
        if (percent != null) {
            String key = stickyKeyOf == null ? null : stickyKeyOf.apply(request);
            long bucket = key == null ? Math.floorMod(spread.getAndIncrement(), 100L) : Math.floorMod(key.hashCode() * 31 + route.hashCode(), 100);
            return new RoutingDecision(route, tenant, bucket < percent ? Target.MODERN : Target.LEGACY, "percentage");
        }
        return new RoutingDecision(route, tenant, current.defaultTarget(), "default");
    }

    /**
     * Serves {@code request} from the implementation the rules choose. In shadow mode the legacy answer
     * (or exception) is what the caller gets; the new implementation's answer is only compared.
     */
    public R handle(Q request) throws Exception {
        RoutingDecision decision = route(request);
        metrics.increment(REQUESTS_COUNTER, Map.of("route", decision.route(), "target", decision.target().name().toLowerCase()));
        switch (decision.target()) {
            case LEGACY:
                return legacy.call(request);
            case MODERN:
                return modern.call(request);
            default:
                R answer = legacy.call(request);
                if (shadowExecutor == null) {
                    shadow(request, decision, answer);
                } else {
                    try {
                        shadowExecutor.execute(() -> shadow(request, decision, answer));
                    } catch (RuntimeException e) {
                        // A saturated or stopped shadow pool skips the comparison; the caller was served.
                        log.warn("shadow call on route {} not run: {}", decision.route(), e.toString());
                    }
                }
                return answer;
        }
    }

    private void shadow(Q request, RoutingDecision decision, R legacyAnswer) {
        R modernAnswer = null;
        String error = null;
        try {
            modernAnswer = modern.call(request);
            if (sameAnswer.test(legacyAnswer, modernAnswer)) {
                return;
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            error = e.toString();
        } catch (Exception | AssertionError | StackOverflowError | LinkageError e) {
            // Errors a half-deployed new implementation throws (a class missing from its classpath, a failing
            // static initialiser, endless recursion) are its failures too; only the JVM's own (out of memory,
            // an internal error) go through. The bus catches the same set from a handler but a LinkageError,
            // which it lets through (the message is not at fault); here the caller has its legacy answer.
            error = e.toString();
        }
        Mismatch mismatch = new Mismatch(decision.route(), decision.tenant(), request, legacyAnswer, modernAnswer, error, clock.instant());
        mismatchCount.incrementAndGet();
        synchronized (latestMismatches) {
            latestMismatches.addLast(mismatch);
            while (latestMismatches.size() > keptMismatches) {
                latestMismatches.removeFirst();
            }
        }
        metrics.increment(MISMATCH_COUNTER, Map.of("route", decision.route()));
        log.warn("shadow mismatch on route {}: legacy {} vs new {}{}", decision.route(), legacyAnswer, modernAnswer,
                error == null ? "" : " (" + error + ")");
        for (Consumer<Mismatch> listener : listeners) {
            try {
                listener.accept(mismatch);
            } catch (Exception | AssertionError | StackOverflowError | LinkageError e) {
                // the same set as the new implementation's (a checked exception too: a Kotlin listener, a sneaky
                // throw): the caller has its legacy answer (or, on a shadow
                // executor, the executor's thread lives on), and the other listeners still hear of the mismatch
                log.error("mismatch listener failed on route {}", decision.route(), e);
            }
        }
    }

    /** How many mismatches shadow mode has found since the gateway was built. */
    public long mismatchCount() {
        return mismatchCount.get();
    }

    /** The latest mismatches (up to the configured number), oldest first. */
    public List<Mismatch> mismatches() {
        synchronized (latestMismatches) {
            return List.copyOf(latestMismatches);
        }
    }

    /**
     * Builds a {@link StranglerGateway}; not thread-safe.
     *
     * @param <Q> the request type
     * @param <R> the response type
     */
    public static final class Builder<Q, R> {
        private final Backend<Q, R> legacy;
        private final Backend<Q, R> modern;
        private final Function<Q, String> routeOf;
        private Function<Q, String> tenantOf;
        private Function<Q, String> stickyKeyOf;
        private BiPredicate<R, R> sameAnswer = Objects::equals;
        private MetricsRecorder metrics = MetricsRecorder.NOOP;
        private Clock clock = Clock.systemUTC();
        private int keptMismatches = 1000;
        private RoutingRules rules = RoutingRules.allLegacy();
        private Executor shadowExecutor;

        private Builder(Backend<Q, R> legacy, Backend<Q, R> modern, Function<Q, String> routeOf) {
            this.legacy = Objects.requireNonNull(legacy, "legacy");
            this.modern = Objects.requireNonNull(modern, "modern");
            this.routeOf = Objects.requireNonNull(routeOf, "routeOf");
        }

        /** How to find a request's tenant, for tenant rules (and by default for percentage stickiness). */
        public Builder<Q, R> tenantOf(Function<Q, String> value) {
            this.tenantOf = Objects.requireNonNull(value, "tenantOf");
            return this;
        }

        /** The key that keeps a caller on one side under percentage routing; default the tenant. */
        public Builder<Q, R> stickyKeyOf(Function<Q, String> value) {
            this.stickyKeyOf = Objects.requireNonNull(value, "stickyKeyOf");
            return this;
        }

        /** When two answers count as the same in shadow mode; default {@code Objects.equals}. */
        public Builder<Q, R> sameAnswer(BiPredicate<R, R> value) {
            this.sameAnswer = Objects.requireNonNull(value, "sameAnswer");
            return this;
        }

        public Builder<Q, R> metrics(MetricsRecorder value) {
            this.metrics = Objects.requireNonNull(value, "metrics");
            return this;
        }

        /** The clock stamping mismatches (a scheduler's clock in tests). */
        public Builder<Q, R> clock(Clock value) {
            this.clock = Objects.requireNonNull(value, "clock");
            return this;
        }

        /** How many recent mismatches {@link #mismatches()} keeps; default 1000 (all are counted and reported). */
        public Builder<Q, R> keptMismatches(int value) {
            ConfigurationException.require(value >= 0, "keptMismatches must be 0 or more, but was %s", value);
            this.keptMismatches = value;
            return this;
        }

        /** The initial rules; default everything to legacy. */
        public Builder<Q, R> rules(RoutingRules value) {
            this.rules = Objects.requireNonNull(value, "rules");
            return this;
        }

        /**
         * Runs the shadow call to the new implementation and the comparison on {@code executor}, so the caller
         * gets the legacy answer without waiting for it; by default they run on the caller's thread.
         */
        public Builder<Q, R> shadowExecutor(Executor executor) {
            this.shadowExecutor = Objects.requireNonNull(executor, "executor");
            return this;
        }

        public StranglerGateway<Q, R> build() {
            return new StranglerGateway<>(this);
        }
    }
}
