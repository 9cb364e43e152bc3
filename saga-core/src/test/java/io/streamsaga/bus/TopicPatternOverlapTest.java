package io.streamsaga.bus;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link TopicPattern#overlaps}, the check behind {@code EventBus.register}'s refusal of two {@code @EventPattern}
 * methods of one object whose topics overlap, and behind {@link TopicPattern#matchesSomeTopic}: two patterns overlap exactly when some topic name both match, by {@link TopicPattern#matches}, so a wildcard
 * never on a dead-letter topic ({@code .DLT}) or an internal one ({@code __}), and a topic name at most 249 long.
 * Each pair is checked both ways round.
 */
class TopicPatternOverlapTest {

    @ParameterizedTest(name = "{0} and {1}: {2} ({3})")
    @CsvSource(delimiter = '|', textBlock = """
            order-created      | order-created | true  | the same topic
            order-created      | order-*       | true  | order-created
            order-*            | *-created     | true  | order-created
            *                  | *             | true  | any topic
            a*                 | *b            | true  | ab
            _*                 | *             | true  | _a
            *.DLT*             | *             | true  | a.DLTa, which is no dead-letter topic
            *.D*               | *LT           | true  | a.DaLT
            *T                 | *.DL*         | true  | a.DLaT
            orders.DLT         | orders.DLT    | true  | the dead-letter topic, by its exact name twice
            order-created      | order-cancelled | false | two topics
            order-*            | payment-*     | false | no topic starts with both
            orders.DLT         | *             | false | a wildcard takes no dead-letter topic
            __consumer_offsets | *             | false | nor an internal topic
            *.DLT              | *             | false | every topic *.DLT spells is a dead-letter topic: it matches none
            *.DLT              | order-*       | false | the same
            *.DLT              | *.DLT         | false | the same, twice
            __*                | *             | false | every topic __* spells is internal
            __*                | __*           | false | the same, twice
            *_                 | __*           | false | the same
            """)
    void twoPatternsOverlapExactlyWhenSomeTopicMatchesBoth(String first, String second, boolean overlap, String why) {
        assertEquals(overlap, overlap(first, second), why);
        assertEquals(overlap, overlap(second, first), why + ", the other way round");
    }

    @ParameterizedTest(name = "{0} characters each")
    @CsvSource({"124, true", "125, false"})
    void wildcardsWhoseOnlyCommonTopicsAreLongerThanAnyTopicNameDoNotOverlap(int literal, boolean overlap) {
        // the shortest topic both match is the two literal parts end to end: 248 or 250 characters, against the 249 of
        // Kafka (a bus publishes to none over 245, but another producer may have made one there)
        String first = "a".repeat(literal) + "*";
        String second = "*" + "b".repeat(literal);
        assertEquals(overlap, overlap(first, second));
        assertEquals(overlap, overlap(second, first));
    }

    @Test
    void wildcardsSpellingMoreCharactersThanATopicNameHoldsMatchNoTopicWhateverTheirLength() {
        // the walk's states grow with the product of the two lengths: two such wildcards of 13,000 characters made
        // register fail on an array of overflowing size (or out of memory, a little longer) instead of answering
        String first = "a".repeat(13_000) + "*";
        String second = "*" + "a".repeat(13_000) + "*";
        assertFalse(overlap(first, second));
        assertFalse(overlap(second, first));
        assertFalse(overlap(first, "*"));
        assertTrue(overlap("a".repeat(249) + "*", "*"), "249 characters are a topic name");
    }

    @Test
    void anExactNameLongerThanTheTopicNamesKafkaTakesMatchesNoTopicAndOverlapsNothing() {
        // 249 characters are a topic name, a dead-letter topic's too; 250 are none: a route for such a name (which
        // EventRouter.onTopic asks matchesSomeTopic about) could never take a message, as a wildcard spelling 250
        String longest = "a".repeat(249);
        String longestDeadLetter = "a".repeat(245) + ".DLT";
        assertTrue(TopicPattern.of(longest).matchesSomeTopic());
        assertTrue(TopicPattern.of(longestDeadLetter).matchesSomeTopic());
        assertTrue(overlap(longest, "*"));
        assertTrue(overlap(longest, longest));
        assertTrue(overlap(longestDeadLetter, longestDeadLetter));

        for (String tooLong : new String[] {"a".repeat(250), "a".repeat(246) + ".DLT"}) {
            assertFalse(TopicPattern.of(tooLong).matchesSomeTopic(), tooLong.length() + " characters");
            assertFalse(overlap(tooLong, "*"), tooLong.length() + " characters");
            assertFalse(overlap("*", tooLong), tooLong.length() + " characters, the other way round");
            assertFalse(overlap(tooLong, tooLong), tooLong.length() + " characters, by its exact name twice");
        }
    }

    private static boolean overlap(String first, String second) {
        return TopicPattern.of(first).overlaps(TopicPattern.of(second));
    }
}
