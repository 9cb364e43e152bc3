package io.streamsaga.inmemory.saga;

import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.inmemory.saga.testkit.SagaRunReport;

import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The source's OrderSaga over idempotent in-memory services that count every effect they really apply. */
final class OrderSagaFixture {

    record OrderData(String customer, List<String> items, long amount, String orderId, String reservationId,
                     String paymentId) {
        static OrderData of(String customer, long amount, String... items) {
            return new OrderData(customer, List.of(items), amount, null, null, null);
        }

        OrderData withOrderId(String id) {
            return new OrderData(customer, items, amount, id, reservationId, paymentId);
        }

        OrderData withReservationId(String id) {
            return new OrderData(customer, items, amount, orderId, id, paymentId);
        }

        OrderData withPaymentId(String id) {
            return new OrderData(customer, items, amount, orderId, reservationId, id);
        }
    }

    /** Services keyed by the idempotency key: a second call with the same key changes nothing. */
    static final class Services {
        final Set<String> applied = new HashSet<>();
        int ordersCreated;
        int ordersCancelled;
        int reservations;
        int releases;
        int charges;
        int refunds;
        int shipments;

        synchronized String createOrder(String key) {
            if (applied.add("create:" + key)) {
                ordersCreated++;
            }
            return "order-" + key;
        }

        synchronized void cancelOrder(String key) {
            if (applied.contains("create:" + key) && applied.add("cancel:" + key)) {
                ordersCancelled++;
            }
        }

        synchronized String reserve(String key) {
            if (applied.add("reserve:" + key)) {
                reservations++;
            }
            return "reservation-" + key;
        }

        synchronized void release(String key) {
            if (applied.contains("reserve:" + key) && applied.add("release:" + key)) {
                releases++;
            }
        }

        synchronized String charge(String key) {
            if (applied.add("charge:" + key)) {
                charges++;
            }
            return "payment-" + key;
        }

        synchronized void refund(String key) {
            if (applied.contains("charge:" + key) && applied.add("refund:" + key)) {
                refunds++;
            }
        }

        synchronized void ship(String key) {
            if (applied.add("ship:" + key)) {
                shipments++;
            }
        }
    }

    static SagaDefinition<OrderData> definition(Services s) {
        return SagaDefinition.builder("order-saga", OrderData.class)
                .version(1)
                .dataType("order-saga-data")
                .step("create-order")
                    .action((d, ctx) -> d.withOrderId(s.createOrder(ctx.idempotencyKey())))
                    .compensation((d, ctx) -> s.cancelOrder(ctx.sagaId() + "/create-order"))
                .step("reserve-inventory")
                    .action((d, ctx) -> d.withReservationId(s.reserve(ctx.idempotencyKey())))
                    .compensation((d, ctx) -> s.release(ctx.idempotencyKey()))
                .step("process-payment")
                    .action((d, ctx) -> d.withPaymentId(s.charge(ctx.idempotencyKey())))
                    .compensation((d, ctx) -> s.refund(ctx.idempotencyKey()))
                    .compensationRetry(RetryPolicy.builder().maxAttempts(3).noBackoff().build())
                .step("schedule-shipping")
                    .action((d, ctx) -> {
                        s.ship(ctx.idempotencyKey());
                        return d;
                    })
                .build();
    }

    /** Every effect happened at most once, and a saga that did not complete left none behind. */
    static void consistent(Services s, SagaRunReport<Services, OrderData> run) {
        assertTrue(s.ordersCreated <= 1 && s.reservations <= 1 && s.charges <= 1 && s.shipments <= 1,
                "an effect was applied twice");
        if (run.status() == SagaStatus.COMPLETED) {
            assertEquals(List.of(1, 1, 1, 1, 0, 0, 0),
                    List.of(s.ordersCreated, s.reservations, s.charges, s.shipments, s.ordersCancelled, s.releases, s.refunds));
        } else {
            assertEquals(s.ordersCreated, s.ordersCancelled, "orders created vs cancelled");
            assertEquals(s.reservations, s.releases, "reservations vs releases");
            assertEquals(s.charges, s.refunds, "charges vs refunds");
            assertEquals(0, s.shipments, "shipments");
        }
    }

    private OrderSagaFixture() {
    }
}
