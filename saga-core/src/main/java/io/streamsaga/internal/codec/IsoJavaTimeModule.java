package io.streamsaga.internal.codec;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.DeserializationContext;
import com.fasterxml.jackson.databind.KeyDeserializer;
import com.fasterxml.jackson.databind.Module;
import com.fasterxml.jackson.databind.SerializerProvider;
import com.fasterxml.jackson.databind.deser.std.StdScalarDeserializer;
import com.fasterxml.jackson.databind.module.SimpleModule;
import com.fasterxml.jackson.databind.ser.std.StdSerializer;

import java.io.IOException;
import java.math.BigDecimal;
import java.time.DateTimeException;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.LocalTime;
import java.time.OffsetDateTime;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.Collection;
import java.util.function.Function;

/**
 * The {@code java.time} support of the default mapper when jackson-datatype-jsr310 is absent (the core
 * depends on jackson-databind only, which refuses these types): {@code Instant}, {@code LocalDate},
 * {@code LocalDateTime}, {@code LocalTime}, {@code OffsetDateTime}, {@code ZonedDateTime} and {@code Duration}
 * are written as ISO-8601 strings, as values and as map keys, and read back equal (an offset or zone is kept,
 * not adjusted to UTC). {@code Duration} also reads the decimal seconds jsr310 writes by default, so data
 * written while that module was present stays readable. An empty string reads as null, as with jsr310.
 * Always ISO-8601: {@code @JsonFormat} patterns and {@code WRITE_DATES_AS_TIMESTAMPS} are not looked at (an
 * application that needs them adds jsr310). Thread-safe (stateless).
 */
public final class IsoJavaTimeModule extends SimpleModule {
    private static final long serialVersionUID = 1L;

    /** Distinct from jsr310's "jackson-datatype-jsr310", so registering that module later is not skipped. */
    public static final String NAME = "streamsaga-iso-java-time";

    public IsoJavaTimeModule() {
        super(NAME);
        add(Instant.class, DateTimeFormatter.ISO_INSTANT::format, Instant::parse);
        add(LocalDate.class, DateTimeFormatter.ISO_LOCAL_DATE::format, LocalDate::parse);
        add(LocalDateTime.class, DateTimeFormatter.ISO_LOCAL_DATE_TIME::format, LocalDateTime::parse);
        add(LocalTime.class, DateTimeFormatter.ISO_LOCAL_TIME::format, LocalTime::parse);
        add(OffsetDateTime.class, DateTimeFormatter.ISO_OFFSET_DATE_TIME::format, OffsetDateTime::parse);
        add(ZonedDateTime.class, DateTimeFormatter.ISO_ZONED_DATE_TIME::format, ZonedDateTime::parse);
        add(Duration.class, Duration::toString, Duration::parse);
    }

    /** Whether {@code modules} (as found by {@code ObjectMapper.findModules()}) include jsr310's own module. */
    public static boolean containsJsr310(Collection<? extends Module> modules) {
        return modules.stream().anyMatch(m -> m.getClass().getName().startsWith("com.fasterxml.jackson.datatype.jsr310."));
    }

    private <T> void add(Class<T> type, Function<T, String> format, Function<String, T> parse) {
        addSerializer(type, new IsoSerializer<>(type, format, false));
        addKeySerializer(type, new IsoSerializer<>(type, format, true));
        addDeserializer(type, new IsoDeserializer<>(type, parse));
        addKeyDeserializer(type, new KeyDeserializer() {
            @Override
            public Object deserializeKey(String key, DeserializationContext ctxt) throws IOException {
                try {
                    return parse.apply(key.trim());
                } catch (DateTimeException e) {
                    return ctxt.handleWeirdKey(type, key, "not an ISO-8601 %s: %s", type.getSimpleName(), e.getMessage());
                }
            }
        });
    }

    private static final class IsoSerializer<T> extends StdSerializer<T> {
        private static final long serialVersionUID = 1L;
        private final transient Function<T, String> format;
        private final boolean key;

        IsoSerializer(Class<T> type, Function<T, String> format, boolean key) {
            super(type);
            this.format = format;
            this.key = key;
        }

        @Override
        public void serialize(T value, JsonGenerator gen, SerializerProvider provider) throws IOException {
            if (key) {
                gen.writeFieldName(format.apply(value));
            } else {
                gen.writeString(format.apply(value));
            }
        }
    }

    private static final class IsoDeserializer<T> extends StdScalarDeserializer<T> {
        private static final long serialVersionUID = 1L;
        private final transient Function<String, T> parse;

        IsoDeserializer(Class<T> type, Function<String, T> parse) {
            super(type);
            this.parse = parse;
        }

        @Override
        @SuppressWarnings("unchecked")
        public T deserialize(JsonParser p, DeserializationContext ctxt) throws IOException {
            Class<?> type = handledType();
            if (p.hasToken(JsonToken.VALUE_STRING)) {
                String text = p.getText().trim();
                if (text.isEmpty()) {
                    return null;
                }
                try {
                    return parse.apply(text);
                } catch (DateTimeException e) {
                    return (T) ctxt.handleWeirdStringValue(type, text, "not an ISO-8601 %s: %s",
                            type.getSimpleName(), e.getMessage());
                }
            }
            if (p.hasToken(JsonToken.VALUE_EMBEDDED_OBJECT) && type.isInstance(p.getEmbeddedObject())) {
                return (T) p.getEmbeddedObject(); // a value buffered as is (convertValue, a POJONode)
            }
            if (type == Duration.class && (p.hasToken(JsonToken.VALUE_NUMBER_INT) || p.hasToken(JsonToken.VALUE_NUMBER_FLOAT))) {
                BigDecimal seconds = p.getDecimalValue();
                return (T) Duration.ofSeconds(seconds.longValue(),
                        seconds.remainder(BigDecimal.ONE).movePointRight(9).intValue());
            }
            return (T) ctxt.handleUnexpectedToken(type, p);
        }
    }
}
