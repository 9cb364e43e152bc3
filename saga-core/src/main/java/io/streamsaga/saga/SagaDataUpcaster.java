package io.streamsaga.saga;

import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * Migrates saga data stored under definition version {@code n} to version {@code n + 1}, on its JSON
 * tree. Registered on the orchestrator per saga name and source version; without one, an instance
 * finishes under the version it started with.
 */
@FunctionalInterface
public interface SagaDataUpcaster {
    /**
     * Changes the tree in place (add defaults, rename fields) or returns a new one. An upcaster that throws, or
     * returns null, migrates nothing: the saga stays in the store as it was, reported unresolvable by a recovery.
     */
    ObjectNode upcast(ObjectNode data);
}
