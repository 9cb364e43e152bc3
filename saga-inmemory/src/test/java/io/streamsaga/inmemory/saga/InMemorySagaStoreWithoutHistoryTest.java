package io.streamsaga.inmemory.saga;

import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.StepState;
import io.streamsaga.saga.TransitionType;
import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The fast-path store (no history, no finished instances) still checks every write's version. */
class InMemorySagaStoreWithoutHistoryTest {
    private static final Instant T0 = Instant.parse("2026-01-01T00:00:00Z");

    private static SagaInstance instance(SagaStatus status, long version) {
        return new SagaInstance("s-1", "order-saga", 1, null, "order-saga-data", "data", status,
                List.of(StepState.pending("create-order")), null, null, T0, T0.plusSeconds(version), version);
    }

    @Test
    void storeWithoutHistoryChecksVersionsKeepsNoTransitionsAndDropsFinishedInstances() {
        InMemorySagaStore store = new InMemorySagaStore(false, false);
        SagaInstance v1 = instance(SagaStatus.RUNNING, 1);
        store.insert(v1, new SagaTransition("s-1", 1, T0, TransitionType.SAGA_STARTED, null, 0, null));
        store.update(instance(SagaStatus.RUNNING, 2), TransitionType.STEP_STARTED, "create-order", 1, null);

        assertEquals(2, store.find("s-1").orElseThrow().version());
        assertTrue(store.history("s-1").isEmpty());
        assertThrows(io.streamsaga.saga.ConcurrentSagaUpdateException.class,
                () -> store.update(instance(SagaStatus.RUNNING, 2), TransitionType.STEP_SUCCEEDED, "create-order", 1, null));

        store.update(instance(SagaStatus.COMPLETED, 3), TransitionType.SAGA_COMPLETED, null, 0, null);
        assertTrue(store.find("s-1").isEmpty());
        assertEquals(0, store.size());
    }
}
