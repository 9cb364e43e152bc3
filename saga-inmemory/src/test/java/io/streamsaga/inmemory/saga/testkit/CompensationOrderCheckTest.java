package io.streamsaga.inmemory.saga.testkit;

import io.streamsaga.inmemory.saga.testkit.RecordingInterceptor.CompensationEvent;
import io.streamsaga.saga.SagaDefinition;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The crash explorer's reverse-order invariant judges when compensations start, not only when they succeed. */
class CompensationOrderCheckTest {
    record Data() {
    }

    private static final SagaDefinition<Data> SAGA = SagaDefinition.builder("trip", Data.class)
            .step("a").action((d, c) -> d).compensation((d, c) -> { })
            .parallel(g -> {
                g.step("b").action((d, c) -> d).compensation((d, c) -> { });
                g.step("c").action((d, c) -> d).compensation((d, c) -> { });
            })
            .step("d").action((d, c) -> d).compensation((d, c) -> { })
            .pivot("pay").action((d, c) -> d)
            .build();

    private static CompensationEvent start(String step) {
        return new CompensationEvent(step, true);
    }

    private static CompensationEvent success(String step) {
        return new CompensationEvent(step, false);
    }

    @Test
    void anEarlierCompensationStartedBeforeALaterGroupSettledIsAViolationEvenThoughItSucceededLast() {
        // Successes in reverse order (d, c, b, a), so a check of success order alone passes; but a started
        // while the group {b, c} was still being undone.
        List<CompensationEvent> wrong = List.of(start("d"), success("d"), start("b"), start("c"), start("a"),
                success("c"), success("b"), success("a"));

        assertEquals(List.of("compensation of a started before that of the later step b succeeded",
                        "compensation of a started before that of the later step c succeeded"),
                SagaCrashExplorer.compensationOrderViolations(SAGA, wrong));
    }

    @Test
    void aRetriedAttemptCountsAsAStartToo() {
        // d's first attempt fails, then c's compensation starts before d's retry succeeded
        List<CompensationEvent> wrong = List.of(start("d"), start("c"), start("d"), success("d"), success("c"),
                start("b"), success("b"), start("a"), success("a"));

        assertEquals(List.of("compensation of c started before that of the later step d succeeded"),
                SagaCrashExplorer.compensationOrderViolations(SAGA, wrong));
    }

    @Test
    void theMembersOfOneParallelGroupMayOverlapAndTheRightOrderPasses() {
        List<CompensationEvent> right = List.of(start("d"), start("d"), success("d"), start("c"), start("b"),
                success("b"), start("c"), success("c"), start("a"), success("a"));

        assertEquals(List.of(), SagaCrashExplorer.compensationOrderViolations(SAGA, right));
    }

    @Test
    void aLaterStepThatWasNeverCompensatedDoesNotHoldTheEarlierOnesBack() {
        // d never took effect (it failed), so its compensation never ran
        List<CompensationEvent> right = List.of(start("b"), start("c"), success("c"), success("b"), start("a"),
                success("a"));

        assertEquals(List.of(), SagaCrashExplorer.compensationOrderViolations(SAGA, right));
    }
}
