package io.streamsaga.aggregator;

import io.streamsaga.splitter.SequenceInfo;

import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * What an aggregator knows of the splitter's sequences in its groups (the sizes each sequence carries, the
 * part holding each number), kept
 * between parts so that checking a part against its group costs O(1) instead of decoding every part of the
 * group again, which made a group of n parts cost O(n²).
 *
 * <p>Each group's index records the group version it reflects, and when the group was opened (a key's next group,
 * once a closed one was deleted, counts its versions from 1 again). A group saved at another version than the
 * one the index follows (another instance added a part, a release reopened it), or opened at another time, is
 * indexed again from its parts once, so the index is a cache that is never trusted over the store. At most {@code capacity} groups are
 * indexed, the least recently used one dropped first. Thread-safe.
 */
final class SequenceIndexes {
    private final Map<String, GroupIndex> groups;

    SequenceIndexes(int capacity) {
        this.groups = new LinkedHashMap<>(16, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<String, GroupIndex> eldest) {
                return size() > capacity;
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

    /**
     * Records the part {@code messageId} as added by the save of {@code saved} (with the parts beyond a size it
     * brought removed), when the index followed the version before.
     */
    synchronized void added(AggregationGroup saved, SequenceInfo part, String messageId) {
        GroupIndex index = groups.get(saved.key());
        if (index == null || !index.follows(saved, saved.version() - 1)) {
            groups.remove(saved.key()); // indexed again from the stored group when next needed
            return;
        }
        index.version = saved.version();
        index.add(part, messageId);
    }

    /** Drops the index of a group that closed. */
    synchronized void forget(String key) {
        groups.remove(key);
    }

    private GroupIndex indexOf(AggregationGroup group) {
        GroupIndex index = groups.get(group.key());
        if (index == null || !index.follows(group, group.version())) {
            index = new GroupIndex(group.version(), group.createdAt());
            for (AggregatedPart part : group.parts()) {
                Optional<SequenceInfo> info = part.sequence();
                if (info.isPresent()) {
                    index.add(info.get(), part.messageId());
                }
            }
            groups.put(group.key(), index);
        }
        return index;
    }

    private static final class GroupIndex {
        private long version;
        /**
         * When the group it follows was opened: a version number is met again by the next group of the key once a
         * closed one was deleted (perhaps released by another instance, unseen here), which opened later.
         */
        private final Instant createdAt;
        private final Map<String, Sequence> sequences = new HashMap<>();

        GroupIndex(long version, Instant createdAt) {
            this.version = version;
            this.createdAt = createdAt;
        }

        /** Whether this index reflects {@code group} at {@code version}: the same group, not a later one of its key. */
        boolean follows(AggregationGroup group, long version) {
            return this.version == version && createdAt.equals(group.createdAt());
        }

        void add(SequenceInfo part, String messageId) {
            Sequence sequence = sequences.computeIfAbsent(part.sequenceId(), id -> new Sequence());
            sequence.holders.putIfAbsent(part.number(), messageId);
            if (part.size().isPresent()) {
                int size = part.size().getAsInt();
                if (sequence.minSize < 0) {
                    sequence.holders.keySet().removeIf(number -> number > size); // dead-lettered as the size came
                }
                sequence.minSize = sequence.minSize < 0 ? size : Math.min(sequence.minSize, size);
                sequence.maxSize = Math.max(sequence.maxSize, size);
            }
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
