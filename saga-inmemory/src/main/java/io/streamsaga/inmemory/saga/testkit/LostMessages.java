package io.streamsaga.inmemory.saga.testkit;

import java.util.Map;

/**
 * The messages between the orchestrator and remote participants the crash explorer loses for a run, by step, each as
 * often as its {@link FailureMode} says: the step's commands ({@code commands}: the participant never acts), the
 * replies to them ({@code replies}) and to its compensation's ({@code compensationReplies}): the participant acted,
 * its reply never reaches the orchestrator. Either way the orchestrator's timeout fails the attempt.
 */
record LostMessages(Map<String, FailureMode> commands, Map<String, FailureMode> replies,
                    Map<String, FailureMode> compensationReplies) {
    /** Nothing lost. */
    static final LostMessages NONE = new LostMessages(Map.of(), Map.of(), Map.of());

    LostMessages {
        commands = Map.copyOf(commands);
        replies = Map.copyOf(replies);
        compensationReplies = Map.copyOf(compensationReplies);
    }
}
