package io.streamsaga.bus;

import io.streamsaga.StreamSagaException;
import io.streamsaga.ConfigurationException;
import io.streamsaga.message.MessageHeaders;

import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.regex.Pattern;

/**
 * An exact topic name or a wildcard pattern, with the same matching rules on every transport.
 *
 * <p>{@code *} matches any run of characters (also none), so {@code order-*} matches
 * {@code order-created} and {@code *} matches every topic. Topic names may contain letters, digits,
 * {@code .}, {@code _} and {@code -}, at most {@link #MAX_TOPIC_LENGTH} (245) of them, so that a topic and its
 * dead-letter topic are names Kafka takes (a dead-letter topic, ending in {@code .DLT}, may be 249 long; an event bus
 * subscribes to none over 245, whose own dead letters it could not send). A wildcard never matches a dead-letter topic (suffix
 * {@code .DLT}) or an internal topic (prefix {@code __}): a catch-all handler that fails must not
 * consume its own dead letters. Subscribe to those by exact name. A refused name or pattern is quoted in the
 * {@link ConfigurationException} whole up to 64 characters, else as its first 64 and its length (a topic may come
 * from a header or a route: the message goes into logs and a dead letter's headers). Immutable and thread-safe.
 */
public final class TopicPattern {
    /**
     * The longest topic name: Kafka refuses a name longer than 249 characters, and a topic's dead-letter topic is its
     * name and {@code .DLT}, which must be a name Kafka takes too (a dead-letter topic itself may be 249 long).
     */
    public static final int MAX_TOPIC_LENGTH = 249 - MessageHeaders.DEAD_LETTER_SUFFIX.length();

    /** Every topic but the dead-letter and internal ones. */
    private static final TopicPattern ANY = new TopicPattern("*");

    private final String pattern;
    private final Pattern regex;

    private TopicPattern(String pattern) {
        if (!isTopicText(pattern, true)) {
            throw new ConfigurationException("topic pattern must be letters, digits, '.', '_', '-' and '*', but was "
                    + StreamSagaException.quote(pattern));
        }
        this.pattern = pattern;
        this.regex = isWildcard() ? Pattern.compile(toRegex(pattern)) : null;
    }

    /** Parses an exact topic name or a wildcard pattern. */
    public static TopicPattern of(String pattern) {
        return new TopicPattern(pattern);
    }

    /** Validates a concrete topic name (no wildcard). */
    public static String requireTopicName(String topic) {
        if (!isTopicText(topic)) { // a plain if: the quote is built only for a refusal (this runs on every publish)
            throw new ConfigurationException("topic name must be letters, digits, '.', '_' and '-', but was "
                    + StreamSagaException.quote(topic));
        }
        if (topic.length() > MAX_TOPIC_LENGTH && !(topic.length() <= MAX_TOPIC_LENGTH + MessageHeaders.DEAD_LETTER_SUFFIX.length()
                && topic.endsWith(MessageHeaders.DEAD_LETTER_SUFFIX))) {
            throw new ConfigurationException("topic name must be at most " + MAX_TOPIC_LENGTH + " characters, so that its"
                    + " dead-letter topic (the name and " + MessageHeaders.DEAD_LETTER_SUFFIX + ") is at most the 249 Kafka takes,"
                    + " but was " + StreamSagaException.quote(topic));
        }
        return topic;
    }

    /**
     * Whether {@code text} is made of the characters a topic name may hold, at least one: letters, digits, {@code .},
     * {@code _} and {@code -} (no wildcard). The one statement of those characters, for a topic name's part that is
     * no topic itself (an {@code @EventPattern} placeholder's name and value); the length rule is
     * {@link #requireTopicName}'s.
     */
    public static boolean isTopicText(String text) {
        return isTopicText(text, false);
    }

    /** {@link #isTopicText(String)}, {@code *} taken too when {@code wildcard}. A loop, not a regex: this runs on every publish. */
    private static boolean isTopicText(String text, boolean wildcard) {
        if (text == null || text.isEmpty()) {
            return false;
        }
        for (int i = 0, n = text.length(); i < n; i++) {
            char c = text.charAt(i);
            boolean legal = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                    || c == '.' || c == '_' || c == '-' || (wildcard && c == '*');
            if (!legal) {
                return false;
            }
        }
        return true;
    }

    /** The pattern as written. */
    public String pattern() {
        return pattern;
    }

    /** Whether the pattern contains {@code *}. */
    public boolean isWildcard() {
        return pattern.indexOf('*') >= 0;
    }

