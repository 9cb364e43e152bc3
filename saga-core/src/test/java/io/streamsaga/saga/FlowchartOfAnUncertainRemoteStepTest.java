package io.streamsaga.saga;

import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * docs/sagas.md: "A remote step whose reply handler throws, or that timed out, may have taken effect at the
 * participant, so it is UNCERTAIN and is compensated". The flowchart must draw its failure into its own
 * compensation, not past it. So must that of a lone asynchronous step with a timeout: an attempt that timed out was
 * not interrupted and may have taken effect, so the step is compensated (TimedOutAttemptThenFailureTest).
 */
class FlowchartOfAnUncertainRemoteStepTest {
    record Data(String id) {
    }

    record Reply(boolean ok) {
    }

    @Test
    void aFailingRemoteStepWithACompensationEntersTheChainAtItsOwnUndo() {
        String mermaid = SagaDefinition.builder("seat-saga", Data.class)
                .step("create-booking").action((d, c) -> d).compensation((d, c) -> { })
                .step("reserve-seat").command("seat-commands", (d, c) -> d).onReply(Reply.class, (d, r) -> d)
                    .compensation((d, c) -> { })
                .pivot("charge").action((d, c) -> d)
                .build().toMermaid();

        assertTrue(mermaid.contains("s1 -. fails .-> c1"), mermaid);
        assertTrue(mermaid.contains("s0 -. fails .-> compensated"), mermaid);
        assertTrue(mermaid.contains("s2 -. fails .-> c1"), mermaid);
    }

    @Test
    void aFailingAsynchronousStepWithATimeoutAndACompensationEntersTheChainAtItsOwnUndo() {
        String mermaid = SagaDefinition.builder("seat-saga", Data.class)
                .step("create-booking").action((d, c) -> d).compensation((d, c) -> { })
                .step("reserve-seat").asyncAction((d, c) -> CompletableFuture.completedFuture(d))
                    .compensation((d, c) -> { }).timeout(Duration.ofSeconds(10))
                .step("notify").asyncAction((d, c) -> CompletableFuture.completedFuture(d))
                    .compensation((d, c) -> { }) // no timeout: an attempt that fails took no effect
                .pivot("charge").action((d, c) -> d)
                .build().toMermaid();

        assertTrue(mermaid.contains("s1 -. fails .-> c1"), mermaid);
        assertTrue(mermaid.contains("s2 -. fails .-> c1"), mermaid);
        assertTrue(mermaid.contains("s3 -. fails .-> c2"), mermaid);
    }

    /**
     * A member whose group's merge throws (its action took effect, its result unusable) fails for good as uncertain and
     * is compensated (UnusableResultAfterRecoveryTest), also without a timeout or a sibling with a compensation: its
     * failure enters the chain at its own group's undo. A group that keeps the default merge (the member's result
     * replaces the data, which cannot throw) has no such path.
     */
    @Test
    void aMemberOfAGroupWithItsOwnMergeEntersTheChainAtItsOwnUndo() {
        String mermaid = SagaDefinition.builder("trip-saga", Data.class)
                .step("create-trip").action((d, c) -> d).compensation((d, c) -> { })
                .parallel(p -> {
                    p.step("book-hotel").action((d, c) -> d).compensation((d, c) -> { });
                    p.step("log-request").action((d, c) -> d); // no compensation
                    p.merge((current, result) -> {
                        throw new IllegalStateException("conflicting results");
                    });
                })
                .parallel(p -> {
                    p.step("book-car").action((d, c) -> d).compensation((d, c) -> { });
                    p.step("log-car").action((d, c) -> d);
                })
                .pivot("charge").action((d, c) -> d)
                .build().toMermaid();

        assertTrue(mermaid.contains("s1 -. fails .-> c1"), mermaid);
        assertTrue(mermaid.contains("s2 -. fails .-> c1"), "no compensation of its own, but in a group that has: " + mermaid);
        assertTrue(mermaid.contains("s3 -. fails .-> c1"), "the default merge cannot throw: " + mermaid);
    }
}
