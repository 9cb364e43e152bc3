package io.streamsaga.inmemory.internal;

import io.streamsaga.bus.RecordPosition;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executor;
import java.util.function.BiConsumer;
import java.util.function.BiFunction;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * The completed result of an in-memory append: a {@link CompletionStage} of its {@link RecordPosition},
 * whose {@link CompletableFuture} is built only when the caller uses the stage. Most publishers ignore the
 * stage of an in-memory send; building a completed future and a position for each one cost two objects
 * per publish. Behaves as {@code CompletableFuture.completedFuture(position)} in every other respect.
 *
 * <p>Thread-safe: immutable apart from the lazily built future, a volatile cache of an equivalent completed
 * future (two threads may each build one; both are completed with equal positions).
 */
public final class AppendedStage implements CompletionStage<RecordPosition> {
    private final String topic;
    private final int partition;
    private final long offset;
    private volatile CompletableFuture<RecordPosition> future;

    public AppendedStage(String topic, int partition, long offset) {
        this.topic = topic;
        this.partition = partition;
        this.offset = offset;
    }

    /** The completed future behind this stage, built on first use. */
    private CompletableFuture<RecordPosition> future() {
        CompletableFuture<RecordPosition> built = future;
        if (built == null) {
            built = CompletableFuture.completedFuture(new RecordPosition(topic, partition, offset));
            future = built;
        }
        return built;
    }

    @Override
    public CompletableFuture<RecordPosition> toCompletableFuture() {
        return future();
    }

    @Override
    public CompletionStage<Void> acceptEither(CompletionStage<? extends RecordPosition> other,
            Consumer<? super RecordPosition> action) {
        return future().acceptEither(other, action);
    }

    @Override
    public CompletionStage<Void> acceptEitherAsync(CompletionStage<? extends RecordPosition> other,
            Consumer<? super RecordPosition> action) {
        return future().acceptEitherAsync(other, action);
    }

    @Override
    public CompletionStage<Void> acceptEitherAsync(CompletionStage<? extends RecordPosition> other,
            Consumer<? super RecordPosition> action, Executor executor) {
        return future().acceptEitherAsync(other, action, executor);
    }

    @Override
    public <U> CompletionStage<U> applyToEither(CompletionStage<? extends RecordPosition> other,
            Function<? super RecordPosition, U> action) {
        return future().applyToEither(other, action);
    }

    @Override
    public <U> CompletionStage<U> applyToEitherAsync(CompletionStage<? extends RecordPosition> other,
            Function<? super RecordPosition, U> action) {
        return future().applyToEitherAsync(other, action);
    }

    @Override
    public <U> CompletionStage<U> applyToEitherAsync(CompletionStage<? extends RecordPosition> other,
            Function<? super RecordPosition, U> action, Executor executor) {
        return future().applyToEitherAsync(other, action, executor);
    }

    @Override
    public CompletionStage<RecordPosition> exceptionally(Function<Throwable, ? extends RecordPosition> action) {
        return future().exceptionally(action);
    }

    @Override
    public CompletionStage<RecordPosition> exceptionallyAsync(Function<Throwable, ? extends RecordPosition> action) {
        return future().exceptionallyAsync(action);
    }

    @Override
    public CompletionStage<RecordPosition> exceptionallyAsync(Function<Throwable, ? extends RecordPosition> action,
            Executor executor) {
        return future().exceptionallyAsync(action, executor);
    }

    @Override
    public CompletionStage<RecordPosition> exceptionallyCompose(Function<Throwable,
            ? extends CompletionStage<RecordPosition>> action) {
        return future().exceptionallyCompose(action);
    }

    @Override
    public CompletionStage<RecordPosition> exceptionallyComposeAsync(Function<Throwable,
            ? extends CompletionStage<RecordPosition>> action) {
        return future().exceptionallyComposeAsync(action);
    }

    @Override
    public CompletionStage<RecordPosition> exceptionallyComposeAsync(Function<Throwable,
            ? extends CompletionStage<RecordPosition>> action, Executor executor) {
        return future().exceptionallyComposeAsync(action, executor);
    }

    @Override
    public <U> CompletionStage<U> handle(BiFunction<? super RecordPosition, Throwable, ? extends U> action) {
        return future().handle(action);
    }

    @Override
    public <U> CompletionStage<U> handleAsync(BiFunction<? super RecordPosition, Throwable, ? extends U> action) {
        return future().handleAsync(action);
    }

    @Override
    public <U> CompletionStage<U> handleAsync(BiFunction<? super RecordPosition, Throwable, ? extends U> action,
            Executor executor) {
        return future().handleAsync(action, executor);
    }

    @Override
    public CompletionStage<Void> runAfterBoth(CompletionStage<?> other, Runnable action) {
        return future().runAfterBoth(other, action);
    }

    @Override
    public CompletionStage<Void> runAfterBothAsync(CompletionStage<?> other, Runnable action) {
        return future().runAfterBothAsync(other, action);
    }

