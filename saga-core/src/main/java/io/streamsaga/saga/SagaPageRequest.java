package io.streamsaga.saga;

import io.streamsaga.ConfigurationException;
import io.streamsaga.spi.StoredKeys;

import java.time.Instant;

/**
 * Which page of a paged query of {@link SagaOrchestrator} to read: at most {@code size} sagas, those after the saga
 * at {@code (afterCreatedAt, afterSagaId)} in the queries' order, oldest first ({@link SagaInstance#createdAt()}), then
 * by {@link SagaInstance#sagaId()}. Keyset paging: both keys never change, so a saga is never on two pages of a
 * query, and a saga that leaves the query's criteria between two pages (it finishes, say) shifts no later page. Read
 * the first page with {@link #first(int)} and the next ones with {@link SagaPage#next()}. Immutable and thread-safe.
 *
 * @param size           the most sagas a page holds: 1 to {@link #MAX_SIZE}, else a {@link ConfigurationException}
 * @param afterCreatedAt null for the first page; else the creation time of the saga the page starts after, which is
 *                       to the microsecond as every saga's is (a finer one is refused with a
 *                       {@link ConfigurationException}: a database rounds it, and would start the page elsewhere than
 *                       the in-memory store)
 * @param afterSagaId    null for the first page; else the id of that saga (both null or neither, else a
 *                       {@link ConfigurationException}; an id no store can hold is refused as by
 *                       {@link StoredKeys#requireStorable(String, int, String)})
 */
public record SagaPageRequest(int size, Instant afterCreatedAt, String afterSagaId) {
    /**
     * The largest page: a page is read and held whole (the sagas' data with them), so the paged queries bound what
     * one call reads.
     */
    public static final int MAX_SIZE = 1000;

    public SagaPageRequest {
        ConfigurationException.require(size >= 1 && size <= MAX_SIZE, "page size must be between 1 and %s, but was %s",
                MAX_SIZE, size);
        ConfigurationException.require((afterCreatedAt == null) == (afterSagaId == null),
                "afterCreatedAt and afterSagaId must be both given or both null, but were %s and %s", afterCreatedAt,
                afterSagaId);
        ConfigurationException.require(afterCreatedAt == null || afterCreatedAt.getNano() % 1000 == 0,
                "afterCreatedAt must be to the microsecond, as a saga's createdAt is, but was %s", afterCreatedAt);
        StoredKeys.requireStorable(afterSagaId, StoredKeys.MAX_SAGA_ID_LENGTH, "afterSagaId");
    }

    /** The first page, of at most {@code size} sagas. */
    public static SagaPageRequest first(int size) {
        return new SagaPageRequest(size, null, null);
    }

    /** The page of at most {@code size} sagas after {@code last} (the last saga of the page before). */
    public static SagaPageRequest after(SagaInstance last, int size) {
        return new SagaPageRequest(size, last.createdAt(), last.sagaId());
    }
}
