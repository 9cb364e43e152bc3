package io.streamsaga.saga.internal;

import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.StepState;
import io.streamsaga.saga.StepStatus;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;

class StepStatesTest {
    record Data(int n) {
    }

    private static SagaDefinition<Data> definition() {
        return SagaDefinition.builder("four", Data.class)
                .step("a").action((d, ctx) -> d).compensation((d, ctx) -> { })
                .step("b").action((d, ctx) -> d) // no compensation: skipped when compensating
                .step("c").action((d, ctx) -> d).compensation((d, ctx) -> { })
                .step("d").action((d, ctx) -> d).compensation((d, ctx) -> { })
                .build();
    }

    /** Walks the common path to a first-attempt failure of step 3 and back, as the engine does. */
    private static List<List<StepState>> walk(StepStates shared) {
        List<StepState> steps = shared.pending;
        List<List<StepState>> seen = new java.util.ArrayList<>();
        for (int i = 0; i < 3; i++) {
            steps = shared.replaced(steps, i, shared.nextAttemptRunning(i, steps.get(i)));
            seen.add(steps);
            steps = shared.replaced(steps, i, shared.succeeded(i, steps.get(i)));
            seen.add(steps);
        }
        steps = shared.replaced(steps, 3, shared.nextAttemptRunning(3, steps.get(3)));
        steps = shared.replaced(steps, 3, shared.failed(3, steps.get(3)));
        seen.add(steps);
        for (int j : new int[]{2, 0}) {
            steps = shared.replaced(steps, j, shared.nextCompensationAttempt(j, steps.get(j)));
            seen.add(steps);
            steps = shared.replaced(steps, j, shared.compensated(j, steps.get(j)));
            seen.add(steps);
        }
        return seen;
    }

    @Test
    void theCommonPathsListsAreSharedByEveryRunAndEqualToCopies() {
        StepStates shared = new StepStates(definition());
        List<List<StepState>> first = walk(shared);
        List<List<StepState>> second = walk(shared);
        for (int i = 0; i < first.size(); i++) {
            assertSame(first.get(i), second.get(i), "list " + i + " is shared");
        }
        assertEquals(List.of(StepStatus.COMPENSATED, StepStatus.SUCCEEDED, StepStatus.COMPENSATED, StepStatus.FAILED),
                first.get(first.size() - 1).stream().map(StepState::status).toList());
        assertEquals(List.of(StepStatus.SUCCEEDED, StepStatus.SUCCEEDED, StepStatus.COMPENSATING, StepStatus.FAILED),
                first.get(first.size() - 4).stream().map(StepState::status).toList());
    }

    @Test
    void aStateOffTheCommonPathIsCopiedNotShared() {
        StepStates shared = new StepStates(definition());
        List<StepState> steps = shared.replaced(shared.pending, 0, shared.nextAttemptRunning(0, shared.pending.get(0)));
        StepState secondAttempt = steps.get(0).nextAttempt(StepStatus.RUNNING, null);
        List<StepState> copied = shared.replaced(steps, 0, secondAttempt);
        assertNotSame(copied, shared.replaced(steps, 0, secondAttempt));
        assertEquals(2, copied.get(0).attempts());
        assertEquals(StepStatus.PENDING, copied.get(1).status());
    }
}
