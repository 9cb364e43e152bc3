package io.streamsaga.spi;

import io.streamsaga.bus.RecordPosition;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.Subscription;
import io.streamsaga.bus.TopicPattern;
import io.streamsaga.message.Message;

import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletionStage;
import java.util.function.BiConsumer;

/**
 * What a message transport implements: a partitioned, replayable log with consumer groups. The
 * {@link io.streamsaga.bus.EventBus} adds codecs, retries, dead letters, correlation and metrics on top,
 * so every transport gets the same semantics. The contract test suite in saga-core's test-jar
 * ({@code TransportContractTest}) states what every transport must do:
 * <ul>
 *   <li>at-least-once delivery: a record is redelivered to a group until its handler returns normally;</li>
 *   <li>order per key within a topic: records with the same key go to one partition and are handled in
 *       publish order, one at a time per group;</li>
 *   <li>independent groups each receive every record; the members of one group share them;</li>
 *   <li>a group with no committed position starts at the latest or earliest position as asked.</li>
 * </ul>
 * Implementations are thread-safe.
 */
public interface Transport extends AutoCloseable {

    /** A short name for logs, such as {@code in-memory} or {@code kafka}. */
    String name();

    /**
     * Whether the transport hands the published payload object itself to consumers (in memory) rather
     * than bytes. When false, the bus encodes payloads to bytes before {@link #send}.
     */
    boolean carriesObjects();

    /**
     * Whether a handler may throw {@link RedeliverLater} to have its record delivered again after a delay
     * while the subscription's other partitions keep flowing (the bus then retries that way instead of
     * sleeping on the consumer thread). False by default.
     */
    default boolean redeliversPerPartition() {
        return false;
    }

    /**
     * Tells what becomes of the delivery being handled on the calling thread once its handler returned: runs
     * {@code kept} once the transport will not deliver the record to the group again, or {@code withdrawn} once it
     * took the delivery back with everything its handler published, to deliver the record again. Only a transport
     * that makes a record's handling and its outputs one transaction over several records withdraws a delivery
     * whose handler returned (Kafka's exactly-once mode: a poll batch is one transaction, which aborts when a later
     * record of it fails an attempt, and is then handled again from its first record); it runs one of the two on the
     * thread that delivers the record, after the transaction ended and before it delivers another record, and
     * runs {@code withdrawn} when it cannot tell (the transaction's end was left to the broker). State kept outside
     * the transport about a delivery (an idempotency key marked done, a payload released, a group recorded
     * released) is only true once it is kept. The default, for transports without such transactions (and for a
     * call outside a delivery), runs {@code kept} at once, on the caller's thread; what it throws reaches the caller.
     *
     * @param kept      run once the delivery stays handled
     * @param withdrawn run once it was taken back
     */
    default void afterDelivery(Runnable kept, Runnable withdrawn) {
        kept.run();
    }

    /**
     * Whether what is published on the calling thread goes into one transaction with the delivery being handled on it,
     * committed or aborted with it by the transport (Kafka's exactly-once mode): a failed publish then makes the
     * transport take the delivery back ({@link #afterDelivery}), so the bus need not wait for the publishes a handler
     * made before the delivery counts as handled: only one failed already when the handler returns fails the handling
     * then, and once the transport withdrew the delivery, one of those left in flight that failed non-retriably (a
     * record refused for good, not one aborted with its transaction: report that one as retriable) fails it, the
     * record's next delivery then handling it as the retry policy says. False by default (and outside a delivery): the
     * bus acknowledges a delivery only once every publish its handler made on its thread has completed, and fails the
     * handling when one failed. Asked on the delivering thread, when a handler that made a publish whose stage was not
     * completed normally at once returns, or calls {@code EventBus.awaitPublishes} (on a transport that {@link
     * #redeliversPerPartition redelivers per partition}: the bus waits for the publishes on any other).
     */
    default boolean publishesInDeliveryTransaction() {
        return false;
    }

