package io.streamsaga.cqrs;

import io.streamsaga.ConfigurationException;

import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The read side's entry point: one handler per query class. Thread-safe; handlers run on the caller's
 * thread, typically reading a {@link Projection}'s current read model.
 */
public final class QueryBus {
    private final Map<Class<?>, QueryHandler<?, ?>> handlers = new ConcurrentHashMap<>();

    /**
     * Registers the handler of {@code type}.
     *
     * @throws ConfigurationException when the type already has a handler
     */
    public <Q extends Query<R>, R> QueryBus register(Class<Q> type, QueryHandler<Q, R> handler) {
        Objects.requireNonNull(type, "type");
        Objects.requireNonNull(handler, "handler");
        QueryHandler<?, ?> previous = handlers.putIfAbsent(type, handler);
        ConfigurationException.require(previous == null, "query %s already has a handler (%s)", type.getName(), previous);
        return this;
    }

    /**
     * Answers {@code query}. What the handler throws goes to the caller unchanged: an exception, an
     * {@link AssertionError} or a {@link StackOverflowError} (which {@link CommandBus#send} returns as a
     * {@link CommandResult.Failed}, having a result to carry them) as any other {@link Error}; there is no answer to
     * return instead.
     *
     * @throws MissingHandlerException when no handler is registered for its class
     */
    @SuppressWarnings("unchecked")
    public <R> R ask(Query<R> query) {
        Objects.requireNonNull(query, "query");
        QueryHandler<Query<R>, R> handler = (QueryHandler<Query<R>, R>) handlers.get(query.getClass());
        if (handler == null) {
            throw new MissingHandlerException(query.getClass());
        }
        return handler.handle(query);
    }
}
