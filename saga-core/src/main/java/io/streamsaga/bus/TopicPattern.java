package io.streamsaga.bus;

import io.streamsaga.StreamSagaException;
import io.streamsaga.ConfigurationException;
import io.streamsaga.message.MessageHeaders;

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
    private static final Pattern LEGAL = Pattern.compile("[A-Za-z0-9._*-]+");
    /**
     * The longest topic name: Kafka refuses a name longer than 249 characters, and a topic's dead-letter topic is its
     * name and {@code .DLT}, which must be a name Kafka takes too (a dead-letter topic itself may be 249 long).
     */
    public static final int MAX_TOPIC_LENGTH = 249 - MessageHeaders.DEAD_LETTER_SUFFIX.length();

    private final String pattern;
    private final Pattern regex;

    private TopicPattern(String pattern) {
        if (pattern == null || !LEGAL.matcher(pattern).matches()) {
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
        if (!isLegalTopicName(topic)) { // a plain if: the quote is built only for a refusal (this runs on every publish)
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

    /** A loop rather than the regex: this runs on every publish. */
    private static boolean isLegalTopicName(String topic) {
        if (topic == null || topic.isEmpty()) {
            return false;
        }
        for (int i = 0, n = topic.length(); i < n; i++) {
            char c = topic.charAt(i);
            boolean legal = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                    || c == '.' || c == '_' || c == '-';
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
