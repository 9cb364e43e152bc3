package io.streamsaga.inmemory.patterns;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.EventPattern;
import io.streamsaga.bus.PublishException;
import io.streamsaga.bus.RegistrationOptions;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.idempotency.IdempotentConsumer;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryMetrics;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.mockito.AdditionalAnswers.delegatesTo;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.Mockito.doAnswer;
import static org.mockito.Mockito.mock;

/**
 * An {@link IdempotentConsumer} around the {@code @EventPattern} methods of a service, given as the decorator of its
 * registration ({@code RegistrationOptions.builder().around(consumer::wrap)}), with its topics named per environment:
 * before, only a handler subscribed by hand could be wrapped, so an annotated service gave up deduplication or its
 * annotations.
 */
class IdempotentEventPatternHandlersTest {
    record PaymentRequested(String orderId, long amount) {
    }

    record RefundRequested(String orderId, long amount) {
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final InMemoryMetrics metrics = new InMemoryMetrics();
    private final EventBus bus = EventBus.builder(transport)
            .types(TypeRegistry.builder().register("payment-requested", 1, PaymentRequested.class)
                    .register("refund-requested", 1, RefundRequested.class).build())
            .retryPolicy(RetryPolicy.builder().maxAttempts(3).build())
            .scheduler(scheduler).metrics(metrics).build();

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    /** A payment service deployed per environment; a negative amount is a request it cannot handle. */
    public static final class PaymentService {
        final List<String> log = new CopyOnWriteArrayList<>();

        @EventPattern("${env}.payment-requested")
        public void charge(PaymentRequested request) {
            log.add("charge " + request.orderId());
            if (request.amount() < 0) {
                throw new IllegalStateException("cannot charge " + request.amount());
            }
        }

        @EventPattern("${env}.refund-requested")
        public void refund(RefundRequested request) {
            log.add("refund " + request.orderId());
        }
    }

    private Message payment(String id, String orderId, long amount) {
        return Message.builder("prod.payment-requested").id(id).key(orderId).type("payment-requested")
                .payload(new PaymentRequested(orderId, amount)).build();
    }

    private Message refund(String id, String orderId) {
        return Message.builder("prod.refund-requested").id(id).key(orderId).type("refund-requested")
                .payload(new RefundRequested(orderId, 10)).build();
    }

    @Test
    void aDuplicateOfEveryAnnotatedMethodsMessageIsDroppedAndAFailingOneIsStillRetriedThenDeadLettered() {
        IdempotentConsumer consumer = IdempotentConsumer.builder(bus, InMemoryDeduplicationStore.builder().build())
                .lease(Duration.ofMinutes(1)).build();
        PaymentService service = new PaymentService();
        bus.register("payments", service, RegistrationOptions.builder()
                .placeholders(Map.of("env", "prod")::get)
                .around(consumer::wrap)
                .build());

        bus.publish(payment("m-1", "o-1", 100));
        bus.publish(payment("m-1", "o-1", 100)); // at-least-once: the same message arrives twice
        bus.publish(refund("m-2", "o-1"));
        bus.publish(refund("m-2", "o-1"));
        bus.publish(payment("m-3", "o-2", -5));
        transport.drainAll();

        assertEquals(List.of("charge o-1", "charge o-2", "charge o-2", "charge o-2", "refund o-1"),
                service.log.stream().sorted().toList(),
                "each duplicate dropped; the failing request's claim released after each attempt, so each retry ran");
        assertEquals(1, metrics.counter(IdempotentConsumer.DUPLICATES_METRIC,
                Map.of("group", "payments", "topic", "prod.payment-requested")));
        assertEquals(1, metrics.counter(IdempotentConsumer.DUPLICATES_METRIC,
                Map.of("group", "payments", "topic", "prod.refund-requested")));
        List<Message> dead = transport.messages("prod.payment-requested.DLT");
        assertEquals(1, dead.size());
        assertEquals("o-2", dead.get(0).key());
        assertEquals(IllegalStateException.class.getName(), dead.get(0).header(MessageHeaders.DLT_ERROR_CLASS).orElseThrow());
        assertEquals("3", dead.get(0).header(MessageHeaders.DLT_ATTEMPTS).orElseThrow());

        bus.publish(payment("m-3", "o-2", -5)); // the dead-lettered one delivered again: not done, so it runs again
        transport.drainAll();
        assertEquals(8, service.log.size(), service.log.toString());
    }

    record PaymentCompleted(String orderId) {
    }

    /** Charges and tells, without waiting for its publish: the publish is part of the delivery all the same. */
    public static final class TellingPaymentService {
        final List<String> log = new CopyOnWriteArrayList<>();
        private final EventBus bus;

        TellingPaymentService(EventBus bus) {
            this.bus = bus;
        }

        @EventPattern("${env}.payment-requested")
        public void charge(PaymentRequested request) {
            log.add("charge " + request.orderId());
            bus.publish("prod.payment-completed", request.orderId(), new PaymentCompleted(request.orderId()));
        }
    }

    @Test
    void aMethodWhosePublishFailsReleasesItsKeySoTheRetryRunsItAgainRatherThanSkippingItAsDone() {
        InMemoryTransport real = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        AtomicInteger refusals = new AtomicInteger(1);
        InMemoryTransport failingOnce = mock(InMemoryTransport.class, delegatesTo(real));
        doAnswer(call -> {
            Message message = call.getArgument(0);
            if (message.topic().equals("prod.payment-completed") && refusals.getAndDecrement() > 0) {
                return CompletableFuture.failedFuture(new PublishException(message.topic(), "broker unavailable", null, true));
            }
            return real.send(message);
        }).when(failingOnce).send(any(Message.class));
        try (EventBus telling = EventBus.builder(failingOnce)
                .types(TypeRegistry.builder().register("payment-requested", 1, PaymentRequested.class)
                        .register("payment-completed", 1, PaymentCompleted.class).build())
                .retryPolicy(RetryPolicy.builder().maxAttempts(3).noBackoff().build())
                .scheduler(scheduler).metrics(metrics).build()) {
            IdempotentConsumer consumer = IdempotentConsumer.builder(telling, InMemoryDeduplicationStore.builder().build())
                    .build();
            TellingPaymentService service = new TellingPaymentService(telling);
            telling.register("payments", service, RegistrationOptions.builder()
                    .placeholders(Map.of("env", "prod")::get).around(consumer::wrap).build());

            telling.publish(payment("m-1", "o-1", 100));
            telling.publish(payment("m-1", "o-1", 100));
            real.drainAll();

            assertEquals(List.of("charge o-1", "charge o-1"), service.log,
                    "the failed publish failed the attempt and released the key: retried once, the duplicate dropped");
            assertEquals(1, real.messages("prod.payment-completed").size());
            assertEquals(List.of(), real.messages("prod.payment-requested.DLT"));
        } finally {
            real.close();
        }
    }
}
