package io.streamsaga.samples.versioning;

import io.streamsaga.samples.versioning.EventVersioningSample.OrderCreatedV2;
import org.junit.jupiter.api.Test;

import java.io.OutputStream;
import java.io.PrintStream;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class EventVersioningSampleTest {

    @Test
    void aVersion2HandlerGetsVersion1EventsUpcastWithTheDefaultCurrencyAndAVersion3EventIsDeadLetteredNotGuessedAt() {
        EventVersioningSample.Result result = EventVersioningSample.run(new PrintStream(OutputStream.nullOutputStream()));

        // one partition per key: the two orders may be handled in either order
        assertEquals(Set.of(new OrderCreatedV2("o-1", 2500, "USD"), new OrderCreatedV2("o-2", 1800, "EUR")),
                Set.copyOf(result.handled()));
        assertEquals(2, result.handled().size());
        assertEquals(1, result.deadLetters().size(), result.deadLetters().toString());
        String deadLetter = result.deadLetters().get(0);
        assertTrue(deadLetter.startsWith("o-3: undecodable, ") && deadLetter.contains("version 3, newer than version 2"),
                deadLetter);
    }
}
