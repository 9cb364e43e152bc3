package io.streamsaga.jdbc.inbox;

import io.streamsaga.bus.DeliveryContext;

import java.sql.Connection;

/**
 * A consumer whose effect is a database change: it writes through {@code connection}, inside the
 * transaction that also records the message in the inbox. It must not commit, roll back or close it.
 *
 * @param <T> the event type
 */
@FunctionalInterface
public interface InboxHandler<T> {
    void handle(T event, DeliveryContext context, Connection connection) throws Exception;
}
