package io.streamsaga.cqrs;

import io.streamsaga.ConfigurationException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The write side's entry point: one handler per command class; {@link #send} validates, then executes, and
 * returns a typed {@link CommandResult} instead of throwing for invalid input or a failing handler.
 * Registration rejects a second handler for the same class. Thread-safe; handlers run on the caller's
 * thread.
 */
public final class CommandBus {
    private static final Logger log = LoggerFactory.getLogger(CommandBus.class);
    private final Map<Class<?>, CommandHandler<?, ?>> handlers = new ConcurrentHashMap<>();

    /**
     * Registers the handler of {@code type}.
     *
     * @throws ConfigurationException when the type already has a handler
     */
    public <C extends Command<R>, R> CommandBus register(Class<C> type, CommandHandler<C, R> handler) {
        Objects.requireNonNull(type, "type");
        Objects.requireNonNull(handler, "handler");
        CommandHandler<?, ?> previous = handlers.putIfAbsent(type, handler);
        ConfigurationException.require(previous == null, "command %s already has a handler (%s)", type.getName(), previous);
        return this;
    }

    /**
     * Validates and executes {@code command}. A validation that throws is returned as
     * {@link CommandResult.Failed} (the handler did not execute), as is an execution that throws: an exception, an
     * {@link AssertionError} or a {@link StackOverflowError}, the handler failures of the event bus. Any other
     * {@link Error} (out of memory, a {@link LinkageError}, an error standing for the process dying) is not the
     * command's fault and goes through to the caller, as the bus lets it through.
     *
     * @throws MissingHandlerException when no handler is registered for its class
     */
    @SuppressWarnings("unchecked")
    public <R> CommandResult<R> send(Command<R> command) {
        Objects.requireNonNull(command, "command");
        CommandHandler<Command<R>, R> handler = (CommandHandler<Command<R>, R>) handlers.get(command.getClass());
        if (handler == null) {
            throw new MissingHandlerException(command.getClass());
        }
        try {
            // Inside the try: a validation that throws is a failure (nothing executed), returned like one.
            List<Violation> violations = handler.validate(command);
            if (!violations.isEmpty()) {
                log.debug("rejected {}: {}", command, violations);
                return new CommandResult.Rejected<>(violations);
            }
            return new CommandResult.Accepted<>(handler.execute(command));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new CommandResult.Failed<>(e);
        } catch (Exception e) {
            log.warn("command {} failed: {}", command, e.toString());
            return new CommandResult.Failed<>(e);
        } catch (AssertionError | StackOverflowError e) {
            // A bug of the handler, as the event bus counts them; the JVM's own errors (out of memory, a class
            // missing) and an error standing for the process dying are not the command's: they go through to the
            // caller, who has no other answer, as the bus lets them through to the transport. (A strangler's shadow
            // call confines a LinkageError too: there the caller already has the legacy answer.)
            log.error("command {} failed", command, e);
            return new CommandResult.Failed<>(e);
        }
    }
}
