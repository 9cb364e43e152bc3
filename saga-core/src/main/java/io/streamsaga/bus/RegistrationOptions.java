package io.streamsaga.bus;

import io.streamsaga.ConfigurationException;

import java.util.function.Function;
import java.util.function.UnaryOperator;

/**
 * How {@link EventBus#register(String, Object, RegistrationOptions)} subscribes the {@link EventPattern} methods of an
 * object: the values of the placeholders in their patterns, and a decorator put around each method's handler.
 * {@link #defaults()} has neither: a pattern is taken as written, and one holding a placeholder is refused.
 *
 * <p>A placeholder is {@code ${name}} in an {@link EventPattern#value()} ({@code @EventPattern("${env}.orders")}), its
 * name made of letters, digits, {@code .}, {@code _} and {@code -}; {@code $} and braces are no topic characters, so no
 * pattern that was valid changes meaning. Each is replaced, at registration, by what {@link #placeholders()} gives for
 * its name, which must be a non-blank run of topic characters (letters, digits, {@code .}, {@code _}, {@code -}): a
 * {@code *} in a value is refused, so that whether a method takes one topic or a wildcard is read in its annotation,
 * never decided by the environment. Every check of {@code register} then applies to the resolved pattern.
 *
 * <p>The decorator gets each method's handler (which calls the method and waits for the stage it returns) and returns
 * the handler the bus subscribes: {@code around(idempotentConsumer::wrap)} makes every method of the object run once
 * per message key ({@link io.streamsaga.idempotency.IdempotentConsumer}). Immutable; thread-safe as far as the function
 * and decorator given are (register calls them on the thread calling it, before anything is subscribed).
 *
 * @param placeholders the value of each placeholder by its name (null or blank: none), or null for no placeholders
 * @param decorator    what wraps each method's handler (a null result is refused), or null to subscribe it as it is
 */
public record RegistrationOptions(Function<String, String> placeholders, UnaryOperator<EventHandler<Object>> decorator) {

    private static final RegistrationOptions DEFAULTS = new RegistrationOptions(null, null);

    /** No placeholder values (a pattern holding a placeholder is refused) and no decorator. */
    public static RegistrationOptions defaults() {
        return DEFAULTS;
    }

    /** Starts options with neither placeholder values nor a decorator. */
    public static Builder builder() {
        return new Builder();
    }

    /** Builds {@link RegistrationOptions}; not thread-safe. Each option is given once at most. */
    public static final class Builder {
        private Function<String, String> placeholders;
        private UnaryOperator<EventHandler<Object>> decorator;

        private Builder() {
        }

        /**
         * The value of each placeholder by its name, null or blank when it has none (refused at registration, naming
         * the method, its pattern and the placeholder): {@code Map.of("env", "prod")::get}, {@code System::getenv},
         * {@code properties::getProperty}. What it throws propagates from {@code register}, before anything is
         * subscribed.
         *
         * @throws ConfigurationException when given a second time
         */
        public Builder placeholders(Function<String, String> values) {
            ConfigurationException.require(values != null, "placeholder values must not be null");
            ConfigurationException.require(placeholders == null, "placeholders(...) was given already: give one function"
                    + " that knows every placeholder's value");
            this.placeholders = values;
            return this;
        }

        /**
         * What wraps each {@link EventPattern} method's handler, such as {@code idempotentConsumer::wrap}; called once
         * per method at registration, after every check passed and before anything is subscribed. A decorator that
         * returns null is refused with a {@link ConfigurationException} naming the method. Given once: where several
         * wrap a handler, which runs outside which is the application's to say in one function.
         *
         * @throws ConfigurationException when given a second time
         */
        public Builder around(UnaryOperator<EventHandler<Object>> decorator) {
            ConfigurationException.require(decorator != null, "handler decorator must not be null");
            ConfigurationException.require(this.decorator == null, "around(...) was given already: compose the decorators"
                    + " in one function, so that which wraps which is written down");
            this.decorator = decorator;
            return this;
        }

        /** The options given so far; the builder may go on to build others. */
        public RegistrationOptions build() {
            return new RegistrationOptions(placeholders, decorator);
        }
    }
}
