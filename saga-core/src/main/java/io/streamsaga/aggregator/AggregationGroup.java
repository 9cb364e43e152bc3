package io.streamsaga.aggregator;

import io.streamsaga.ConfigurationException;
import io.streamsaga.splitter.SequenceInfo;

import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;

/**
 * The state of one correlation group of an aggregator, as stored. Immutable; the {@code with...} methods
 * return changed copies.
 *
 * <p>{@code version} counts saves (0 = never saved) and gives optimistic concurrency: a store saves a group
 * only over the version before it, so two instances racing on one group cannot both win.
 * {@code deadline} is when the aggregator must look at the group again: its timeout while open, the end of
 * the lease of the instance finishing its timeout's outcome ({@link GroupState#TIMING_OUT}), the end of its tombstone
 * (kept so that late parts are recognised) once closed; null when neither applies.
 *
 * @param aggregator the aggregator's stable name
 * @param key        the correlation key
 * @param version    save counter, 0 before the first save
 * @param state      open or how it closed
 * @param parts      the parts, in arrival order
 * @param createdAt  when the first part arrived
 * @param deadline   when the aggregator looks at the group again, or null
 */
public record AggregationGroup(String aggregator, String key, long version, GroupState state,
                               List<AggregatedPart> parts, Instant createdAt, Instant deadline) {
    public AggregationGroup {
        ConfigurationException.require(aggregator != null && !aggregator.isBlank(), "aggregator name must not be blank, but was '%s'", aggregator);
        ConfigurationException.require(key != null && !key.isBlank(), "correlation key must not be blank, but was '%s'", key);
        ConfigurationException.require(version >= 0, "group version must be 0 or more, but was %s", version);
        Objects.requireNonNull(state, "state");
        Objects.requireNonNull(createdAt, "createdAt");
        parts = List.copyOf(parts);
    }

    /** A new, unsaved open group. */
    public static AggregationGroup open(String aggregator, String key, Instant createdAt, Instant deadline) {
        return new AggregationGroup(aggregator, key, 0, GroupState.OPEN, List.of(), createdAt, deadline);
    }

    /** The number of parts. */
    public int size() {
        return parts.size();
    }

    public boolean isOpen() {
        return state == GroupState.OPEN;
    }

    /** Whether a part with this message id is in the group. */
    public boolean contains(String messageId) {
        for (AggregatedPart part : parts) {
            if (part.messageId().equals(messageId)) {
                return true;
            }
        }
        return false;
    }

    /** Whether the group has at least one part of each of these event types. */
    public boolean hasTypes(String... types) {
        Set<String> present = new HashSet<>();
        for (AggregatedPart part : parts) {
            present.add(part.type());
        }
        return present.containsAll(Arrays.asList(types));
    }

    /** The first part of {@code type}, if any. */
    public Optional<AggregatedPart> firstOfType(String type) {
        return parts.stream().filter(p -> p.type().equals(type)).findFirst();
    }

    /**
     * Whether the splitter's sequence is complete: a part marked last was received, and a part of every
     * number from 1 to the size it carries. Works whether or not earlier parts knew the size; a part numbered
     * beyond that size (a faulty producer's) stands in for no missing one.
     */
    public boolean sequenceComplete() {
        Set<Integer> numbers = new HashSet<>();
        int size = -1;
        for (AggregatedPart part : parts) {
            Optional<SequenceInfo> info = part.sequence();
            if (info.isPresent()) {
                numbers.add(info.get().number());
                if (info.get().last()) {
                    size = info.get().size().orElse(-1);
                }
            }
        }
        if (size <= 0 || numbers.size() < size) {
            return false;
        }
        for (int number = 1; number <= size; number++) {
            if (!numbers.contains(number)) {
                return false;
            }
        }
        return true;
    }

    /** A copy with {@code part} appended. */
    public AggregationGroup withPart(AggregatedPart part) {
        List<AggregatedPart> more = new ArrayList<>(parts);
        more.add(part);
        return new AggregationGroup(aggregator, key, version, state, more, createdAt, deadline);
    }

    /** A copy in another state with another deadline. */
    public AggregationGroup withState(GroupState newState, Instant newDeadline) {
        return new AggregationGroup(aggregator, key, version, newState, parts, createdAt, newDeadline);
    }

    /** A copy with another version (the one a store is asked to save). */
    public AggregationGroup withVersion(long newVersion) {
        return new AggregationGroup(aggregator, key, newVersion, state, parts, createdAt, deadline);
    }
}
