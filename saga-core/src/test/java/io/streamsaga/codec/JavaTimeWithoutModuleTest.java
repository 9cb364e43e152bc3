package io.streamsaga.codec;

import org.junit.jupiter.api.Test;

import java.time.Instant;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The core has no java.time serialiser of its own: without jackson-datatype-jsr310 the error says so. */
class JavaTimeWithoutModuleTest {
    record Stamped(String id, Instant at) {
    }

    @Test
    void anInstantWithoutTheJsr310ModuleFailsToEncodeNamingTheModule() {
        JsonEventCodec codec = new JsonEventCodec(TypeRegistry.builder().register("stamped", 1, Stamped.class).build());
        EncodingException error = assertThrows(EncodingException.class, () -> codec.encode(new Stamped("s-1", Instant.EPOCH)));
        assertTrue(error.getMessage().contains("jackson-datatype-jsr310"), error.getMessage());
    }
}
