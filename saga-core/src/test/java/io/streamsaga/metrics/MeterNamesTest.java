package io.streamsaga.metrics;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * One meter to a Prometheus name: a counter or distribution keeps its name however often it is claimed, and a name that
 * Prometheus shows as another one's (dots and dashes as underscores, without a {@code _total}, {@code _created},
 * {@code _bucket} or {@code _info} at its end, whatever the meter), or as one of the library's meters, is refused
 * naming both.
 */
class MeterNamesTest {

    @Test
    void aNameIsClaimedOnceByItsCounterOrDistributionAndRefusedToAnyOtherMeterThatPrometheusWouldShowUnderIt() {
        MeterNames names = new MeterNames();
        names.claimCounter("orders_total");
        names.claimCounter("orders_total");
        names.claimDistribution("order.amount");
        names.claimDistribution("order.amount");
        names.claimDistribution("payload_bytes");

        String rule = " already (as Prometheus shows it; a registry keeps one meter to a name)";
        assertEquals("counter orders cannot be recorded: counter orders_total has the name orders" + rule,
                assertThrows(IllegalArgumentException.class, () -> names.claimCounter("orders")).getMessage());
        assertEquals("distribution orders cannot be recorded: counter orders_total has the name orders" + rule,
                assertThrows(IllegalArgumentException.class, () -> names.claimDistribution("orders")).getMessage());
        assertEquals("distribution order_amount_total cannot be recorded: distribution order.amount has the name"
                        + " order_amount" + rule,
                assertThrows(IllegalArgumentException.class, () -> names.claimDistribution("order_amount_total")).getMessage());
        assertEquals("distribution payload_bytes_info_bucket cannot be recorded: distribution payload_bytes has the name"
                        + " payload_bytes" + rule,
                assertThrows(IllegalArgumentException.class, () -> names.claimDistribution("payload_bytes_info_bucket")).getMessage());
        assertEquals("counter order-amount cannot be recorded: distribution order.amount has the name order_amount" + rule,
                assertThrows(IllegalArgumentException.class, () -> names.claimCounter("order-amount")).getMessage());
        assertEquals("counter event.latency cannot be recorded: the library's timer event.latency has the name event_latency"
                        + rule,
                assertThrows(IllegalArgumentException.class, () -> names.claimCounter("event.latency")).getMessage());
        assertEquals("counter events_dead_lettered_total cannot be recorded: the library's counter events.dead.lettered has"
                        + " the name events_dead_lettered" + rule,
                assertThrows(IllegalArgumentException.class, () -> names.claimCounter("events_dead_lettered_total")).getMessage());
        assertEquals("counter streamsaga.sagas cannot be recorded: saga-micrometer's gauge streamsaga.sagas"
                        + " (SagaStatusGauges) has the name streamsaga_sagas" + rule,
                assertThrows(IllegalArgumentException.class, () -> names.claimCounter("streamsaga.sagas")).getMessage());
        assertEquals("distribution streamsaga.sagas.counted.timestamp.seconds cannot be recorded: saga-micrometer's gauge"
                        + " streamsaga.sagas.counted.timestamp (SagaStatusGauges) has the name"
                        + " streamsaga_sagas_counted_timestamp_seconds" + rule,
                assertThrows(IllegalArgumentException.class,
                        () -> names.claimDistribution("streamsaga.sagas.counted.timestamp.seconds")).getMessage());
        assertEquals("counter streamsaga_sagas_counted_timestamp cannot be recorded: saga-micrometer's gauge"
                        + " streamsaga.sagas.counted.timestamp (SagaStatusGauges) has the name"
                        + " streamsaga_sagas_counted_timestamp" + rule,
                assertThrows(IllegalArgumentException.class,
                        () -> names.claimCounter("streamsaga_sagas_counted_timestamp")).getMessage());
        assertEquals("name", assertThrows(NullPointerException.class, () -> names.claimCounter(null)).getMessage());

        new MeterNames().claimDistribution("orders"); // each recorder its own names
    }
}