    /**
     * Offers to take over the rest of the delivery being handled on the calling thread, whose handler returned while
     * publishes it made on that thread are still in flight ({@code rest}: waiting for them, and handling a failed one
     * as the record's failure). A transport that takes it (returns true) calls {@link PendingDelivery#finish()} later,
     * on that thread, before it commits a position past the record, and treats what it throws as it treats what
     * {@link RecordHandler#handle} throws: it delivers the record again, and the records after it in its partition
     * (handled meanwhile) too, since it commits nothing past an unfinished record. So it can wait for the publishes of
     * many records at once (Kafka's plain mode with {@code awaitPublishesPerBatch}: once per poll batch) instead of
     * one broker round trip per record. The default, for transports that do not (the bus then waits before the record
     * counts as handled, as it does outside a delivery), returns false. Asked by the bus only for a delivery with a
     * publish not completed yet, on a transport without {@link #publishesInDeliveryTransaction()}, and only when
     * {@link #mayFinishLater()} said it may take one.
     *
     * @param rest the rest of the delivery
     * @return whether the transport finishes it
     */
    default boolean finishLater(PendingDelivery rest) {
        return false;
    }

    /**
     * Whether this transport may take the rest of a delivery over ({@link #finishLater}); asked once per subscription.
     * The default, false, has the bus never offer one: a delivery whose publishes are in flight then costs no more
     * than the bus's own wait for them.
     */
    default boolean mayFinishLater() {
        return false;
    }

    /**
     * Appends the message to its topic; completes with its position once it is durable. Once the transport
     * is closed it fails with {@link io.streamsaga.bus.TransportClosedException}. It may block the caller
     * while the transport cannot take the message yet (a client buffer full, a broker unreachable); a
     * transport that does documents for how long at most and how to bound it, and then fails the stage.
     */
    CompletionStage<RecordPosition> send(Message message);

    /**
     * As {@link #send(Message)}, reporting the outcome to {@code onOutcome} (the position, or the error) once
     * the message is durable or has failed, instead of through a stage per message: a publisher sending at
     * high volume can hand every send the same callback object, as with Kafka's own producer, and keeps
     * nothing per message while it is in flight. The default attaches the callback to {@link #send}'s stage.
     */
    default void send(Message message, BiConsumer<? super RecordPosition, ? super Throwable> onOutcome) {
        send(message).whenComplete(onOutcome);
    }

    /**
     * Subscribes {@code group} to the topics matched by {@code pattern} (matching by
     * {@link TopicPattern#matches}), also topics created later.
     */
    Subscription subscribe(String group, TopicPattern pattern, StartPosition start, RecordHandler handler);

    /**
     * The next offset to be written, per partition of {@code topic}, as far as its subscriptions can read (a
     * transport with transactions answers the end of what is committed: the offset a group reaches once it has
     * handled everything there is); empty for an unknown topic.
     */
    Map<Integer, Long> endOffsets(String topic);

    /**
     * The committed offset (next to handle) of {@code group}, per partition of {@code topic}. A partition the group
     * holds no offset on yet is absent (on Kafka an empty partition of a topic created after the group subscribed), so
     * compare it with {@link #endOffsets} partition by partition, an absent one read as 0.
     */
    Map<Integer, Long> committedOffsets(String group, String topic);

    /**
     * The consumer groups that have subscribed to {@code topic} (now, or earlier as long as the transport keeps
     * their position: a broker forgets a deleted group, or one whose committed offsets expired). Asked by the claim check on
     * every acknowledgement of a claim-checked record, so it should be cheap: a transport that has to ask a
     * broker may answer from a listing of bounded age, in which a group subscribed elsewhere appears that
     * much later (the transport documents it); groups with a subscription open through this transport are
     * always included.
     */
    Set<String> consumerGroups(String topic);

    /** How far back a replay can reach, when the transport bounds it by time. */
    Optional<Duration> retentionHorizon();

    /** Stops every subscription and releases threads and connections. */
    @Override
    void close();
}
