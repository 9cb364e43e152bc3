package io.streamsaga.idempotency;

import com.fasterxml.jackson.databind.JsonNode;
import io.streamsaga.ConfigurationException;
import io.streamsaga.Sha256;
import io.streamsaga.StreamSagaException;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.RecordPosition;
import io.streamsaga.bus.TopicPattern;
import io.streamsaga.codec.EventTypeId;
import io.streamsaga.idempotency.spi.ClaimOutcome;
import io.streamsaga.idempotency.spi.DeduplicationStore;
import io.streamsaga.message.Message;
import io.streamsaga.metrics.MetricsRecorder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.Iterator;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;

/**
 * Publishes events under a deterministic message id, so that sending the same message twice delivers it
 * once — the source's {@code IdempotentProducer}, with its ever-growing {@code Set} replaced by a bounded
 * {@link DeduplicationStore}.
 *
 * <p>The id is the SHA-256 of topic, event type and the event's canonical JSON (object keys sorted, so
 * field order does not matter), or of an application key when the caller gives one (two different
 * payloads that mean the same business fact, such as a retried request with a new timestamp). Text is hashed as
 * its UTF-8 bytes; text holding a lone surrogate (malformed UTF-16), which UTF-8 cannot carry, is hashed in a form
 * of its own, so keys or events differing only there get different ids (an earlier version hashed such a surrogate
 * as '?', so a send of such a key or event retried across an upgrade goes out once more). A send whose
 * id is done in the store is skipped ({@link SendResult#skipped()}). A send whose id another send is sending
 * right now (in this process, or in another sharing the store) fails with the retriable
 * {@link ClaimInProgressException}, because that other send may yet fail: retry it after a backoff, and the
 * retry is skipped once the other send is done, or sends the message if it failed (its claim released, or
 * its lease ended). A send whose message was written but whose id the store then failed to mark done
 * (logged as a warning) is reported sent, and its claim stays until its lease ends: until then a send of the
 * same id fails with {@link ClaimInProgressException}, and after that it goes out again, under the same id.
 * Because the id is deterministic, a consumer wrapped in {@link IdempotentConsumer} drops such a duplicate,
 * and one that slipped past the producer's window (a producer restart with an in-memory store).
 *
 * <p>Two kinds of send that did not go out are counted on the bus's {@link MetricsRecorder}, tagged with the
 * topic: skipped ones under {@link #SKIPPED_METRIC}, and those failed with {@link ClaimInProgressException}
 * under {@link #IN_PROGRESS_METRIC}. A send that failed otherwise (its claim or its publish threw) is not
 * counted by the producer, only reported in its stage. Thread-safe.
 */
public final class IdempotentProducer {
    private static final Logger log = LoggerFactory.getLogger(IdempotentProducer.class);
    /** Counter of sends skipped because the same message was already sent (tag {@code topic}). */
    public static final String SKIPPED_METRIC = "streamsaga_idempotent_sends_skipped_total";
    /**
     * Counter of sends failed with {@link ClaimInProgressException}: the id was claimed by another send still in
     * progress, or by one whose id could not be marked done, until its lease ends (tag {@code topic}).
     */
    public static final String IN_PROGRESS_METRIC = "streamsaga_idempotent_sends_in_progress_total";

    private final EventBus bus;
    private final DeduplicationStore store;
    private final Duration lease;
    private final MetricsRecorder metrics;

    private IdempotentProducer(EventBus bus, DeduplicationStore store, Duration lease) {
        this.bus = bus;
        this.store = store;
        this.lease = lease;
        this.metrics = MetricsRecorder.guarded(bus.metrics());
    }

    /** Starts a producer over {@code bus} and {@code store}. */
    public static Builder builder(EventBus bus, DeduplicationStore store) {
        return new Builder(bus, store);
    }

    /**
     * Sends {@code event} under its content-hash id, unless that id was already sent within the window. The
     * stage fails with the retriable {@link ClaimInProgressException} while another send of the id is in
     * progress.
     */
    public CompletionStage<SendResult> send(String topic, String key, Object event) {
        return send(topic, key, event, null);
    }

