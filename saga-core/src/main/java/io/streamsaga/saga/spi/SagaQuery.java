package io.streamsaga.saga.spi;

import io.streamsaga.ConfigurationException;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.spi.StoredKeys;

import java.time.Instant;
import java.util.Collections;
import java.util.EnumSet;
import java.util.Set;

/**
 * One page of an operator's query of a {@link SagaStore} ({@link SagaStore#findPage}): the sagas in any of
 * {@code statuses}, of {@code businessKey} when given, last updated before {@code updatedBefore} when given, after
 * the position {@code after}, in {@link RecoveryQuery#ORDER} (oldest first, then by id: both never change, so keyset
 * pages neither skip nor repeat a saga whose status changes between them), at most {@code limit} of them. Immutable.
 *
 * @param statuses      at least one, no null (a {@link ConfigurationException} otherwise); copied
 * @param businessKey   null for any; else only the sagas of this key, which must be one a store can hold
 *                      ({@link StoredKeys#requireStorable(String, int, String)}: a {@link ConfigurationException})
 * @param updatedBefore null for any; else only the sagas whose last update ({@link SagaInstance#updatedAt()}) is
 *                      strictly before it
 * @param after         null for the first page; else only the sagas after this position in {@link RecoveryQuery#ORDER}
 * @param limit         the most sagas the page holds, at least 1
 */
public record SagaQuery(Set<SagaStatus> statuses, String businessKey, Instant updatedBefore,
                        RecoveryQuery.Position after, int limit) {

    public SagaQuery {
        ConfigurationException.require(statuses != null && !statuses.isEmpty() && !holdsNull(statuses),
                "statuses must hold at least one status and no null, but was %s", statuses);
        statuses = Collections.unmodifiableSet(EnumSet.copyOf(statuses)); // in the enum's order: a stable SQL text
        StoredKeys.requireStorable(businessKey, StoredKeys.MAX_BUSINESS_KEY_LENGTH, "businessKey");
        ConfigurationException.require(limit >= 1, "limit must be at least 1, but was %s", limit);
    }

    /** The page after the one that ended with {@code last}, with the same criteria and limit. */
    public SagaQuery next(SagaInstance last) {
        return new SagaQuery(statuses, businessKey, updatedBefore, RecoveryQuery.Position.of(last), limit);
    }

    private static boolean holdsNull(Set<SagaStatus> statuses) {
        for (SagaStatus status : statuses) { // not contains(null): an immutable Set.of(...) throws for it
            if (status == null) {
                return true;
            }
        }
        return false;
    }

    /**
     * Whether {@code instance} is on this page or a later one: in one of the statuses, matching the criteria, after
     * {@link #after()}. What a store that filters in memory keeps.
     */
    public boolean matches(SagaInstance instance) {
        return statuses.contains(instance.status())
                && (businessKey == null || businessKey.equals(instance.businessKey()))
                && (updatedBefore == null || instance.updatedAt().isBefore(updatedBefore))
                && (after == null || after.isBefore(instance));
    }
}
