package io.streamsaga.cqrs;

import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.EventBus;
import io.streamsaga.kappa.Replay;
import io.streamsaga.kappa.ReplayProgress;
import io.streamsaga.kappa.Reprocessor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;

/**
 * A read model kept up to date from the log by event handlers (the query side of CQRS), and rebuildable
 * from the log without stopping queries.
 *
 * <p>Each version of the projection reads its topics from the beginning under its own consumer groups
 * ({@code <name>.v<version>.<topic>}, through a {@link Reprocessor}) into its own read model. {@link #start}
 * begins the first version whose groups were never used, so an in-memory read model is always filled from
 * the whole log. {@link #rebuild()} starts the next version into a fresh read model while queries keep
 * reading the current one through {@link #readModel()}; once the new version has reached the end offsets
 * taken at its start, queries switch to it and the old version's subscriptions close. A rebuild may bring
 * a new {@link ProjectionDefinition} (the Kappa way to deploy new projection logic).
 *
 * <p>Thread-safe. The read model type must tolerate reads concurrent with the one updating thread per
 * partition (concurrent collections, or immutable snapshots swapped atomically).
 *
 * @param <M> the read model
 */
public final class Projection<M> implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(Projection.class);

    private final EventBus bus;
    private final String name;
    private volatile Version<M> current;
    private Rebuild<M> rebuilding;
    private boolean closed;

    private Projection(EventBus bus, String name) {
        this.bus = bus;
        this.name = name;
    }

    /** Creates a projection named {@code name} (the prefix of its consumer groups); call {@link #start}. */
    public static <M> Projection<M> create(EventBus bus, String name) {
        Objects.requireNonNull(bus, "bus");
        ConfigurationException.require(name != null && !name.isBlank(), "projection name must not be blank, but was '%s'", name);
        return new Projection<>(bus, name);
    }

    /** The projection's name. */
    public String name() {
        return name;
    }

    /**
     * Starts the first unused version with {@code definition}, reading the log from the beginning.
     * Queries see its read model at once, filling up as the replay proceeds; {@link #caughtUp()} tells when
     * it has reached the log's end as it was at the start.
     *
     * @throws ConfigurationException when already started, or closed (a version launched then would never stop)
     */
    public synchronized Projection<M> start(ProjectionDefinition<M> definition) {
        requireOpen();
        ConfigurationException.require(current == null, "projection '%s' is already started", name);
        int version = nextUnusedVersion(1, definition);
        current = launch(version, definition);
        log.info("projection '{}' started at version {}", name, version);
        return this;
    }

    /**
     * Completes when the current version's initial replay has caught up; exceptionally with a
     * {@link java.util.concurrent.CancellationException} when that version was stopped before (the projection
     * closed, or a rebuild swapped it out).
     */
    public CompletionStage<ReplayProgress> caughtUp() {
        return requireStarted().replay.caughtUp();
    }

    /**
     * Completes once the version serving queries at this call has applied every record published to its topics before
     * the call, for read-your-writes (publish or send a command, wait for this, then query), a test without polling,
     * or a readiness check after a rebuild swapped in: see {@link Replay#caughtUpToNow()} for how, and its cost (none
     * per record while no stage is pending). A record dead-lettered (its handler kept failing) counts as applied once
     * its dead letter is sent, so the stage never hangs on it. Completes at once when nothing is pending. Completes
     * exceptionally with a {@link CancellationException} when the projection is closed first (or was already).
     *
     * <p>During a rebuild the stage follows the serving version, not the one being built. When a rebuild swaps that
     * version out before it got there, the stage moves to the version swapped in ({@link Replay#caughtUpTo}) and
     * completes once that one has applied every record below the same offsets, those taken at this call: a rebuild
     * swaps in once its version reached the end offsets taken at <em>its</em> start, which may lie before them, and
     * the new version replays from the beginning, so it gets there too. On a topic only a rebuild's new definition
     * reads, the stage adds nothing to what the swap waited for. Callbacks then run on the thread that completes the
     * stage, a consumer thread or the scheduler's of the version swapped in. The stage covers the version serving when
     * it completes, not one a rebuild started before this call swaps in afterwards, which may not have applied
     * everything the stage waited for yet: after {@link Rebuild#swapped()}, call again for the new version.
     *
     * @throws ConfigurationException when the projection is not started
     */
    public CompletionStage<ReplayProgress> caughtUpToNow() {
        Version<M> serving = requireStarted();
        synchronized (this) {
            if (closed) { // before asking the transport anything, as Replay.caughtUpToNow() does
                return CompletableFuture.failedStage(new CancellationException("projection '" + name + "' is closed"));
            }
        }
        Map<String, Map<Integer, Long>> positions = new TreeMap<>();
        for (String topic : serving.definition.topics()) {
            positions.put(topic, Map.copyOf(bus.transport().endOffsets(topic)));
        }
        CompletableFuture<ReplayProgress> done = new CompletableFuture<>();
        waitFor(serving, positions, done);
        return done.minimalCompletionStage();
    }

    /**
     * Completes {@code done} once {@code version} passed {@code positions} (those of its topics); when a swap stops it
     * first, waits so on the version swapped in, which replays from the beginning and so reaches them too. Only a
     * close of the projection fails {@code done}, with the version's CancellationException.
     */
    private void waitFor(Version<M> version, Map<String, Map<Integer, Long>> positions, CompletableFuture<ReplayProgress> done) {
        Map<String, Map<Integer, Long>> ownTopics = new TreeMap<>(positions);
        ownTopics.keySet().retainAll(version.definition.topics()); // a rebuild's definition may read other topics
        CompletionStage<ReplayProgress> stage;
        try {
            stage = version.replay.caughtUpTo(ownTopics);
        } catch (RuntimeException e) {
            done.completeExceptionally(e);
            return;
        }
        stage.whenComplete((progress, error) -> {
            if (error == null) {
                done.complete(progress);
                return;
            }
            Version<M> successor = swappedIn(version);
            if (successor != null) {
                waitFor(successor, positions, done); // on the thread of the swap, which closed the old version
            } else {
                done.completeExceptionally(error);
            }
        });
    }

    /** The version serving in place of {@code version}, swapped out by a rebuild; null when it serves or the projection closed. */
    private synchronized Version<M> swappedIn(Version<M> version) {
        return closed || current == version ? null : current;
    }

    /** The read model queries should use now. */
    public M readModel() {
        return requireStarted().model;
    }

    /** The version serving queries. */
    public int version() {
        return requireStarted().number;
    }

    /** Rebuilds with the same definition into a fresh read model; see {@link #rebuild(ProjectionDefinition)}. */
    public Rebuild<M> rebuild() {
        return rebuild(requireStarted().definition);
    }

    /**
     * Rebuilds with {@code definition} into a fresh read model under the next unused version; queries keep
     * using the current version until the rebuild caught up, then switch.
     *
     * @throws ConfigurationException when a rebuild is already running, or the projection is closed (the version
     *                                launched would never stop nor swap in)
     */
    public synchronized Rebuild<M> rebuild(ProjectionDefinition<M> definition) {
        requireOpen();
        Version<M> serving = requireStarted();
        ConfigurationException.require(rebuilding == null || rebuilding.swapped.isDone(),
                "projection '%s' is already rebuilding version %s", name, rebuilding == null ? null : rebuilding.version());
        int number = nextUnusedVersion(serving.number + 1, definition);
        Version<M> next = launch(number, definition);
        Rebuild<M> rebuild = new Rebuild<>(number, next.replay, next.model);
        rebuilding = rebuild;
        log.info("projection '{}' rebuilding as version {} while version {} serves", name, number, serving.number);
        next.replay.caughtUp().whenComplete((progress, error) -> {
            if (error == null) {
                swap(next, rebuild);
            } else {
                rebuild.fail(error); // closed before it caught up: it will never swap
            }
        });
        return rebuild;
    }

    private void swap(Version<M> next, Rebuild<M> rebuild) {
        Version<M> old;
        synchronized (this) {
            if (closed) {
                // caught up while close() stops it: queries stay on the version they used, stopped too
                rebuild.fail(new java.util.concurrent.CancellationException(
                        "projection '" + name + "' was closed before version " + next.number + " swapped in"));
                return;
            }
            old = current;
            current = next;
        }
        log.info("projection '{}' switched queries from version {} to version {}", name, old.number, next.number);
        old.replay.close(); // outside the lock: closing may wait for the old consumer thread
        rebuild.markSwapped(); // last, so that whoever waits for the swap sees the old version stopped
    }

    private int nextUnusedVersion(int from, ProjectionDefinition<M> definition) {
        int version = from;
        while (!Reprocessor.isUnused(bus.transport(), groupOf(version), definition.topics())) {
            version++;
        }
        return version;
    }

    private String groupOf(int version) {
        return name + ".v" + version;
    }

    private Version<M> launch(int number, ProjectionDefinition<M> definition) {
        M model = definition.newReadModel();
        Reprocessor.Builder builder = Reprocessor.builder(bus).mode(Reprocessor.Mode.FOLLOW);
        for (ProjectionDefinition.Entry<M, ?> entry : definition.entries()) {
            bind(builder, entry, model);
        }
        Replay replay = builder.build().start(groupOf(number));
        return new Version<>(number, definition, model, replay);
    }

    private static <M, E> void bind(Reprocessor.Builder builder, ProjectionDefinition.Entry<M, E> entry, M model) {
        builder.on(entry.topic(), entry.type(), (event, ctx) -> entry.handler().apply(model, event, ctx));
    }

    /** Called holding the lock: close() sets {@code closed} under it, and stops what was launched before. */
    private void requireOpen() {
        ConfigurationException.require(!closed, "projection '%s' is closed", name);
    }

    private Version<M> requireStarted() {
        Version<M> version = current;
        ConfigurationException.require(version != null, "projection '%s' is not started", name);
        return version;
    }

    /**
     * Stops the serving version and any running rebuild; a rebuild that had not swapped in never does (even one
     * catching up meanwhile), and its {@link Rebuild#swapped()} completes exceptionally, so queries keep the
     * version they used. The versions stop outside the projection's lock: a rebuild's consumer thread swapping
     * at that moment is not left waiting for it while close() waits for that thread to stop. Once closed, the
     * projection refuses {@link #start} and {@link #rebuild} with a {@link ConfigurationException}; queries keep
     * reading the last version's read model.
     */
    @Override
    public void close() {
        Version<M> serving;
        Rebuild<M> rebuild;
        synchronized (this) {
            closed = true;
            serving = current;
            rebuild = rebuilding;
        }
        if (serving != null) {
            serving.replay.close();
        }
        if (rebuild != null) {
            rebuild.replay.close();
        }
    }

    private record Version<M>(int number, ProjectionDefinition<M> definition, M model, Replay replay) {
    }

    /**
     * A rebuild in progress: its version, its progress against the log's end, and when queries switched
     * to it. Thread-safe.
     *
     * @param <M> the read model
     */
    public static final class Rebuild<M> {
        private final int version;
        private final Replay replay;
        private final M model;
        private final java.util.concurrent.CompletableFuture<M> swapped = new java.util.concurrent.CompletableFuture<>();

        Rebuild(int version, Replay replay, M model) {
            this.version = version;
            this.replay = replay;
            this.model = model;
        }

        /** The version being built. */
        public int version() {
            return version;
        }

        /** Records replayed against the end offsets taken when the rebuild started. */
        public ReplayProgress progress() {
            return replay.progress();
        }

        /**
         * Completes with the new read model once queries use it and the old version has stopped; completes
         * exceptionally with a {@link java.util.concurrent.CancellationException} when the projection is closed
         * before the rebuild caught up (queries then never switch).
         */
        public CompletionStage<M> swapped() {
            return swapped.minimalCompletionStage();
        }

        /** Whether queries use the new version already. */
        public boolean isSwapped() {
            return swapped.isDone() && !swapped.isCompletedExceptionally();
        }

        void markSwapped() {
            swapped.complete(model);
        }

        void fail(Throwable error) {
            swapped.completeExceptionally(error instanceof java.util.concurrent.CompletionException && error.getCause() != null
                    ? error.getCause() : error);
        }
    }
}
