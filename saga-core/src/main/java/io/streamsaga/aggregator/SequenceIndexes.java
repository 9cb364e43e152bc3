package io.streamsaga.aggregator;

import io.streamsaga.splitter.SequenceInfo;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * What an aggregator knows of the splitter's sequences in its groups (the sizes each sequence carries, the
 * part holding each number, the numbers present and the size the last part carries), kept
 * between parts so that checking a part against its group, and the completion rule
 * {@link AggregationGroup#sequenceComplete()}, cost O(1) amortised instead of decoding every part of the
 * group again, which made a group of n parts cost O(n²).
 *
 * <p>Each group's index records the group version it reflects, and when the group was opened (a key's next group,
 * once a closed one was deleted, counts its versions from 1 again). Every part the aggregator adds moves the index
 * on with the save that adds it ({@link #add}, then {@link #saved}), parts without sequence headers too, so that a
 * group mixing both is not indexed again. A group saved at another version than the
 * one the index follows (another instance added a part, a release reopened it), or opened at another time, is
 * indexed again from its parts once, so the index is a cache that is never trusted over the store. At most {@code capacity} groups are
 * indexed, the least recently used one dropped first; the first one dropped is logged as a warning, as from then
 * on groups are likely indexed again part after part. Thread-safe.
 */
final class SequenceIndexes {
    private static final Logger log = LoggerFactory.getLogger(SequenceIndexes.class);
    /** The version of an index moved on to a group not saved yet: no stored group has it. */
    private static final long PENDING = -1;
    private final Map<String, GroupIndex> groups;

    private boolean warned;

    SequenceIndexes(String aggregator, int capacity) {
        this.groups = new LinkedHashMap<>(16, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<String, GroupIndex> eldest) {
                if (size() <= capacity) {
                    return false;
                }
                if (!warned && capacity > 0) {
                    warned = true;
                    log.warn("aggregator '{}' keeps the sequence index of {} groups (sequenceIndexCapacity) and dropped"
                            + " the least recently used one: a group no longer indexed is read whole for its next part;"
                            + " raise the capacity to the groups open at once", aggregator, capacity);
                }
                return true;
            }
        };
    }

    /**
     * A size carried by a part of {@code part}'s sequence in {@code group} that {@code part} contradicts (it is
     * numbered beyond it, or carries another size), or -1 when it contradicts none.
     */
    synchronized int contradictedSize(AggregationGroup group, SequenceInfo part) {
        Sequence sequence = indexOf(group).sequences.get(part.sequenceId());
        if (sequence == null || sequence.minSize < 0) {
            return -1;
        }
        if (part.number() > sequence.minSize) {
            return sequence.minSize;
        }
        if (part.size().isPresent()) {
            int size = part.size().getAsInt();
            if (size != sequence.minSize) {
                return sequence.minSize;
            }
            if (size != sequence.maxSize) {
                return sequence.maxSize;
            }
        }
        return -1;
    }

    /** The message id of the part of {@code group} that holds {@code part}'s number in its sequence, or null. */
    synchronized String holder(AggregationGroup group, SequenceInfo part) {
        Sequence sequence = indexOf(group).sequences.get(part.sequenceId());
        return sequence == null ? null : sequence.holders.get(part.number());
    }

    /**
     * When {@code part} is the first of its sequence in {@code group} to carry the size, the message ids of the
     * parts of that sequence numbered beyond it (taken while nothing told they were); empty otherwise.
     */
    synchronized List<String> beyondNewSize(AggregationGroup group, SequenceInfo part) {
        Sequence sequence = indexOf(group).sequences.get(part.sequenceId());
        if (sequence == null || sequence.minSize >= 0 || part.size().isEmpty()) {
            return List.of();
        }
        int size = part.size().getAsInt();
        List<String> beyond = new ArrayList<>();
        sequence.holders.forEach((number, messageId) -> {
            if (number > size) {
                beyond.add(messageId);
            }
        });
        return beyond;
    }

    /** Whether {@code group}'s sequence is complete, as {@link AggregationGroup#sequenceComplete()} says. */
    synchronized boolean sequenceComplete(AggregationGroup group) {
        return indexOf(group).sequenceComplete();
    }

    /**
     * Moves the index of {@code current} on to the group with the part {@code messageId} (its sequence headers, if
     * any) added and, when that part is the first of its sequence to carry the size, the parts numbered beyond it
     * removed: the group the aggregator is about to save. Until {@link #saved} confirms the save, no group is taken
     * to match it. A part without sequence headers creates no index unless {@code indexNeeded} (the completion
     * rule reads it); it moves an existing one on.
     */
    synchronized Change add(AggregationGroup current, Optional<SequenceInfo> part, String messageId, boolean indexNeeded) {
        if (part.isEmpty() && !indexNeeded) {
            GroupIndex existing = groups.get(current.key());
            if (existing == null || !existing.follows(current, current.version())) {
                groups.remove(current.key());
                return new Change(current.key(), null, current.version() + 1, false);
            }
        }
        GroupIndex index = indexOf(current);
        index.version = PENDING;
        part.ifPresent(info -> index.add(info, messageId, true));
        return new Change(current.key(), index, current.version() + 1, index.sequenceComplete());
    }

    /** The group of {@code change} was saved: its index follows it. */
    synchronized void saved(Change change) {
        if (change.index != null && groups.get(change.key) == change.index && change.index.version == PENDING) {
            change.index.version = change.version;
        }
    }

    /** The group of {@code change} was not saved: its index is dropped, to be built again when next needed. */
    synchronized void discard(Change change) {
        if (change.index != null && groups.get(change.key) == change.index) {
            groups.remove(change.key);
        }
    }

    /** Drops the index of a group that closed. */
    synchronized void forget(String key) {
        groups.remove(key);
    }

    /**
     * A part added to a group's index ahead of the save that adds it to the group.
     *
     * @param key              the group's key
     * @param index            the index moved on, or null when none was kept
     * @param version          the version the save is to store
     * @param sequenceComplete whether the group with the part is complete by {@link AggregationGroup#sequenceComplete()}
     */
    record Change(String key, GroupIndex index, long version, boolean sequenceComplete) {
    }

    private GroupIndex indexOf(AggregationGroup group) {
        GroupIndex index = groups.get(group.key());
        if (index == null || !index.follows(group, group.version())) {
            index = new GroupIndex(group.version(), group.createdAt());
            for (AggregatedPart part : group.parts()) {
                Optional<SequenceInfo> info = part.sequence();
                if (info.isPresent()) {
                    index.add(info.get(), part.messageId(), false);
                }
            }
            groups.put(group.key(), index);
        }
        return index;
    }

    static final class GroupIndex {
        private long version;
        /**
         * When the group it follows was opened: a version number is met again by the next group of the key once a
         * closed one was deleted (perhaps released by another instance, unseen here), which opened later.
         */
        private final Instant createdAt;
        private final Map<String, Sequence> sequences = new HashMap<>();
        /** How many parts of the group carry each number, whatever their sequence. */
        private final Map<Integer, Integer> numbers = new HashMap<>();
        /** The size carried by the part marked last that arrived last, or -1. */
        private int lastSize = -1;
        /** How many numbers from 1 to {@link #lastSize} a part of the group carries. */
        private int numbersUpToLast;

        GroupIndex(long version, Instant createdAt) {
            this.version = version;
            this.createdAt = createdAt;
        }

        /** Whether this index reflects {@code group} at {@code version}: the same group, not a later one of its key. */
        boolean follows(AggregationGroup group, long version) {
            return this.version == version && createdAt.equals(group.createdAt());
        }

        /**
         * Adds a part. {@code removesBeyond}: the parts of its sequence numbered beyond the size it is the first to
         * carry leave the group with it (as the aggregator dead-letters them); false when indexing a stored group,
         * whose parts are all there (only the holders forget them, as they were refused had they come after).
         */
        void add(SequenceInfo part, String messageId, boolean removesBeyond) {
            Sequence sequence = sequences.computeIfAbsent(part.sequenceId(), id -> new Sequence());
            sequence.holders.putIfAbsent(part.number(), messageId);
            if (part.size().isPresent()) {
                int size = part.size().getAsInt();
                if (sequence.minSize < 0) {
                    // dead-lettered as the size came
                    for (var holders = sequence.holders.keySet().iterator(); holders.hasNext(); ) {
                        int number = holders.next();
                        if (number > size) {
                            holders.remove();
                            if (removesBeyond) {
                                removeNumber(number);
                            }
                        }
                    }
                }
                sequence.minSize = sequence.minSize < 0 ? size : Math.min(sequence.minSize, size);
                sequence.maxSize = Math.max(sequence.maxSize, size);
            }
            addNumber(part.number());
            if (part.last()) {
                // a part marked last carries its size (its own number), and never leaves the group as beyond a size
                int size = part.size().orElseThrow();
                if (size != lastSize) {
                    lastSize = size;
                    numbersUpToLast = 0;
                    for (int number : numbers.keySet()) {
                        numbersUpToLast += number <= size ? 1 : 0;
                    }
                }
            }
        }

        private void addNumber(int number) {
            if (numbers.merge(number, 1, Integer::sum) == 1 && number <= lastSize) {
                numbersUpToLast++;
            }
        }

        private void removeNumber(int number) {
            Integer count = numbers.get(number);
            if (count == null) {
                return;
            }
            if (count > 1) {
                numbers.put(number, count - 1);
                return;
            }
            numbers.remove(number);
            if (number <= lastSize) {
                numbersUpToLast--;
            }
        }

        /** As {@link AggregationGroup#sequenceComplete()}: the last part marked last, and every number up to it. */
        boolean sequenceComplete() {
            return lastSize > 0 && numbersUpToLast == lastSize;
        }
    }

    /**
     * The sizes the parts of one sequence carry: one size, as parts contradicting it are refused, except in a
     * group stored before that check existed; both bounds keep the check exact for such a group too.
     */
    private static final class Sequence {
        private int minSize = -1;
        private int maxSize = -1;
        /** The message id of the first part taken for each number. */
        private final Map<Integer, String> holders = new HashMap<>();
    }
}
