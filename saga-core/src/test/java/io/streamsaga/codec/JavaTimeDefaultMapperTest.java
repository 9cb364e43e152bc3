package io.streamsaga.codec;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.streamsaga.internal.codec.IsoJavaTimeModule;
import io.streamsaga.message.Message;
import org.junit.jupiter.api.Test;

import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.LocalTime;
import java.time.OffsetDateTime;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * JsonEventCodec: the default mapper writes java.time values as ISO-8601 strings and reads them back equal
 * without jackson-datatype-jsr310 (saga-core depends on jackson-databind only, which refuses them); with
 * jsr310 on the classpath its JavaTimeModule is registered instead, never both.
 */
class JavaTimeDefaultMapperTest {
    record Stamped(String id, Instant at, LocalDate day, LocalDateTime local, LocalTime time, OffsetDateTime offset,
                   ZonedDateTime zoned, Duration timeout, Map<LocalDate, Duration> perDay) {
    }

    static final Stamped STAMPED = new Stamped("s-1", Instant.parse("2024-05-01T10:15:30.123456789Z"),
            LocalDate.of(2024, 2, 29), LocalDateTime.of(2024, 5, 1, 10, 15), LocalTime.of(23, 59, 59, 1_000),
            OffsetDateTime.of(2024, 5, 1, 12, 15, 30, 0, ZoneOffset.ofHours(2)),
            ZonedDateTime.of(2024, 10, 27, 2, 30, 0, 0, ZoneId.of("Europe/Paris")), Duration.ofMillis(-1500),
            Map.of(LocalDate.of(2024, 1, 1), Duration.ofHours(25)));

    private final JsonEventCodec codec = new JsonEventCodec(TypeRegistry.builder().register("stamped", 1, Stamped.class).build());

    @Test
    void everyJavaTimeValueRoundTripsThroughTheDefaultCodecAsAnIso8601String() throws Exception {
        byte[] json = codec.encode(STAMPED);

        Stamped decoded = codec.decode(Message.builder("t").type("stamped").version(1).payload(json).build(), Stamped.class);

        assertEquals(STAMPED, decoded);
        assertEquals(STAMPED.zoned().getOffset(), decoded.zoned().getOffset(), "the offset and zone are kept, not adjusted to UTC");
        var tree = codec.mapper().readTree(json);
        assertEquals("2024-05-01T10:15:30.123456789Z", tree.get("at").asText());
        assertEquals("2024-02-29", tree.get("day").asText());
        assertEquals("2024-05-01T10:15:00", tree.get("local").asText());
        assertEquals("23:59:59.000001", tree.get("time").asText());
        assertEquals("2024-05-01T12:15:30+02:00", tree.get("offset").asText());
        assertEquals("2024-10-27T02:30:00+02:00[Europe/Paris]", tree.get("zoned").asText());
        assertEquals("PT-1.5S", tree.get("timeout").asText());
        assertEquals("PT25H", tree.get("perDay").get("2024-01-01").asText());
    }

    @Test
    void aDurationWrittenAsDecimalSecondsAsJsr310DoesByDefaultIsReadAndABadValueIsADecodingException() {
        String json = "{\"id\":\"s-1\",\"timeout\":1.5,\"at\":\"\"}";
        Stamped decoded = codec.decode(Message.builder("t").type("stamped").version(1)
                .payload(json.getBytes(StandardCharsets.UTF_8)).build(), Stamped.class);
        assertEquals(Duration.ofMillis(1500), decoded.timeout());
        assertNull(decoded.at(), "an empty string reads as null, as with jsr310");

        DecodingException bad = assertThrows(DecodingException.class, () -> codec.decode(Message.builder("t").type("stamped")
                .version(1).payload("{\"day\":\"2024-02-30\"}".getBytes(StandardCharsets.UTF_8)).build(), Stamped.class));
        assertTrue(bad.getMessage().contains("2024-02-30"), bad.getMessage());
    }

    record Other(java.time.Period period) {
    }

    @Test
    void aValueHeldAsIsInATreeIsReadAndATypeOutsideTheBuiltInSetStillNamesJsr310() throws Exception {
        var tree = codec.mapper().createObjectNode().putPOJO("at", Instant.EPOCH);
        assertEquals(Instant.EPOCH, codec.mapper().treeToValue(tree, Stamped.class).at());

        EncodingException error = assertThrows(EncodingException.class, () -> codec.encode(new Other(java.time.Period.ofDays(1))));
        assertTrue(error.getMessage().contains("jackson-datatype-jsr310"), error.getMessage());
    }

    @Test
    void withJsr310OnTheClasspathItsModuleIsRegisteredAndTheBuiltInOneIsNot() throws Exception {
        // saga-core's test classpath has no jsr310 (it may depend on jackson-databind only): the build copies
        // the jar of the reactor's Jackson version to target/jsr310 (see the pom); load it through the context
        // class loader, which findModules' ServiceLoader uses.
        Path jar = Path.of(System.getProperty("basedir", "."), "target", "jsr310", "jackson-datatype-jsr310.jar");
        assertTrue(Files.isRegularFile(jar), "the build copies jackson-datatype-jsr310 to " + jar);
        assertFalse(IsoJavaTimeModule.containsJsr310(ObjectMapper.findModules()), "no jsr310 on saga-core's test classpath");
        ObjectMapper without = JsonEventCodec.defaultMapper();
        assertTrue(without.getRegisteredModuleIds().contains(IsoJavaTimeModule.NAME), without.getRegisteredModuleIds().toString());

        Thread thread = Thread.currentThread();
        ClassLoader previous = thread.getContextClassLoader();
        try (URLClassLoader withJsr310 = new URLClassLoader(new URL[] {jar.toUri().toURL()}, getClass().getClassLoader())) {
            thread.setContextClassLoader(withJsr310);
            ObjectMapper with = JsonEventCodec.defaultMapper();
            assertTrue(with.getRegisteredModuleIds().contains("jackson-datatype-jsr310"), with.getRegisteredModuleIds().toString());
            assertFalse(with.getRegisteredModuleIds().contains(IsoJavaTimeModule.NAME), with.getRegisteredModuleIds().toString());
            assertEquals("1.500000000", with.writeValueAsString(Duration.ofMillis(1500)), "jsr310's own behaviour is kept");

            // An application registering JavaTimeModule itself on a default mapper built without it: not
            // skipped as a duplicate of the built-in module, and its (later) serialisers win.
            without.registerModule((com.fasterxml.jackson.databind.Module) withJsr310
                    .loadClass("com.fasterxml.jackson.datatype.jsr310.JavaTimeModule").getConstructor().newInstance());
            assertTrue(without.getRegisteredModuleIds().contains("jackson-datatype-jsr310"), without.getRegisteredModuleIds().toString());
            assertEquals("1.500000000", without.writeValueAsString(Duration.ofMillis(1500)));
        } finally {
            thread.setContextClassLoader(previous);
        }
    }
}