    @Override
    public CompletionStage<Void> runAfterBothAsync(CompletionStage<?> other, Runnable action, Executor executor) {
        return future().runAfterBothAsync(other, action, executor);
    }

    @Override
    public CompletionStage<Void> runAfterEither(CompletionStage<?> other, Runnable action) {
        return future().runAfterEither(other, action);
    }

    @Override
    public CompletionStage<Void> runAfterEitherAsync(CompletionStage<?> other, Runnable action) {
        return future().runAfterEitherAsync(other, action);
    }

    @Override
    public CompletionStage<Void> runAfterEitherAsync(CompletionStage<?> other, Runnable action, Executor executor) {
        return future().runAfterEitherAsync(other, action, executor);
    }

    @Override
    public CompletionStage<Void> thenAccept(Consumer<? super RecordPosition> action) {
        return future().thenAccept(action);
    }

    @Override
    public CompletionStage<Void> thenAcceptAsync(Consumer<? super RecordPosition> action) {
        return future().thenAcceptAsync(action);
    }

    @Override
    public CompletionStage<Void> thenAcceptAsync(Consumer<? super RecordPosition> action, Executor executor) {
        return future().thenAcceptAsync(action, executor);
    }

    @Override
    public <U> CompletionStage<Void> thenAcceptBoth(CompletionStage<? extends U> other,
            BiConsumer<? super RecordPosition, ? super U> action) {
        return future().thenAcceptBoth(other, action);
    }

    @Override
    public <U> CompletionStage<Void> thenAcceptBothAsync(CompletionStage<? extends U> other,
            BiConsumer<? super RecordPosition, ? super U> action) {
        return future().thenAcceptBothAsync(other, action);
    }

    @Override
    public <U> CompletionStage<Void> thenAcceptBothAsync(CompletionStage<? extends U> other,
            BiConsumer<? super RecordPosition, ? super U> action, Executor executor) {
        return future().thenAcceptBothAsync(other, action, executor);
    }

    @Override
    public <U> CompletionStage<U> thenApply(Function<? super RecordPosition, ? extends U> action) {
        return future().thenApply(action);
    }

    @Override
    public <U> CompletionStage<U> thenApplyAsync(Function<? super RecordPosition, ? extends U> action) {
        return future().thenApplyAsync(action);
    }

    @Override
    public <U> CompletionStage<U> thenApplyAsync(Function<? super RecordPosition, ? extends U> action,
            Executor executor) {
        return future().thenApplyAsync(action, executor);
    }

    @Override
    public <U, V> CompletionStage<V> thenCombine(CompletionStage<? extends U> other,
            BiFunction<? super RecordPosition, ? super U, ? extends V> action) {
        return future().thenCombine(other, action);
    }

    @Override
    public <U, V> CompletionStage<V> thenCombineAsync(CompletionStage<? extends U> other,
            BiFunction<? super RecordPosition, ? super U, ? extends V> action) {
        return future().thenCombineAsync(other, action);
    }

    @Override
    public <U, V> CompletionStage<V> thenCombineAsync(CompletionStage<? extends U> other,
            BiFunction<? super RecordPosition, ? super U, ? extends V> action, Executor executor) {
        return future().thenCombineAsync(other, action, executor);
    }

    @Override
    public <U> CompletionStage<U> thenCompose(Function<? super RecordPosition, ? extends CompletionStage<U>> action) {
        return future().thenCompose(action);
    }

    @Override
    public <U> CompletionStage<U> thenComposeAsync(Function<? super RecordPosition,
            ? extends CompletionStage<U>> action) {
        return future().thenComposeAsync(action);
    }

    @Override
    public <U> CompletionStage<U> thenComposeAsync(Function<? super RecordPosition,
            ? extends CompletionStage<U>> action, Executor executor) {
        return future().thenComposeAsync(action, executor);
    }

    @Override
    public CompletionStage<Void> thenRun(Runnable action) {
        return future().thenRun(action);
    }

    @Override
    public CompletionStage<Void> thenRunAsync(Runnable action) {
        return future().thenRunAsync(action);
    }

    @Override
    public CompletionStage<Void> thenRunAsync(Runnable action, Executor executor) {
        return future().thenRunAsync(action, executor);
    }

    @Override
    public CompletionStage<RecordPosition> whenComplete(BiConsumer<? super RecordPosition, ? super Throwable> action) {
        return future().whenComplete(action);
    }

    @Override
    public CompletionStage<RecordPosition> whenCompleteAsync(BiConsumer<? super RecordPosition,
            ? super Throwable> action) {
        return future().whenCompleteAsync(action);
    }

    @Override
    public CompletionStage<RecordPosition> whenCompleteAsync(BiConsumer<? super RecordPosition,
            ? super Throwable> action, Executor executor) {
        return future().whenCompleteAsync(action, executor);
    }

    @Override
    public String toString() {
        return "AppendedStage[" + topic + "-" + partition + "@" + offset + "]";
    }
}