    /** Whether {@code topic} is matched by this pattern. */
    public boolean matches(String topic) {
        if (!isWildcard()) {
            return pattern.equals(topic);
        }
        if (topic.endsWith(MessageHeaders.DEAD_LETTER_SUFFIX) || topic.startsWith("__")) {
            return false;
        }
        return regex.matcher(topic).matches();
    }

    /**
     * Whether some topic name is matched by both this pattern and {@code other}, as {@link #matches} matches: an
     * exact name by itself only, a wildcard by its regular expression but never a dead-letter topic ({@code .DLT}) or
     * an internal one ({@code __}), so {@code *.DLT} and {@code __*} match no topic at all. A topic name is at most
     * 249 characters, the most Kafka takes: a bus publishes to none over {@link #MAX_TOPIC_LENGTH}, but a wildcard on
     * Kafka may match one another producer made; an exact name over 249 names no topic and overlaps nothing, itself
     * neither. Two handlers of one consumer group whose patterns overlap would each get only some of the messages of
     * the topics they share.
     */
    public boolean overlaps(TopicPattern other) {
        if (!isWildcard()) {
            return pattern.length() <= LONGEST_TOPIC && other.matches(pattern);
        }
        if (!other.isWildcard()) {
            return other.pattern.length() <= LONGEST_TOPIC && matches(other.pattern);
        }
        String one = collapseStars(pattern);
        String two = collapseStars(other.pattern);
        if (spelled(one) > LONGEST_TOPIC || spelled(two) > LONGEST_TOPIC) {
            // matches no topic name; and the walk's states, the product of the two lengths, are thus bounded
            return false;
        }
        return WildcardIntersection.shortestCommonTopic(one, two) <= LONGEST_TOPIC;
    }

    /**
     * Whether some topic name is matched by this pattern: for an exact name, when it is at most 249 characters, the
     * most Kafka takes (a dead-letter topic's name included); for a wildcard, not when every topic it spells is a
     * dead-letter topic ({@code *.DLT}), an internal one ({@code __*}) or longer than 249 characters, which no wildcard
     * matches. A subscription or a route for such a pattern would never get a message.
     */
    public boolean matchesSomeTopic() {
        return isWildcard() ? overlaps(ANY) : pattern.length() <= LONGEST_TOPIC;
    }

    /**
     * This pattern, or a {@link ConfigurationException} when it {@linkplain #matchesSomeTopic matches no topic},
     * starting with {@code refusal} (who refuses it, as {@code "group 'ops' cannot subscribe to"}) and quoting the
     * pattern: for a wildcard, saying to name such a topic exactly; for an exact name, that it is longer than any.
     */
    public TopicPattern requireMatchesSomeTopic(String refusal) {
        if (!isWildcard() && !matchesSomeTopic()) {
            throw new ConfigurationException(refusal + " " + StreamSagaException.quote(pattern) + ", a name longer than"
                    + " the 249 characters of the longest topic name Kafka takes, so no topic's");
        }
        if (!matchesSomeTopic()) {
            throw new ConfigurationException(refusal + " " + StreamSagaException.quote(pattern) + ", a wildcard that"
                    + " matches no topic: a wildcard never matches a dead-letter topic (ending "
                    + MessageHeaders.DEAD_LETTER_SUFFIX + ") or an internal one (starting __), and a topic name is at most"
                    + " 249 characters; name such a topic by its exact name");
        }
        return this;
    }

    /** How many characters every topic {@code wildcard} matches holds at least: those that are no '*'. */
    private static int spelled(String wildcard) {
        return wildcard.length() - (int) wildcard.chars().filter(c -> c == '*').count();
    }

    /** The longest topic name Kafka takes, a dead-letter topic's. */
    private static final int LONGEST_TOPIC = MAX_TOPIC_LENGTH + MessageHeaders.DEAD_LETTER_SUFFIX.length();

    /** {@code pattern} with each run of '*' as one: the same topics, fewer states to walk. */
    private static String collapseStars(String pattern) {
        return pattern.replaceAll("\\*+", "*");
    }

