package io.streamsaga.bus;

import io.streamsaga.internal.SystemScheduler;
import io.streamsaga.message.Message;
import io.streamsaga.spi.RecordHandler;
import io.streamsaga.spi.Transport;
import io.streamsaga.spi.TransportRecord;
import org.junit.jupiter.api.Test;

import java.time.Clock;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A {@link DeadLetterRedrive} run closed on its own consumer thread (in its filter) while the run's closer thread,
 * which resubscribes after a stop at its end that the group's committed offsets do not show, is still inside that
 * subscribe: the closer then closes the subscription it made, and that close waits for the consumer thread, as a
 * transport's does for the handler in progress. The transport is driven by hand: each subscription delivers the
 * topic's one letter on a thread of its own, and nothing is ever committed (a Kafka transaction aborted as the
 * subscription closed).
 */
class RedriveCloseOnItsConsumerThreadTest {
    private static final String DLT = "charges.DLT";

    /** Each subscription delivers the letter at offset 0 on a thread of its own; its close waits for that thread. */
    private static final class HandDrivenTransport implements Transport {
        final AtomicInteger subscriptions = new AtomicInteger();
        /** Completes when the second subscription may return to its caller. */
        final CompletableFuture<Void> secondReturns = new CompletableFuture<>();

        @Override
        public String name() {
            return "hand-driven";
        }

        @Override
        public boolean carriesObjects() {
            return true;
        }

        @Override
        public CompletionStage<RecordPosition> send(Message message) {
            return CompletableFuture.completedFuture(new RecordPosition(message.topic(), 0, 0));
        }

        @Override
        public void afterDelivery(Runnable kept, Runnable withdrawn) {
            withdrawn.run(); // the transaction aborted: the run's position is not kept
        }

        @Override
        public Subscription subscribe(String group, TopicPattern pattern, StartPosition start, RecordHandler handler) {
            Thread consumer = new Thread(() -> {
                try {
                    handler.handle(new TransportRecord(Message.builder(DLT).key("k").type("letter").payload("a").build(),
                            group, 0, 0));
                } catch (Exception e) {
                    // a declined or failed letter: nothing more to deliver here
                }
            }, "hand-driven-consumer-" + subscriptions.incrementAndGet());
            consumer.setDaemon(true);
            consumer.start();
            if (subscriptions.get() == 2) {
                secondReturns.join();
            }
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
                    return consumer.isAlive();
                }

                @Override
                public void close() {
                    if (consumer != Thread.currentThread()) {
                        try {
                            consumer.join(TimeUnit.MINUTES.toMillis(10)); // the handler in progress ends first
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                        }
                    }
                }
            };
        }

        @Override
        public Map<Integer, Long> endOffsets(String topic) {
            return Map.of(0, 1L);
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

    @Test
    void aRunClosedInItsFilterWhileItsCloserResubscribesReturnsWithoutWaitingForTheCloserWhichWaitsForIt()
            throws Exception {
        HandDrivenTransport transport = new HandDrivenTransport();
        try (SystemScheduler scheduler = new SystemScheduler(Clock.systemUTC(), Duration.ofMinutes(10));
             EventBus bus = EventBus.builder(transport).scheduler(scheduler).build()) {
            CompletableFuture<DeadLetterRedrive.Run> started = new CompletableFuture<>();
            AtomicInteger filtered = new AtomicInteger();
            CountDownLatch closedInTheFilter = new CountDownLatch(1);
            DeadLetterRedrive.Run run = DeadLetterRedrive.builder(bus, DLT).filter(letter -> {
                if (filtered.incrementAndGet() == 2) { // the resubscribed run's consumer
                    DeadLetterRedrive.Run self = started.join();
                    // the closer's subscribe returns once this close has closed the run (finished() completed)
                    self.finished().whenComplete((report, e) -> transport.secondReturns.complete(null));
                    self.close();
                    closedInTheFilter.countDown();
                }
                return false;
            }).build().start();
            started.complete(run);

            assertTrue(closedInTheFilter.await(30, TimeUnit.SECONDS),
                    "close() on the consumer thread waited for the closer, which waited for that thread");
        }
    }
}
