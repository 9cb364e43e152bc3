package io.streamsaga.inmemory.saga.testkit;

import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.StepState;
import io.streamsaga.saga.StepStatus;
import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The crash explorer's invariant that a compensated saga left no step needing compensation undone, judged by the
 * steps' stored statuses: an uncertain step (timed out, its outcome lost) may never have taken effect as far as the
 * recorded invocations know, yet it must be compensated. The real engine does so, so the check is fed fabricated
 * final instances here.
 */
class UncompensatedStepCheckTest {
    record Data() {
    }

    private static final SagaDefinition<Data> SAGA = SagaDefinition.builder("trip", Data.class)
            .step("reserve").action((d, c) -> d).compensation((d, c) -> { })
            .step("notify").action((d, c) -> d)
            .step("hold").action((d, c) -> d).compensation((d, c) -> { })
            .pivot("pay").action((d, c) -> d)
            .build();

    private static SagaInstance compensated(StepStatus reserve, StepStatus notify, StepStatus hold) {
        Instant at = Instant.parse("2026-01-01T00:00:00Z");
        return new SagaInstance("s-1", "trip", 1, null, "data", new Data(), SagaStatus.COMPENSATED,
                List.of(state("reserve", reserve), state("notify", notify), state("hold", hold),
                        state("pay", StepStatus.FAILED)),
                null, null, at, at, 9);
    }

    private static StepState state(String name, StepStatus status) {
        return new StepState(name, status, 1, 0, null);
    }

    @Test
    void anUncertainStepLeftUncompensatedInACompensatedSagaIsAViolationNamingItsStatus() {
        SagaInstance uncertainLeft = compensated(StepStatus.COMPENSATED, StepStatus.SUCCEEDED, StepStatus.UNCERTAIN);

        assertEquals(List.of("step hold ended UNCERTAIN in a compensated saga: it needs compensation but was never"
                        + " compensated"),
                SagaCrashExplorer.compensatedSagaStepViolations(SAGA, uncertainLeft, List.of(), Set.of(), Set.of()));
    }

    @Test
    void everyStatusThatStillNeedsCompensationIsAViolation() {
        for (StepStatus left : List.of(StepStatus.SUCCEEDED, StepStatus.COMPENSATING,
                StepStatus.COMPENSATION_RETRY_SCHEDULED, StepStatus.COMPENSATION_FAILED)) {
            assertEquals(List.of("step reserve ended " + left + " in a compensated saga: it needs compensation but"
                            + " was never compensated"),
                    SagaCrashExplorer.compensatedSagaStepViolations(SAGA,
                            compensated(left, StepStatus.SUCCEEDED, StepStatus.COMPENSATED), List.of(), Set.of(),
                            Set.of()), left.name());
        }
    }

    @Test
    void stepsCompensatedSkippedFailedNotStartedOrWithoutACompensationPass() {
        // notify has no compensation, so its success stays; an uncertain step without one has nothing to undo either
        assertEquals(List.of(), SagaCrashExplorer.compensatedSagaStepViolations(SAGA,
                compensated(StepStatus.COMPENSATED, StepStatus.UNCERTAIN, StepStatus.FAILED), List.of(), Set.of(),
                Set.of()));
        assertEquals(List.of(), SagaCrashExplorer.compensatedSagaStepViolations(SAGA,
                compensated(StepStatus.COMPENSATION_SKIPPED, StepStatus.SUCCEEDED, StepStatus.PENDING), List.of(),
                Set.of(), Set.of()));
    }

    @Test
    void aStepThatTookEffectAndWasLeftSucceededInACompensatedSagaIsOneViolationNamingItsStoredStatus() {
        // reserve took effect, its compensation never ran, and the store says it is still SUCCEEDED: one fault, one line
        SagaInstance succeededLeft = compensated(StepStatus.SUCCEEDED, StepStatus.SUCCEEDED, StepStatus.COMPENSATED);

        assertEquals(List.of("step reserve took effect but was never compensated (it ended SUCCEEDED in a compensated"
                        + " saga)"),
                SagaCrashExplorer.compensatedSagaStepViolations(SAGA, succeededLeft, List.of("reserve", "notify", "hold"),
                        Set.of("hold"), Set.of()));
    }
}
