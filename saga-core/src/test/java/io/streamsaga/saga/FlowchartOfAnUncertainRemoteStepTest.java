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
                .remoteStep("reserve-seat").command("seat-commands", (d, c) -> d).onReply(Reply.class, (d, r) -> d)
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
}
