package io.streamsaga.bus;

import io.streamsaga.ConfigurationException;
import io.streamsaga.StreamSagaException;
import io.streamsaga.internal.bus.RedriveRun;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;

import java.util.Objects;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletionStage;
import java.util.function.Predicate;

/**
 * Sends the dead letters of a dead-letter topic ({@code <topic>.DLT}) back to their original topic, so that a handler
 * whose bug was fixed handles them again: what an operator runs after the fix, without writing a consumer of their own
 * (as SQS's redrive moves messages back to their source queue).
 *
 * <p>A {@linkplain #start() run} reads the dead-letter topic under its own consumer group ({@link Builder#group},
 * {@code <dead-letter topic>.redrive} by default), from the earliest letter the group has not passed yet, up to the end
 * offsets taken when it starts, then stops: a letter dead-lettered again meanwhile (one that fails again) is left for
 * the next run rather than sent round in a loop (logged once per partition, at INFO). The group's committed position
 * is what a run passed; the next run under the group starts there. Each letter is sent to the topic its
 * {@link MessageHeaders#DLT_ORIGINAL_TOPIC} header names, which must be the one the dead-letter topic belongs to, as:
 * <ul>
 *   <li>the original's message id ({@link MessageHeaders#DLT_ORIGINAL_MESSAGE_ID}), so that a consumer that
 *       deduplicates by it (an {@link io.streamsaga.idempotency.IdempotentConsumer}: every group of the topic receives
 *       the message again, those that handled it included) sees a retry of the same message; a letter without it
 *       (written by an earlier version) keeps its own id;</li>
 *   <li>its key, type, version and payload as the dead letter holds them (the original's);</li>
 *   <li>the original's headers: the dead letter's without the {@code dlt-*} ones, and without the causation id the bus
 *       gave the dead letter when the original had none, and without the hold token of a claim-checked letter
 *       ({@link io.streamsaga.claimcheck.ClaimCheckInterceptor}: it goes back as its reference, so its payload stays in
 *       the store for the dead letter, which stays in its topic, until the claim check's expiry); plus
 *       {@link MessageHeaders#REDRIVE_COUNT}, one more than the letter carried, so a message failing again and again
 *       shows;</li>
 *   <li>the time of the redrive as its timestamp: it is a new record of the log (a broker's time-based retention or a
 *       limit on old timestamps would otherwise apply to the original's age).</li>
 * </ul>
 *
 * <p>At-least-once: a letter's position is committed only once its original topic acknowledged it, so a crash between
 * the two sends it again when the group next runs (with the same id, which deduplication covers). A letter that cannot
 * be sent back (no original topic, another topic than the dead-letter topic's, a letter sent without the original's
 * payload, headers or key because the whole was too large, a malformed redrive count) is skipped: logged at WARN with
 * its position and counted in {@link Report#skipped()}, never dropped silently; it stays in the dead-letter topic. A
 * letter the {@linkplain Builder#filter filter} does not take is passed over and counted in
 * {@link Report#filteredOut()}: this group will not see it again (another group will). A send that fails, or a filter
 * that throws, stops the run at that letter, which is not committed (logged at ERROR, {@link Report#failed()}).
 *
 * <p>Run one run per group at a time: two would share the topic's partitions as members of one group. A configured
 * redrive is immutable and thread-safe; the builder is not.
 */
public final class DeadLetterRedrive {
    private final EventBus bus;
    private final String deadLetterTopic;
    private final String originalTopic;
    private final String group;
    private final Predicate<Message> filter;
    private final long limit;

    private DeadLetterRedrive(Builder builder) {
        this.bus = builder.bus;
        this.deadLetterTopic = builder.deadLetterTopic;
        this.originalTopic = deadLetterTopic.substring(0, deadLetterTopic.length() - MessageHeaders.DEAD_LETTER_SUFFIX.length());
        this.group = builder.group != null ? builder.group : deadLetterTopic + ".redrive";
        this.filter = builder.filter;
        this.limit = builder.limit;
    }

    /**
     * Starts configuring a redrive of {@code deadLetterTopic} over {@code bus}'s transport.
     *
     * @throws ConfigurationException when the topic is null, blank, not a topic name, or not a dead-letter topic (a
     *         name ending in {@code .DLT} after a topic's name)
     */
    public static Builder builder(EventBus bus, String deadLetterTopic) {
        return new Builder(bus, deadLetterTopic);
    }

    /** The dead-letter topic read. */
    public String deadLetterTopic() {
        return deadLetterTopic;
    }

