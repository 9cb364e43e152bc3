package io.streamsaga.bus;

import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.spi.RecordHandler;
import io.streamsaga.spi.RedeliverLater;
import io.streamsaga.spi.Transport;
import io.streamsaga.spi.TransportRecord;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;

/**
 * What the bus keeps per partition between a record's deliveries on a transport that redelivers per partition (Kafka):
 * the attempts a waiting record made, and the step its too-large dead letter reached. Both are of one record, the one
 * at their offset: the bus held them by offset only, so they went on after the transport said the partition may have
 * been handled elsewhere ({@link RecordHandler#forgetPartition}), and another record at the same offset (a topic
 * deleted and created again, which Kafka need not tell by a revoke) inherited them. The transport is driven by hand:
 * each call of the handler is one delivery of the record.
 */
class PartitionStateOfARedeliveringTransportTest {
    private static final String ORDERS = "order-created";

    /** Redelivers per partition; refuses the next {@link #refusals} dead letters with {@link #refusal}. */
    private static final class RedeliveringTransport implements Transport {
        final List<Message> sent = new CopyOnWriteArrayList<>();
        final AtomicInteger refusals = new AtomicInteger();
        volatile boolean tooLarge = true;
        RecordHandler handler;

        @Override
        public String name() {
            return "redelivering";
        }

        @Override
        public boolean carriesObjects() {
            return true;
        }

        @Override
        public boolean redeliversPerPartition() {
            return true;
        }

        @Override
        public CompletionStage<RecordPosition> send(Message message) {
            if (message.topic().endsWith(MessageHeaders.DEAD_LETTER_SUFFIX) && refusals.getAndUpdate(n -> Math.max(0, n - 1)) > 0) {
                return CompletableFuture.failedFuture(tooLarge
                        ? new MessageTooLargeException(message.topic(), "over the limit", null)
                        : new PublishException(message.topic(), "broker unreachable", null, true));
            }
            sent.add(message);
            return CompletableFuture.completedFuture(new RecordPosition(message.topic(), 0, sent.size() - 1L));
        }

        @Override
        public Subscription subscribe(String group, TopicPattern pattern, StartPosition start, RecordHandler handler) {
            this.handler = handler;
            return new Subscription() {
                @Override
                public String group() {
                    return group;
                }

                @Override
                public TopicPattern pattern() {
                    return pattern;
                }

                @Override
                public boolean isActive() {
                    return true;
                }

                @Override
                public void close() {
                }
            };
        }

        /**
         * One delivery of {@code message} at {@code offset} of partition 0; what the handler threw (a refused dead
         * letter's refusal unwrapped), or null.
         */
        Throwable deliver(Message message, long offset) {
            try {
                handler.handle(new TransportRecord(message, "payment", 0, offset));
                return null;
            } catch (CompletionException e) {
                return e.getCause();
            } catch (Exception e) {
                return e;
            }
        }

        List<Message> deadLetters() {
            return sent.stream().filter(m -> m.topic().endsWith(MessageHeaders.DEAD_LETTER_SUFFIX)).toList();
        }

        @Override
        public Map<Integer, Long> endOffsets(String topic) {
            return Map.of();
        }

        @Override
        public Map<Integer, Long> committedOffsets(String group, String topic) {
            return Map.of();
        }

        @Override
        public Set<String> consumerGroups(String topic) {
            return Set.of();
        }

        @Override
        public Optional<Duration> retentionHorizon() {
            return Optional.empty();
        }

        @Override
        public void close() {
        }
    }

    private static Message order(String id) {
        return Message.builder(ORDERS).id(id).key("k").type("order").payload(Map.of("id", id)).build();
    }

    @Test
    void theAttemptsOfARecordWhosePartitionWasRevokedStartAgainWhenItIsDeliveredAfterwards() {
        RedeliveringTransport transport = new RedeliveringTransport();
        List<Integer> attempts = new CopyOnWriteArrayList<>();
        try (EventBus bus = EventBus.builder(transport)
                .retryPolicy(RetryPolicy.builder().maxAttempts(3).noBackoff().build()).build()) {
            bus.subscribe("payment", ORDERS, Message.class, (message, ctx) -> {
                attempts.add(ctx.attempt());
                throw new IllegalStateException("declined");
            });
            Message declined = order("declined");
            assertInstanceOf(RedeliverLater.class, transport.deliver(declined, 0));
            assertInstanceOf(RedeliverLater.class, transport.deliver(declined, 0));

            // another member of the group may have had the record meanwhile: what this one counted is stale
            transport.handler.forgetPartition(ORDERS, 0);
            assertInstanceOf(RedeliverLater.class, transport.deliver(declined, 0));

            assertEquals(List.of(1, 2, 1), attempts, "the policy's attempts start again, as after a restart");
            assertEquals(List.of(), transport.deadLetters());
        }
    }

    @Test
    void aRecordOfATopicCreatedAgainAtTheOffsetOfOneWhoseDeadLetterFailedIsHandledNotDeadLetteredWithTheOldError() {
        RedeliveringTransport transport = new RedeliveringTransport();
        transport.tooLarge = false;
        transport.refusals.set(1);
        List<String> handled = new CopyOnWriteArrayList<>();
        try (EventBus bus = EventBus.builder(transport).retryPolicy(RetryPolicy.NONE).build()) {
            bus.subscribe("payment", ORDERS, Message.class, (message, ctx) -> {
                handled.add(message.id() + "@" + ctx.attempt());
                if (message.id().equals("declined")) {
                    throw new IllegalStateException("declined");
                }
            });
            // its attempts spent, its dead letter refused: the record waits to have only its dead letter written
            assertInstanceOf(PublishException.class, transport.deliver(order("declined"), 0));

            // the topic deleted and created again, no revoke between: another record at the same offset
            assertNull(transport.deliver(order("accepted"), 0));

            assertEquals(List.of("declined@1", "accepted@1"), handled, "the new record is handled, once, as a first attempt");
            assertEquals(List.of(), transport.deadLetters(), "nothing dead-lettered in its name");
        }
    }

    @Test
    void aRecordOfATopicCreatedAgainAtTheOffsetOfOneWhoseDeadLetterSteppedDownHasItsOwnDeadLetterSentWhole() {
        RedeliveringTransport transport = new RedeliveringTransport();
        transport.refusals.set(3);
        try (EventBus bus = EventBus.builder(transport).retryPolicy(RetryPolicy.NONE).build()) {
            bus.subscribe("payment", ORDERS, Message.class, (message, ctx) -> {
                throw new IllegalStateException("declined " + message.id());
            });
            Message huge = order("huge");
            // refused whole, without its payload, without its headers: its next dead letter goes without its key
            for (int redelivery = 0; redelivery < 3; redelivery++) {
                assertInstanceOf(MessageTooLargeException.class, transport.deliver(huge, 0));
            }

            // the topic deleted and created again, no revoke between: another record at the same offset, which fits
            assertNull(transport.deliver(order("small"), 0));

            assertEquals(1, transport.deadLetters().size(), "one dead letter, the new record's");
            Message deadLetter = transport.deadLetters().get(0);
            assertEquals("declined small", deadLetter.headers().get(MessageHeaders.DLT_ERROR_MESSAGE));
            assertEquals("k", deadLetter.key(), "sent with its key, so to the partition of the key's dead letters");
            assertEquals(Map.of("id", "small"), deadLetter.payload());
            assertNull(deadLetter.headers().get(MessageHeaders.DLT_PAYLOAD_OMITTED));
        }
    }
}
