package io.streamsaga.internal.bus;

import io.streamsaga.ConfigurationException;
import io.streamsaga.StreamSagaException;
import io.streamsaga.bus.TopicPattern;

import java.util.function.Function;

/**
 * Replaces the {@code ${name}} placeholders of an {@code @EventPattern} value
 * ({@link io.streamsaga.bus.RegistrationOptions}). A value without {@code $}, braces is returned as it is; every
 * refusal is a {@link ConfigurationException} naming the method, the annotation's value and the placeholder.
 */
final class TopicPlaceholders {
    private TopicPlaceholders() {
    }

    /** Whether {@code value} holds a character that only a placeholder may hold ({@code $}, a brace). */
    static boolean holdsPlaceholder(String value) {
        return value.indexOf('$') >= 0 || value.indexOf('{') >= 0 || value.indexOf('}') >= 0;
    }

    /**
     * {@code value} with each placeholder replaced by what {@code values} gives for its name; {@code values} null means
     * none were given at registration, so any placeholder is refused. {@code method} names the method in refusals.
     */
    static String resolve(String value, Function<String, String> values, String method) {
        if (!holdsPlaceholder(value)) {
            return value;
        }
        StringBuilder resolved = new StringBuilder(value.length());
        int i = 0;
        while (i < value.length()) {
            char c = value.charAt(i);
            if (c != '$' && c != '{' && c != '}') {
                resolved.append(c);
                i++;
                continue;
            }
            int end = c == '$' && i + 1 < value.length() && value.charAt(i + 1) == '{' ? value.indexOf('}', i + 2) : -1;
            String name = end < 0 ? null : value.substring(i + 2, end);
            if (name == null || !TopicPattern.isTopicText(name)) {
                throw new ConfigurationException(where(value, method) + " holds a '" + c + "' at index " + i + " that"
                        + " starts no placeholder ${name} (a name of letters, digits, '.', '_' and '-', with no default"
                        + " value): '$' and braces are no topic characters");
            }
            String placeholder = "${" + name + "}";
            if (values == null) {
                throw new ConfigurationException(where(value, method) + " holds the placeholder " + placeholder + ", but no"
                        + " placeholder values were given, and '$' and braces are no topic characters: register the object"
                        + " with EventBus.register(group, handlers, RegistrationOptions.builder().placeholders(...).build())");
            }
            String given = values.apply(name);
            if (given == null || given.isBlank()) {
                throw new ConfigurationException(where(value, method) + " holds the placeholder " + placeholder + ", which"
                        + " has " + (given == null ? "no value" : "a blank value " + StreamSagaException.quote(given))
                        + " among the placeholder values given at registration");
            }
            if (!TopicPattern.isTopicText(given)) {
                throw new ConfigurationException(where(value, method) + " holds the placeholder " + placeholder + ", whose"
                        + " value must be letters, digits, '.', '_' and '-' (a wildcard '*' is written in the annotation,"
                        + " not in a value), but was " + StreamSagaException.quote(given));
            }
            resolved.append(given);
            i = end + 1;
        }
        return resolved.toString();
    }

    /** How a refusal names the annotation and its method. */
    static String where(String value, String method) {
        return "@EventPattern(" + StreamSagaException.quote(value) + ") of method " + method;
    }
}
