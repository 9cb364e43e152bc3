package io.streamsaga.inmemory;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.retry.RetryPolicy;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.LocalTime;
import java.time.OffsetDateTime;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

/**
 * JsonEventCodec: an event with java.time values goes through a transport that encodes to bytes (as Kafka
 * does) with the default mapper, without jackson-datatype-jsr310, and arrives equal.
 */
class JavaTimeOverSerializingTransportTest {
    record Stamped(String id, Instant at, LocalDate day, LocalDateTime local, LocalTime time, OffsetDateTime offset,
                   ZonedDateTime zoned, Duration timeout) {
    }

    @Test
    void anEventWithEveryJavaTimeTypeArrivesEqualOverTheSerializingInMemoryTransport() {
        InMemoryTransport transport = InMemoryTransport.builder().partitions(1)
                .deliveryMode(DeliveryMode.MANUAL).serializePayloads(true).build();
        EventBus bus = EventBus.builder(transport).scheduler(new VirtualScheduler()).retryPolicy(RetryPolicy.NONE)
                .types(TypeRegistry.builder().register("stamped", 1, Stamped.class).build())
                .build();
        List<Stamped> handled = new CopyOnWriteArrayList<>();
        bus.subscribe("audit", "stamped", Stamped.class, (event, ctx) -> handled.add(event));
        Stamped sent = new Stamped("s-1", Instant.parse("2024-05-01T10:15:30.123456789Z"), LocalDate.of(2024, 2, 29),
                LocalDateTime.of(2024, 5, 1, 10, 15, 30, 500), LocalTime.NOON,
                OffsetDateTime.of(2024, 5, 1, 12, 15, 30, 0, ZoneOffset.ofHours(-5)),
                ZonedDateTime.of(2024, 3, 31, 3, 30, 0, 0, ZoneId.of("Europe/Berlin")), Duration.ofDays(2).plusMillis(1));

        bus.publish("stamped", "k", sent);
        transport.drainAll();

        assertInstanceOf(byte[].class, transport.messages("stamped").get(0).payload(), "the transport carried bytes");
        assertEquals(List.of(sent), handled);
        assertEquals(List.of(), transport.messages("stamped.DLT"));
    }
}