    /**
     * Sends {@code event} under an id derived from {@code idempotencyKey} (when non-null) instead of its
     * content, unless that id was already sent within the window. The stage fails with the retriable
     * {@link ClaimInProgressException} while another send of the id is in progress.
     */
    public CompletionStage<SendResult> send(String topic, String key, Object event, String idempotencyKey) {
        String id;
        EventTypeId typeId;
        try {
            TopicPattern.requireTopicName(topic);
            ConfigurationException.require(event != null, "event must not be null (topic '%s')", topic);
            typeId = bus.codec().types().idOf(event.getClass());
            id = idempotencyKey != null ? keyId(topic, idempotencyKey) : contentId(topic, typeId, event);
        } catch (StreamSagaException e) {
            return CompletableFuture.failedFuture(e);
        }
        String storeKey = "producer/" + topic + "/" + id;
        String owner = UUID.randomUUID().toString();
        ClaimOutcome outcome;
        try {
            outcome = store.tryClaim(storeKey, owner, bus.scheduler().clock().instant(), lease);
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e); // like every other failure of a send: in its stage
        }
        if (outcome == ClaimOutcome.IN_PROGRESS) {
            // Not "skipped": the send holding the claim may still fail, and this caller would believe its
            // message sent when it never is. Its retry finds the id done (skipped) or released (sent).
            log.debug("message {} to {} is being sent by another send, not sending it alongside", id, topic);
            metrics.increment(IN_PROGRESS_METRIC, Map.of("topic", topic));
            return CompletableFuture.failedFuture(new ClaimInProgressException(storeKey));
        }
        if (outcome == ClaimOutcome.DONE) {
            log.debug("message {} to {} already sent, skipping", id, topic);
            metrics.increment(SKIPPED_METRIC, Map.of("topic", topic));
            return CompletableFuture.completedFuture(new SendResult(id, true, Optional.empty()));
        }
        Message message = Message.builder(topic).id(id).key(key).type(typeId.type()).version(typeId.version())
                .payload(event).timestamp(bus.scheduler().clock().instant()).build();
        return bus.publish(message).handle((position, error) -> {
            if (error != null) {
                RuntimeException failure = error instanceof RuntimeException re ? re : new IllegalStateException(error);
                try {
                    store.release(storeKey, owner); // let the caller's retry send it
                } catch (RuntimeException releaseFailure) {
                    failure.addSuppressed(releaseFailure); // the claim then ends with its lease
                }
                throw failure;
            }
            try {
                store.complete(storeKey, owner, bus.scheduler().clock().instant());
            } catch (RuntimeException e) {
                // The message is written: report it sent. Its claim keeps a duplicate send out until the lease
                // ends; after that, a consumer's IdempotentConsumer still drops the duplicate by its id.
                log.warn("message {} to {} was sent, but its id could not be marked done ({}); until its lease {} ends"
                        + " a send of it fails as in progress, after that one goes out again", id, topic, e.toString(),
                        lease);
            }
            return new SendResult(id, false, Optional.of(position));
        });
    }

    /** The id {@link #send(String, String, Object)} gives {@code event} on {@code topic}. */
    public String messageIdOf(String topic, Object event) {
        return contentId(topic, bus.codec().types().idOf(event.getClass()), event);
    }

    private String contentId(String topic, EventTypeId typeId, Object event) {
        StringBuilder canonical = new StringBuilder(topic).append('\n').append(typeId.type()).append('\n')
                .append(typeId.version()).append('\n');
        appendCanonical(bus.codec().toTree(event), canonical);
        return Sha256.hexOfText(canonical.toString());
    }

    private static String keyId(String topic, String idempotencyKey) {
        return Sha256.hexOfText(topic + "\nkey\n" + idempotencyKey);
    }

    /** JSON with object keys sorted at every level, so equal content hashes equally. */
    static void appendCanonical(JsonNode node, StringBuilder out) {
        if (node.isObject()) {
            TreeMap<String, JsonNode> sorted = new TreeMap<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> field = it.next();
                sorted.put(field.getKey(), field.getValue());
            }
            out.append('{');
            boolean first = true;
            for (Map.Entry<String, JsonNode> field : sorted.entrySet()) {
                if (!first) {
                    out.append(',');
                }
                first = false;
                out.append(com.fasterxml.jackson.databind.node.TextNode.valueOf(field.getKey())).append(':');
                appendCanonical(field.getValue(), out);
            }
            out.append('}');
        } else if (node.isArray()) {
            out.append('[');
            for (int i = 0; i < node.size(); i++) {
                if (i > 0) {
                    out.append(',');
                }
                appendCanonical(node.get(i), out);
            }
            out.append(']');
        } else {
            out.append(node);
        }
    }

    /**
     * The outcome of a send.
     *
     * @param messageId the deterministic message id
     * @param skipped   true when the message had already been sent (its id is done in the store) and was not
     *                  sent again
     * @param position  where it was written, when it was sent
     */
    public record SendResult(String messageId, boolean skipped, Optional<RecordPosition> position) {
        public SendResult {
            Objects.requireNonNull(messageId, "messageId");
            Objects.requireNonNull(position, "position");
        }
    }

    /** Builds an {@link IdempotentProducer}; not thread-safe. */
    public static final class Builder {
        private final EventBus bus;
        private final DeduplicationStore store;
        private Duration lease = Duration.ofMinutes(1);

        private Builder(EventBus bus, DeduplicationStore store) {
            this.bus = Objects.requireNonNull(bus, "bus");
            this.store = Objects.requireNonNull(store, "store");
        }

        /** How long an unfinished send blocks a duplicate before it may be retried (default 1 minute). */
        public Builder lease(Duration lease) {
            this.lease = ConfigurationException.requirePositive(lease, "lease");
            return this;
        }

        public IdempotentProducer build() {
            WindowChecks.requireCoversReplay(store, bus.transport());
            return new IdempotentProducer(bus, store, lease);
        }
    }
}
