package io.streamsaga.inmemory.saga.testkit;

import java.util.Map;

/**
 * The messages between the orchestrator and remote participants the crash explorer loses for a run, by step, each as
 * often as its {@link FailureMode} says: the step's commands ({@code commands}: the participant never acts), the
 * replies to them ({@code replies}) and to its compensation's ({@code compensationReplies}): the participant acted,
 * its reply never reaches the orchestrator; and its compensation's commands ({@code compensationCommands}): the
 * participant does not undo, until the lost command turns up late, once the next command of that compensation was
 * sent, as a redelivery would. Either way the orchestrator's timeout fails the attempt.
 */
record LostMessages(Map<String, FailureMode> commands, Map<String, FailureMode> replies,
                    Map<String, FailureMode> compensationReplies, Map<String, FailureMode> compensationCommands) {
    /** Nothing lost. */
    static final LostMessages NONE = new LostMessages(Map.of(), Map.of(), Map.of(), Map.of());

    LostMessages {
        commands = Map.copyOf(commands);
        replies = Map.copyOf(replies);
        compensationReplies = Map.copyOf(compensationReplies);
        compensationCommands = Map.copyOf(compensationCommands);
    }

    /** Whether a compensation's command or reply is lost: the explorer retries it as an operator would, if need be. */
    boolean losesCompensations() {
        return !compensationReplies.isEmpty() || !compensationCommands.isEmpty();
    }
}
