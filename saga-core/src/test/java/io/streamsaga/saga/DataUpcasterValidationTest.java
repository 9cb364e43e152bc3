package io.streamsaga.saga;

import io.streamsaga.ConfigurationException;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** An upcaster registered under no saga name could never apply: it is rejected, like the builder's other blank names. */
class DataUpcasterValidationTest {

    @Test
    void anUpcasterForANullOrBlankSagaNameIsRejected() {
        ConfigurationException nullName = assertThrows(ConfigurationException.class,
                () -> SagaOrchestrator.builder().dataUpcaster(null, 1, data -> data));
        assertTrue(nullName.getMessage().contains("saga name"), nullName.getMessage());
        assertThrows(ConfigurationException.class, () -> SagaOrchestrator.builder().dataUpcaster("  ", 1, data -> data));
    }
}
