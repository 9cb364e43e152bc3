package io.streamsaga.bus;

import io.streamsaga.ConfigurationException;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TopicPatternTest {

    @Test
    void anExactNameMatchesOnlyItself() {
        TopicPattern pattern = TopicPattern.of("order-created");
        assertFalse(pattern.isWildcard());
        assertTrue(pattern.matches("order-created"));
        assertFalse(pattern.matches("order-created-v2"));
        assertFalse(pattern.matches("order"));
    }

    @Test
    void aPrefixWildcardMatchesEveryTopicWithThePrefix() {
        TopicPattern pattern = TopicPattern.of("order-*");
        assertTrue(pattern.isWildcard());
        assertTrue(pattern.matches("order-created"));
        assertTrue(pattern.matches("order-"));
        assertTrue(pattern.matches("order-item.created"));
        assertFalse(pattern.matches("payment-processed"));
        assertFalse(pattern.matches("orders"));
    }

    @Test
    void starMatchesEveryOrdinaryTopic() {
        TopicPattern all = TopicPattern.of("*");
        assertTrue(all.matches("order-created"));
        assertTrue(all.matches("a"));
        assertTrue(TopicPattern.of("*-created").matches("order-created"));
        assertFalse(TopicPattern.of("*-created").matches("order-cancelled"));
    }

    @Test
    void dotsAreLiteralNotRegexWildcards() {
        TopicPattern pattern = TopicPattern.of("shop.*");
        assertTrue(pattern.matches("shop.orders"));
        assertFalse(pattern.matches("shopXorders"));
        assertEquals("shop\\..*", pattern.toRegex());
    }

    @Test
    void wildcardsNeverMatchDeadLetterOrInternalTopics() {
        assertFalse(TopicPattern.of("*").matches("order-created.DLT"));
        assertFalse(TopicPattern.of("order-*").matches("order-created.DLT"));
        assertFalse(TopicPattern.of("*").matches("__consumer_offsets"));
        assertTrue(TopicPattern.of("order-created.DLT").matches("order-created.DLT"), "exact names still work");
    }

    @Test
    void illegalPatternsAreRejectedQuotingTheValue() {
        ConfigurationException e = assertThrows(ConfigurationException.class, () -> TopicPattern.of("order created"));
        assertEquals("topic pattern must be letters, digits, '.', '_', '-' and '*', but was 'order created'", e.getMessage());
        assertThrows(ConfigurationException.class, () -> TopicPattern.of(""));
        assertThrows(ConfigurationException.class, () -> TopicPattern.of(null));
        assertThrows(ConfigurationException.class, () -> TopicPattern.of("order-(created)"));
    }

    @Test
    void topicNamesMayNotContainWildcardsOrOtherCharacters() {
        assertEquals("order-created_v2.eu", TopicPattern.requireTopicName("order-created_v2.eu"));
        ConfigurationException e = assertThrows(ConfigurationException.class, () -> TopicPattern.requireTopicName("order-*"));
        assertEquals("topic name must be letters, digits, '.', '_' and '-', but was 'order-*'", e.getMessage());
        assertThrows(ConfigurationException.class, () -> TopicPattern.requireTopicName(""));
        assertThrows(ConfigurationException.class, () -> TopicPattern.requireTopicName(null));
        assertThrows(ConfigurationException.class, () -> TopicPattern.requireTopicName("đơn-hàng"));
    }

    @Test
    void topicTextIsTheTopicCharactersAtLeastOneWithNoWildcardAndNoLengthRule() {
        assertTrue(TopicPattern.isTopicText("order-created_v2.eu"));
        assertTrue(TopicPattern.isTopicText("x".repeat(300)), "the length is requireTopicName's rule");
        assertFalse(TopicPattern.isTopicText("order-*"));
        assertFalse(TopicPattern.isTopicText("${env}"));
        assertFalse(TopicPattern.isTopicText("đơn-hàng"));
        assertFalse(TopicPattern.isTopicText(""));
        assertFalse(TopicPattern.isTopicText(null));
    }

    @Test
    void aTopicNameIsAtMost245CharactersSoThatItAndItsDeadLetterTopicAreNamesKafkaTakes() {
        // Kafka refuses a topic name over 249 characters: a longer one was taken here, then every publish to Kafka
        // failed, the JDBC outbox refused it (255) and a saga's remote step stayed stuck; a 246-249 one's dead letters
        // (name + ".DLT") could never be sent, so a failing record was delivered again and again
        String longest = "t".repeat(245);
        assertEquals(longest, TopicPattern.requireTopicName(longest));
        assertEquals(longest + ".DLT", TopicPattern.requireTopicName(longest + ".DLT"));
        ConfigurationException e = assertThrows(ConfigurationException.class, () -> TopicPattern.requireTopicName("t".repeat(246)));
        assertEquals("topic name must be at most 245 characters, so that its dead-letter topic (the name and .DLT) is at"
                + " most the 249 Kafka takes, but was '" + "t".repeat(64) + "...' (246 characters)", e.getMessage());
        assertThrows(ConfigurationException.class, () -> TopicPattern.requireTopicName("t".repeat(246) + ".DLT"));
        assertThrows(ConfigurationException.class, () -> TopicPattern.requireTopicName("t".repeat(250)));
    }

    @Test
    void aRefusedTopicNameOrPatternIsQuotedAsItsFirstCharactersAndItsLengthNotWhole() {
        // A topic comes from the caller, a route or a header: a 1 MB one went whole into the exception's message, and so
        // into logs and a dead letter's headers. As the JDBC stores' refusals, it is quoted whole up to 64 characters.
        String huge = "x".repeat(999_999) + " ";
        String quoted = "'" + "x".repeat(64) + "...' (1000000 characters)";
        assertEquals("topic name must be letters, digits, '.', '_' and '-', but was " + quoted,
                assertThrows(ConfigurationException.class, () -> TopicPattern.requireTopicName(huge)).getMessage());
        assertEquals("topic pattern must be letters, digits, '.', '_', '-' and '*', but was " + quoted,
                assertThrows(ConfigurationException.class, () -> TopicPattern.of(huge)).getMessage());
    }

    @Test
    void patternsAreValuesEqualByText() {
        assertEquals(TopicPattern.of("order-*"), TopicPattern.of("order-*"));
        assertEquals(TopicPattern.of("order-*").hashCode(), TopicPattern.of("order-*").hashCode());
        assertEquals("order-*", TopicPattern.of("order-*").toString());
    }
}
