package io.streamsaga.codec;

import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * Turns the JSON tree of an event from version n into version n+1 (for example, adds {@code currency}
 * with default {@code "USD"}). Registered per type and source version; a chain of them lifts any old
 * event to the version a handler expects. Must be a pure function of its input; it may modify and
 * return the given node.
 */
@FunctionalInterface
public interface EventUpcaster {
    ObjectNode upcast(ObjectNode event);
}
