package io.streamsaga.cqrs;

import java.util.List;

/**
 * Handles one command type: validates, then executes (changing the write model and usually publishing
 * events, as the source's {@code CreateOrderHandler}). Implementations must be thread-safe when the
 * command bus is used from several threads.
 *
 * @param <C> the command type
 * @param <R> the result type
 */
public interface CommandHandler<C extends Command<R>, R> {

    /** Every problem with {@code command}; empty when it may execute. Must not change anything. */
    default List<Violation> validate(C command) {
        return List.of();
    }

    /** Executes a valid command. */
    R execute(C command) throws Exception;
}
