package io.streamsaga.cqrs;

import io.streamsaga.ConfigurationException;

/**
 * One validation failure of a command. Immutable.
 *
 * @param field   the offending field (or {@code "*"} for the command as a whole)
 * @param message what is wrong, quoting the bad value
 */
public record Violation(String field, String message) {
    public Violation {
        ConfigurationException.require(field != null && !field.isBlank(), "violation field must not be blank, but was '%s'", field);
        ConfigurationException.require(message != null && !message.isBlank(), "violation message must not be blank (field '%s')", field);
    }

    /** A violation of {@code field}. */
    public static Violation of(String field, String message) {
        return new Violation(field, message);
    }
}
