package io.streamsaga.inmemory.saga.testkit;

import java.util.Map;

/**
 * The replies of remote participants the crash explorer loses for a run, by step: those to its commands
 * ({@code steps}) and to its compensation's ({@code compensations}), each as often as its {@link FailureMode} says.
 * The participant acted; its reply never reaches the orchestrator, whose timeout fails the attempt.
 */
record LostReplies(Map<String, FailureMode> steps, Map<String, FailureMode> compensations) {
    /** No reply lost. */
    static final LostReplies NONE = new LostReplies(Map.of(), Map.of());

    LostReplies {
        steps = Map.copyOf(steps);
        compensations = Map.copyOf(compensations);
    }
}