    /** The topic its letters are sent back to: the dead-letter topic's name without {@code .DLT}. */
    public String originalTopic() {
        return originalTopic;
    }

    /** The consumer group that reads the dead-letter topic and remembers what runs passed. */
    public String group() {
        return group;
    }

    /**
     * Starts a run: takes the dead-letter topic's end offsets, and subscribes its group unless the group already
     * passed them (the run is then finished at once, as it is on a topic that does not exist). Closing the bus closes
     * the run, as it closes the bus's subscriptions.
     *
     * @throws ConfigurationException when the bus is closed
     */
    public Run start() {
        return RedriveRun.start(bus, deadLetterTopic, originalTopic, group, filter, limit);
    }

    /**
     * How many letters a run handled so far, by outcome. Immutable.
     *
     * @param redriven    sent back to the original topic (and acknowledged there)
     * @param filteredOut passed over because the filter did not take them
     * @param skipped     not sendable back (see {@link DeadLetterRedrive}), left in the dead-letter topic and logged
     * @param failed      whose send (or filter) failed; 1 at most, as the run stops at it
     */
    public record Report(long redriven, long filteredOut, long skipped, long failed) {
    }

    /** A running redrive, started by {@link DeadLetterRedrive#start()}. Thread-safe. */
    public interface Run extends AutoCloseable {

        /** The consumer group of the run. */
        String group();

        /** The counts so far. */
        Report report();

        /**
         * Completes with the final report once the run stopped on its own: the group's committed offsets reached the
         * end offsets taken at its start in every partition, the {@linkplain Builder#limit limit} was reached, or a
         * letter failed; its subscription is closed and what it passed committed by then. Completes exceptionally with
         * a {@link CancellationException} when the run (or the bus it was started on) is {@linkplain #close() closed}
         * before.
         */
        CompletionStage<Report> finished();

        /**
         * Stops the run; the group keeps its position, the letters it did not pass stay for the next run. A run
         * closed before it finished never will: {@link #finished()} then completes with a {@link CancellationException}.
         * Closing the bus the run was started on closes it too.
         */
        @Override
        void close();
    }

    /** Configures a {@link DeadLetterRedrive}; not thread-safe. */
    public static final class Builder {
        private final EventBus bus;
        private final String deadLetterTopic;
        private String group;
        private Predicate<Message> filter = letter -> true;
        private long limit = Long.MAX_VALUE;

        private Builder(EventBus bus, String deadLetterTopic) {
            this.bus = Objects.requireNonNull(bus, "bus");
            ConfigurationException.require(deadLetterTopic != null && !deadLetterTopic.isBlank(),
                    "dead-letter topic must not be blank, but was %s", deadLetterTopic == null ? null
                            : StreamSagaException.quote(deadLetterTopic));
            ConfigurationException.require(deadLetterTopic.endsWith(MessageHeaders.DEAD_LETTER_SUFFIX)
                            && deadLetterTopic.length() > MessageHeaders.DEAD_LETTER_SUFFIX.length(),
                    "dead-letter topic must be a topic's name followed by %s, but was %s",
                    MessageHeaders.DEAD_LETTER_SUFFIX, StreamSagaException.quote(deadLetterTopic));
            TopicPattern.requireTopicName(deadLetterTopic);
            this.deadLetterTopic = deadLetterTopic;
        }

        /**
         * The consumer group that reads the dead-letter topic; {@code <dead-letter topic>.redrive} by default. Its
         * committed position is where the next run under it starts.
         */
        public Builder group(String value) {
            ConfigurationException.require(value != null && !value.isBlank(), "redrive group must not be blank, but was %s",
                    value == null ? null : StreamSagaException.quote(value));
            this.group = value;
            return this;
        }

        /**
         * Sends back only the letters {@code value} takes (it sees the dead letter as read: payload in the transport's
         * form, the {@code dlt-*} headers, such as {@link MessageHeaders#DLT_ERROR_CLASS}); every letter by default.
         */
        public Builder filter(Predicate<Message> value) {
            ConfigurationException.require(value != null, "redrive filter must not be null", (Object) null);
            this.filter = value;
            return this;
        }

        /** Stops the run once {@code value} letters were sent back (at least 1); no limit by default. */
        public Builder limit(long value) {
            ConfigurationException.require(value >= 1, "redrive limit must be at least 1, but was %s", value);
            this.limit = value;
            return this;
        }

        public DeadLetterRedrive build() {
            return new DeadLetterRedrive(this);
        }
    }
}
