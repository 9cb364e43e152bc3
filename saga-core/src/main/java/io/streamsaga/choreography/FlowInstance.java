package io.streamsaga.choreography;

import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * A snapshot of one flow instance, followed by its correlation id. Immutable; the tracker hands out a
 * new snapshot on every query.
 *
 * @param flow           the flow's name
 * @param correlationId  the correlation id shared by every event of the instance
 * @param status         where it stands
 * @param steps          the events seen so far, each after the event that caused it: by the latest timestamp along
 *                       its causation chain, then its depth in that chain, then arrival ({@link FlowTracker})
 * @param startedAt      the timestamp of its earliest event
 * @param deadlineAt     when it counts as stalled if no terminal event came: the deadline after its earliest event,
 *                       but no sooner than the deadline after the tracker first saw the instance
 * @param missedDeadline whether it was reported stalled (stays true if a terminal event came late)
 */
public record FlowInstance(String flow, String correlationId, FlowStatus status, List<FlowStep> steps,
                           Instant startedAt, Instant deadlineAt, boolean missedDeadline) {

    public FlowInstance {
        Objects.requireNonNull(flow, "flow");
        Objects.requireNonNull(correlationId, "correlationId");
        Objects.requireNonNull(status, "status");
        steps = List.copyOf(steps);
        Objects.requireNonNull(startedAt, "startedAt");
        Objects.requireNonNull(deadlineAt, "deadlineAt");
    }

    /** The latest event seen: "where is order X now". */
    public Optional<FlowStep> lastStep() {
        return steps.isEmpty() ? Optional.empty() : Optional.of(steps.get(steps.size() - 1));
    }

    /** The event names in order. */
    public List<String> path() {
        return steps.stream().map(FlowStep::event).toList();
    }
}
