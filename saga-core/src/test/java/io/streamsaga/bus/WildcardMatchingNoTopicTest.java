package io.streamsaga.bus;

import io.streamsaga.ConfigurationException;
import io.streamsaga.message.Message;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A wildcard never matches a dead-letter topic ({@code .DLT}) or an internal one ({@code __}), and a topic name is at
 * most 249 characters, so some wildcards match no topic at all ({@code *.DLT}, {@code __*}): subscribing to one was
 * taken, and the subscription delivered nothing, ever, without a word (an application that meant to follow its dead
 * letters with {@code *.DLT} saw none). The bus now refuses such a pattern with a {@link ConfigurationException} that
 * says to subscribe to those topics by their exact names; every wildcard that matches a topic is taken as before.
 */
class WildcardMatchingNoTopicTest {
    private final RecordingTransport transport = new RecordingTransport();
    private final EventBus bus = EventBus.builder(transport).build();

    @ParameterizedTest
    @ValueSource(strings = {"*.DLT", "orders-*.DLT", "*.DLT*.DLT", "__*", "__*.DLT"})
    void aWildcardThatMatchesNoTopicIsRefusedAndNothingIsSubscribed(String pattern) {
        ConfigurationException e = assertThrows(ConfigurationException.class,
                () -> bus.subscribe("ops", pattern, Message.class, (message, context) -> { }));

        assertTrue(e.getMessage().startsWith("group 'ops' cannot subscribe to '" + pattern + "', a wildcard that"
                + " matches no topic"), e.getMessage());
        assertTrue(e.getMessage().contains("by its exact name"), e.getMessage());
        assertTrue(transport.registrations.isEmpty(), "nothing subscribed");
    }

    @Test
    void aWildcardSpellingMoreCharactersThanATopicNameHoldsIsRefused() {
        String pattern = "a".repeat(250) + "*";

        ConfigurationException e = assertThrows(ConfigurationException.class,
                () -> bus.subscribe("ops", pattern, Message.class, (message, context) -> { }));

        assertTrue(e.getMessage().contains("a wildcard that matches no topic"), e.getMessage());
        assertTrue(transport.registrations.isEmpty(), "nothing subscribed");
    }

    @ParameterizedTest
    @ValueSource(strings = {"*", "orders-*", "*.DLT*", "*.DL", "_*", "*_", "_*_", "*__", "orders.DLT", "__consumer_offsets"})
    void aWildcardThatMatchesSomeTopicAndAnExactNameAreTakenAsBefore(String pattern) {
        Subscription subscription = bus.subscribe("ops", pattern, Message.class, (message, context) -> { });

        assertEquals(TopicPattern.of(pattern), subscription.pattern());
        assertEquals(1, transport.registrations.size());
    }

    static final class DeadLetterWatcher {
        @EventPattern("orders")
        public void orders(Message message) {
        }

        @EventPattern("*.DLT")
        public void deadLetters(Message message) {
        }
    }

    @Test
    void anEventPatternThatMatchesNoTopicIsRefusedBeforeAnyMethodIsSubscribed() {
        ConfigurationException e = assertThrows(ConfigurationException.class,
                () -> bus.register("ops", new DeadLetterWatcher()));

        assertTrue(e.getMessage().contains("'*.DLT', a wildcard that matches no topic"), e.getMessage());
        assertEquals(List.of(), transport.registrations, "no method subscribed");
    }
}
