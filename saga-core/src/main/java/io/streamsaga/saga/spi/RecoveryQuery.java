package io.streamsaga.saga.spi;

import io.streamsaga.ConfigurationException;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.spi.StoredKeys;

import java.time.Instant;
import java.util.Comparator;
import java.util.Objects;
import java.util.Set;

/**
 * One page of what a recovery asks a {@link SagaStore} for ({@link SagaStore#findRecoveryCandidates}): the running
 * or compensating sagas it may resume, in {@link #ORDER} (oldest first, then by id), after the page before. The
 * criteria leave out in the store the sagas the recovery would leave alone anyway, so that it never reads those
 * (nor their data): the ones updated within its {@code idleFor}, and with saga ownership those of the other live
 * nodes. A recovery reads page after page, so that it holds at most one page of sagas at a time. Immutable.
 *
 * @param updatedAtOrBefore null for any; else only the sagas whose last update ({@link SagaInstance#updatedAt()})
 *                          is at or before it
 * @param excludedOwners    the sagas whose {@link SagaInstance#owner()} is one of these are left out (the other
 *                          live nodes'); a saga without owner never is. Copied; no null element, none holding
 *                          U+0000 or a lone surrogate, which no store holds ({@link StoredKeys}: a
 *                          {@link ConfigurationException})
 * @param after             null for the first page; else only the sagas after this position in {@link #ORDER}
 * @param limit             the most sagas a page holds, at least 1
 */
public record RecoveryQuery(Instant updatedAtOrBefore, Set<String> excludedOwners, Position after, int limit) {
    /** The order of the pages: {@link SagaInstance#createdAt()}, then {@link SagaInstance#sagaId()}. */
    public static final Comparator<SagaInstance> ORDER =
            Comparator.comparing(SagaInstance::createdAt).thenComparing(SagaInstance::sagaId);

    public RecoveryQuery {
        Objects.requireNonNull(excludedOwners, "excludedOwners");
        excludedOwners = Set.copyOf(excludedOwners);
        for (String owner : excludedOwners) {
            StoredKeys.requireStorable(owner, "excluded owner"); // a store passes it to its query (to SQL)
        }
        ConfigurationException.require(limit >= 1, "limit must be at least 1, but was %s", limit);
    }

    /** The first page of the sagas matching these criteria. */
    public static RecoveryQuery firstPage(Instant updatedAtOrBefore, Set<String> excludedOwners, int limit) {
        return new RecoveryQuery(updatedAtOrBefore, excludedOwners, null, limit);
    }

    /**
     * The page after the one that ended with {@code last}, with the same criteria but {@code excludedOwners} (the
     * live nodes, read again meanwhile).
     */
    public RecoveryQuery next(SagaInstance last, Set<String> excludedOwners) {
        return new RecoveryQuery(updatedAtOrBefore, excludedOwners, Position.of(last), limit);
    }

    /**
     * Whether {@code instance} is on this page or a later one: running or compensating, matching the criteria, and
     * after {@link #after()}. What a store that filters in memory keeps.
     */
    public boolean matches(SagaInstance instance) {
        return instance.status().isActive()
                && (updatedAtOrBefore == null || !instance.updatedAt().isAfter(updatedAtOrBefore))
                && (instance.owner() == null || !excludedOwners.contains(instance.owner()))
                && (after == null || after.isBefore(instance));
    }

    /**
     * A saga's place in {@link #ORDER}: its creation time and id, which never change, so that the pages neither
     * skip nor repeat a saga whose other fields change while a recovery reads them.
     *
     * @param createdAt the saga's {@link SagaInstance#createdAt()}, as the store returned it
     * @param sagaId    the saga's id; one holding U+0000 or a lone surrogate, which no store holds, is refused
     *                  ({@link StoredKeys}: a {@link ConfigurationException})
     */
    public record Position(Instant createdAt, String sagaId) {
        public Position {
            Objects.requireNonNull(createdAt, "createdAt");
            Objects.requireNonNull(sagaId, "sagaId");
            StoredKeys.requireStorable(sagaId, "saga id"); // a store passes it to its query (to SQL)
        }

        /** The position of {@code instance}. */
        public static Position of(SagaInstance instance) {
            return new Position(instance.createdAt(), instance.sagaId());
        }

        /** Whether {@code instance} comes after this position in {@link #ORDER}. */
        public boolean isBefore(SagaInstance instance) {
            int byTime = createdAt.compareTo(instance.createdAt());
            return byTime < 0 || byTime == 0 && sagaId.compareTo(instance.sagaId()) < 0;
        }
    }
}
