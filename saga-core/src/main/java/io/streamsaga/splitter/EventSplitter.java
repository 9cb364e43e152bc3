package io.streamsaga.splitter;

import io.streamsaga.ConfigurationException;
import io.streamsaga.StreamSagaException;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.PublishException;
import io.streamsaga.bus.RecordPosition;
import io.streamsaga.codec.EventTypeId;
import io.streamsaga.message.DerivedIds;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Splits one event into many — the source's order into one {@code order-item-created} per item plus an
 * {@code order-summary-created} — and marks every part so that an aggregator can always tell when the
 * sequence is complete.
 *
 * <p>Every part carries {@code sequence-id}, {@code sequence-number} (from 1) and {@code sequence-last}; the
 * last part is marked {@code sequence-last=true} and always carries {@code sequence-size}. When the size is
 * known up front ({@link #split(String, List)}) every part carries it; when it is not (a stream,
 * {@link #split(String, Iterator)} or {@link #open(String)}) only the last part does. A sequence never has
 * zero parts, so an aggregator never waits for a size of 0. Parts also carry a correlation id: the handled
 * message's when splitting inside a handler (the bus propagates it), else the sequence id.
 *
 * <p>Inside a handler a part's message id is derived from the handled message's id, the sequence id and the
 * part's number, so a handler that splits the same message again (retried after it failed halfway, or the
 * message redelivered) publishes the same ids and an aggregator takes each part once; two different parts never get
 * one id, whatever characters the ids hold. Outside a handler every part gets a new id.
 *
 * <p>Parts are published on the calling thread, in order, so publishing inside a handler keeps correlation.
 * There a part is one of the handler's publishes: a part the bus or the transport fails (an interceptor's refusal,
 * a send that fails, also one the transport reports later) fails the handling as any of its publishes does, whether
 * the handler joins the stage or not; the bus retries the message, the derived ids making the retry publish each part
 * once more under the same id, and dead-letters it once the retries are spent, when the failure lasts
 * (docs/architecture.md, "Publishing and delivery"). A sequence one
 * of whose parts is known to have failed emits no more parts: a later {@link Sequence#emit} throws a
 * {@link PublishException}. What the splitter refuses itself never reaches the bus and fails only the returned stage
 * (and {@link Sequence#completion()}): no part, a null part, a part of an unregistered class
 * ({@link #split(String, List)} checks every part before it publishes any; {@link #split(String, Iterator)} and
 * {@link Sequence#emit} refuse it when they reach it), and a failure of {@link #split(String, Iterator)}'s iterator
 * (the parts read before it are published, the last is not). So a handler that splits still joins the returned stage
 * (or the completion) before it returns: such a failure then fails the handler too, which would otherwise be
 * acknowledged with its sequence unpublished or without its last part.
 * Thread-safe; a {@link Sequence} is not.
 */
public final class EventSplitter {
    private final EventBus bus;

    private EventSplitter(EventBus bus) {
        this.bus = Objects.requireNonNull(bus, "bus");
    }

    /** A splitter publishing through {@code bus}. */
    public static EventSplitter of(EventBus bus) {
        return new EventSplitter(bus);
    }

    /**
     * Publishes {@code parts} as one sequence of known size; completes when all are written. Every part is
     * checked first (not null, its event class registered), so a bad part fails the split before any part
     * is published rather than leave an aggregator waiting for a sequence that never completes.
     */
    public CompletionStage<List<RecordPosition>> split(String sequenceId, List<SplitPart> parts) {
        try {
            ConfigurationException.require(parts != null && !parts.isEmpty(),
                    "a split needs at least one part (sequence %s)", StreamSagaException.quote(sequenceId));
            for (int i = 0; i < parts.size(); i++) {
                SplitPart part = parts.get(i);
                ConfigurationException.require(part != null, "part %s of sequence %s is null", i + 1, StreamSagaException.quote(sequenceId));
                bus.codec().types().idOf(part.event().getClass());
            }
            Sequence sequence = open(sequenceId, parts.size());
            for (int i = 0; i < parts.size() - 1; i++) {
                sequence.emit(parts.get(i));
            }
            sequence.emitLast(parts.get(parts.size() - 1));
            return sequence.completion();
        } catch (StreamSagaException e) {
            return CompletableFuture.failedFuture(e);
        }
    }

    /**
     * Publishes the parts of a stream whose length is unknown until it ends: reads one part ahead so that
     * the last one is marked and carries the size. Nothing is thrown: a failure of the iterator itself (a
     * closed cursor), a bad part or a part whose publish failed fails the returned stage, and no part is
     * published after it, so the sequence has no last part. Inside a handler a failed publish fails the handling
     * anyway, but the iterator's failure and a bad part fail only the stage: join it, so that the split is retried.
     */
    public CompletionStage<List<RecordPosition>> split(String sequenceId, Iterator<SplitPart> parts) {
        try {
            ConfigurationException.require(parts != null && parts.hasNext(),
                    "a split needs at least one part (sequence %s)", StreamSagaException.quote(sequenceId));
            Sequence sequence = open(sequenceId);
            SplitPart pending = parts.next();
            while (parts.hasNext()) {
                sequence.emit(pending);
                pending = parts.next();
            }
            sequence.emitLast(pending);
            return sequence.completion();
        } catch (RuntimeException e) {
            // bad input, a part that failed before it, or the iterator itself failing (a closed cursor)
            return CompletableFuture.failedFuture(e);
        }
    }

    /** Opens a sequence of unknown size; the caller emits parts and must end with {@link Sequence#emitLast}. */
    public Sequence open(String sequenceId) {
        return open(sequenceId, -1);
    }

    private Sequence open(String sequenceId, int knownSize) {
        ConfigurationException.require(sequenceId != null && !sequenceId.isBlank(),
                "sequence id must not be blank, but was %s", StreamSagaException.quote(sequenceId));
        return new Sequence(sequenceId, knownSize);
    }

    /** One sequence being emitted. Not thread-safe: emit from one thread, in order. */
    public final class Sequence {
        private final String sequenceId;
        private final int knownSize;
        private final List<CompletableFuture<RecordPosition>> sent = new ArrayList<>();
        /** The first part whose publish failed; set from the transport's threads. */
        private final AtomicReference<FailedPart> firstFailure = new AtomicReference<>();
        private int number;
        private boolean finished;

        private Sequence(String sequenceId, int knownSize) {
            this.sequenceId = sequenceId;
            this.knownSize = knownSize;
        }

        /**
         * Publishes the next part (not the last). Throws a {@link PublishException} (retriable as the failure
         * was) when an earlier part of this sequence is known to have failed: the sequence emits no more.
         */
        public CompletionStage<RecordPosition> emit(SplitPart part) {
            return send(part, false);
        }

        /** Publishes the last part, marked and carrying the size; the sequence is then finished. */
        public CompletionStage<RecordPosition> emitLast(SplitPart part) {
            return send(part, true);
        }

        /** How many parts were emitted so far. */
        public int emitted() {
            return number;
        }

        /** Completes when every emitted part is written, with their positions in order. */
        public CompletionStage<List<RecordPosition>> completion() {
            return CompletableFuture.allOf(sent.toArray(CompletableFuture[]::new))
                    .thenApply(ignored -> sent.stream().map(CompletableFuture::join).toList());
        }

        private CompletionStage<RecordPosition> send(SplitPart part, boolean last) {
            ConfigurationException.require(part != null, "part %s of sequence %s is null", number + 1, StreamSagaException.quote(sequenceId));
            ConfigurationException.require(!finished, "sequence %s already ended with part %s", StreamSagaException.quote(sequenceId), number);
            requireNoFailedPart(part);
            number++;
            ConfigurationException.require(knownSize < 0 || number <= knownSize && (last == (number == knownSize)),
                    "part %s of sequence %s does not fit its size %s", number, StreamSagaException.quote(sequenceId), knownSize);
            Map<String, String> headers = new LinkedHashMap<>(new SequenceInfo(sequenceId, number,
                    knownSize > 0 || last ? OptionalInt.of(last ? number : knownSize) : OptionalInt.empty(), last)
                    .headers());
            Optional<Message> source = bus.currentMessage();
            if (source.isEmpty()) {
                headers.put(MessageHeaders.CORRELATION_ID, sequenceId);
            }
            finished = last;
            CompletableFuture<RecordPosition> future = (source.isEmpty()
                    ? bus.publish(part.topic(), part.key(), part.event(), headers)
                    : publishDerived(source.get(), part, headers)).toCompletableFuture();
            sent.add(future);
            int partNumber = number;
            future.whenComplete((position, error) -> {
                if (error != null) {
                    Throwable cause = error instanceof CompletionException && error.getCause() != null ? error.getCause() : error;
                    firstFailure.compareAndSet(null, new FailedPart(partNumber, cause));
                }
            });
            return future;
        }

        /** Refuses to go on after a part whose publish is known to have failed (a hole the sequence cannot fill). */
        private void requireNoFailedPart(SplitPart next) {
            FailedPart failed = firstFailure.get();
            if (failed != null) {
                Throwable cause = failed.cause();
                boolean retriable = !(cause instanceof StreamSagaException typed) || typed.isRetriable();
                throw new PublishException(next.topic(), "part " + failed.number() + " of sequence " + StreamSagaException.quote(sequenceId)
                        + " failed (" + cause + "), so the sequence emits no more parts", cause, retriable);
            }
        }

        /**
         * Publishes a part split from the handled message {@code source} under an id derived from the source's
         * id, the sequence id and the part's number: a handler that splits the message again (a retry after it
         * failed halfway, a redelivery) emits the same ids, so an aggregator does not take the parts twice.
         */
        private CompletionStage<RecordPosition> publishDerived(Message source, SplitPart part, Map<String, String> headers) {
            EventTypeId type;
            try {
                type = bus.codec().types().idOf(part.event().getClass());
            } catch (StreamSagaException e) {
                return CompletableFuture.failedFuture(e);
            }
            String id = DerivedIds.uuidOf(source.id(), sequenceId, Integer.toString(number));
            return bus.publish(Message.builder(part.topic()).id(id).key(part.key()).type(type.type())
                    .version(type.version()).payload(part.event()).headers(headers)
                    .timestamp(bus.scheduler().clock().instant()).build());
        }

        /** A part of this sequence whose publish failed, and why. */
        private record FailedPart(int number, Throwable cause) {
        }
    }
}