    /**
     * The length of the shortest topic two wildcards both match, or {@link Integer#MAX_VALUE} when none does within
     * {@link #LONGEST_TOPIC} characters. A walk of both patterns at once: a state is a position in each, and how the
     * topic spelled so far stands against the exclusions (does it start with '_' or "__"; how much of a closing
     * ".DLT" does it end with). A '*' may match nothing (skip it, costing no character) or one more character, which
     * the other pattern must match too; two '*' together take a letter, which starts no exclusion and ends any. The
     * states are walked cheapest first (a 0-1 breadth-first search), so the first one accepting, both patterns read,
     * a topic spelled that is neither internal nor a dead-letter topic, gives the shortest such topic.
     */
    private static final class WildcardIntersection {
        private static final String DLT = MessageHeaders.DEAD_LETTER_SUFFIX;
        /** Start: nothing spelled yet; one '_' spelled; started otherwise (a topic starting "__" is never kept). */
        private static final int NOTHING = 0;
        private static final int ONE_UNDERSCORE = 1;
        private static final int STARTED = 2;

        static int shortestCommonTopic(String first, String second) {
            int n = first.length();
            int m = second.length();
            int suffixes = DLT.length() + 1;
            int states = (n + 1) * (m + 1) * 3 * suffixes;
            int[] cost = new int[states];
            Arrays.fill(cost, Integer.MAX_VALUE);
            ArrayDeque<Integer> todo = new ArrayDeque<>();
            cost[0] = 0;
            todo.add(0);
            while (!todo.isEmpty()) {
                int state = todo.poll();
                int suffix = state % suffixes;
                int start = state / suffixes % 3;
                int j = state / suffixes / 3 % (m + 1);
                int i = state / suffixes / 3 / (m + 1);
                int spent = cost[state];
                if (i == n && j == m && start != NOTHING && suffix != DLT.length()) {
                    return spent; // the cheapest state is taken first: the shortest topic
                }
                boolean starA = i < n && first.charAt(i) == '*';
                boolean starB = j < m && second.charAt(j) == '*';
                if (starA) {
                    relax(cost, todo, spent, index(i + 1, j, start, suffix, m), false);
                }
                if (starB) {
                    relax(cost, todo, spent, index(i, j + 1, start, suffix, m), false);
                }
                if (i == n || j == m || spent == LONGEST_TOPIC) {
                    continue;
                }
                char c;
                int nextI = i;
                int nextJ = j;
                if (starA && starB) {
                    c = 'a';
                } else if (starA) {
                    c = second.charAt(j);
                    nextJ++;
                } else if (starB) {
                    c = first.charAt(i);
                    nextI++;
                } else if (first.charAt(i) == second.charAt(j)) {
                    c = first.charAt(i);
                    nextI++;
                    nextJ++;
                } else {
                    continue;
                }
                int nextStart = start == STARTED ? STARTED : c != '_' ? STARTED : start == NOTHING ? ONE_UNDERSCORE : -1;
                if (nextStart >= 0) { // not a topic starting "__"
                    relax(cost, todo, spent + 1, index(nextI, nextJ, nextStart, nextSuffix(suffix, c), m), true);
                }
            }
            return Integer.MAX_VALUE;
        }

        /** How much of ".DLT" the topic ends with after {@code c}, from {@code suffix} before it (".DLT" has no border). */
        private static int nextSuffix(int suffix, char c) {
            if (suffix < DLT.length() && c == DLT.charAt(suffix)) {
                return suffix + 1;
            }
            return c == DLT.charAt(0) ? 1 : 0;
        }

        private static int index(int i, int j, int start, int suffix, int m) {
            return ((i * (m + 1) + j) * 3 + start) * (DLT.length() + 1) + suffix;
        }

        private static void relax(int[] cost, ArrayDeque<Integer> todo, int reached, int state, boolean spends) {
            if (reached < cost[state]) {
                cost[state] = reached;
                if (spends) {
                    todo.addLast(state);
                } else {
                    todo.addFirst(state);
                }
            }
        }
    }

    /**
     * The equivalent Java/Kafka regular expression for a wildcard (without the dead-letter and internal
     * topic exclusions, which callers apply with {@link #matches}).
     */
    public String toRegex() {
        return toRegex(pattern);
    }

    private static String toRegex(String pattern) {
        StringBuilder regex = new StringBuilder();
        for (char c : pattern.toCharArray()) {
            if (c == '*') {
                regex.append(".*");
            } else if (c == '.') {
                regex.append("\\.");
            } else {
                regex.append(c);
            }
        }
        return regex.toString();
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof TopicPattern that && pattern.equals(that.pattern);
    }

    @Override
    public int hashCode() {
        return pattern.hashCode();
    }

    @Override
    public String toString() {
        return pattern;
    }
}
