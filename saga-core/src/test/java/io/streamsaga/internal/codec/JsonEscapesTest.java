package io.streamsaga.internal.codec;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class JsonEscapesTest {

    @Test
    void aLoneSurrogatesEscapeIsFoundInJsonBytesWhereAPairsOrAnEscapedBackslashIsNot() {
        // Jackson's UTF-8 JSON escapes every surrogate; only a lone one's escape fails to read back in a field name.
        for (String lone : new String[] {"\"\\uD800\"", "\"\\uDC00\"", "\"a\\uD800\\u0041\"", "\"\\udbff",
                "\"\\uDE00\\uD83D\"", "\"\\\\\\uD800\""}) {
            assertTrue(JsonEscapes.holdsLoneSurrogateEscape(lone.getBytes(java.nio.charset.StandardCharsets.UTF_8)), lone);
        }
        for (String fine : new String[] {"\"\\uD83D\\uDE00\"", "\"\\\\uD800\"", "\"\\u0000 \\\" \\n\"", "\"\\uD8",
                "{\"caf\u00e9\":1}", ""}) {
            assertFalse(JsonEscapes.holdsLoneSurrogateEscape(fine.getBytes(java.nio.charset.StandardCharsets.UTF_8)), fine);
        }
    }
}
