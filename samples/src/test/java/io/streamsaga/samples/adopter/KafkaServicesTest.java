package io.streamsaga.samples.adopter;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The adopter probes' fixture closes everything, the broker last, whatever throws on the way. */
class KafkaServicesTest {

    @Test
    void closingClosesEverythingAndTheBrokerLastAndRethrowsTheFirstFailureWithTheOthersSuppressed() {
        // close() stopped at the first close that threw: what was registered before it and the broker kept running
        List<String> closed = new ArrayList<>();
        IllegalStateException first = new IllegalStateException("projection refused to close");
        IllegalStateException second = new IllegalStateException("transport refused to close");
        KafkaServices services = new KafkaServices("localhost:9092", () -> closed.add("broker"));
        services.closeAtEnd(() -> closed.add("bus"));
        services.closeAtEnd(() -> {
            closed.add("transport");
            throw second;
        });
        services.closeAtEnd(() -> {
            closed.add("projection");
            throw first;
        });

        Exception thrown = assertThrows(Exception.class, services::close);

        assertEquals(List.of("projection", "transport", "bus", "broker"), closed, "everything, in reverse order");
        assertSame(first, thrown, "the first failure");
        assertArrayEquals(new Throwable[] {second}, thrown.getSuppressed(), "the later ones suppressed in it");
    }
}
