package io.streamsaga.jdbc;

import io.streamsaga.StreamSagaException;

/**
 * An optimistic-concurrency check failed: the row was changed (or removed) by another node since it was
 * read, so the version-checked update touched no row. Retriable: reload the row and apply the change again.
 */
public class StaleVersionException extends StreamSagaException {
    private static final long serialVersionUID = 1L;
    private final String table;
    private final String id;
    private final long expectedVersion;

    public StaleVersionException(String table, String id, long expectedVersion) {
        super("row '" + id + "' of " + table + " is no longer at version " + expectedVersion
                + ": another node changed or removed it", true);
        this.table = table;
        this.id = id;
        this.expectedVersion = expectedVersion;
    }

    public String table() {
        return table;
    }

    public String id() {
        return id;
    }

    public long expectedVersion() {
        return expectedVersion;
    }
}
