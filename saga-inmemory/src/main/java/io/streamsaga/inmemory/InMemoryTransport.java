package io.streamsaga.inmemory;

import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.RecordPosition;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.Subscription;
import io.streamsaga.bus.TopicPattern;
import io.streamsaga.bus.TransportClosedException;
import io.streamsaga.inmemory.internal.AppendedStage;
import io.streamsaga.inmemory.internal.PartitionLog;
import io.streamsaga.message.Message;
import io.streamsaga.spi.RecordHandler;
import io.streamsaga.spi.RedeliverLater;
import io.streamsaga.spi.Transport;
import io.streamsaga.spi.TransportRecord;
import io.streamsaga.time.Scheduler;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.function.LongSupplier;

/**
 * A {@link Transport} that is a real partitioned log in memory: topics of N partitions chosen by key
 * hash, consumer groups with committed offsets, independent groups that each receive every record,
 * replay from the earliest retained offset, and retention by count or age. What passes on it passes
 * on Kafka: both run the same contract suite.
 *
 * <p>In {@link DeliveryMode#ASYNC} each subscription owns one consumer thread. In
 * {@link DeliveryMode#MANUAL} nothing is delivered until the test calls {@link #drainAll()}.
 *
 * <p>By default the published payload object itself reaches the consumers (no serialisation: events must
 * be immutable). {@link Builder#serializePayloads(boolean)} makes the bus encode to bytes as on Kafka.
 * Thread-safe.
 */
public final class InMemoryTransport implements Transport {
    private static final Logger log = LoggerFactory.getLogger(InMemoryTransport.class);
    private static final int BATCH = 512;
    private static final long IDLE_PARK_NANOS = TimeUnit.MILLISECONDS.toNanos(50);
    /**
     * How long a record whose handler threw waits before it is delivered again, unless it threw a {@link RedeliverLater},
     * whose delay it waits: its partition alone waits.
     */
    private static final long FAILURE_PAUSE_NANOS = TimeUnit.MILLISECONDS.toNanos(100);
    /**
     * How many empty polls a consumer makes, after it ran dry, before it parks: a producer that publishes
     * again meanwhile needs no unpark (a system call) and the consumer no wake-up. The first polls are
     * separated by growing spins (up to {@link #MAX_BACKOFF_SPINS}; tens of microseconds in all), the rest by {@link Thread#yield()}: on a
     * machine with more runnable threads than cores a spinning consumer would hold a core its producer
     * needs, while a yielding one gives it away (and on an idle core the yield returns at once).
     */
    private static final int IDLE_POLLS = 64;
    /**
     * The longest pause between two polls while spinning, in {@link Thread#onSpinWait()} calls (25-40 ns
     * each on the benchmark machine, so some 25-40 us): also the most a spinning consumer adds to latency.
     */
    private static final int MAX_BACKOFF_SPINS = 1024;
    /**
     * A poll delivering fewer records than this is followed by a pause, which doubles while polls stay
     * smaller and halves after a larger one. Each poll reads every assigned log's end offset, a cache line
     * the producers write on every append: polled record by record, each append became a cache miss on the
     * producer's core (a fifth of the two-thread benchmark's profile); in chunks of a few hundred records
     * across the partitions the miss is paid once per chunk.
     */
    private static final int SMALL_PASS = 256;

    private final int partitions;
    private final long maxRecordsPerPartition;
    private final Duration retention;
    private final DeliveryMode mode;
    private final boolean carriesObjects;
    private final Clock clock;
    /** The clock ({@code nanoTime}) a failed record's wait is measured on: a test seam, System::nanoTime otherwise. */
    private final LongSupplier nanoClock;
    private final Map<String, Topic> topics = new ConcurrentHashMap<>();
    private final Map<String, Group> groups = new ConcurrentHashMap<>();
    /** Guards structural changes: topics created, members joining and leaving. */
    private final Object structure = new Object();
    private final Object drainLock = new Object();
    /**
     * The cursor at which the last {@link #drain(int)} stopped because it had delivered its bound, or null; the next
     * call starts with the cursor after it. Guarded by {@code drainLock}.
     */
    private Cursor drainStoppedAt;
    private final AtomicInteger memberIds = new AtomicInteger();
    private volatile boolean closed;

    private InMemoryTransport(Builder builder) {
        this.partitions = builder.partitions;
        this.maxRecordsPerPartition = builder.maxRecordsPerPartition;
        this.retention = builder.retention;
        this.mode = builder.mode;
        this.carriesObjects = !builder.serializePayloads;
        this.clock = builder.clock;
        this.nanoClock = builder.nanoClock;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** Four partitions, asynchronous delivery, unbounded retention. */
    public static InMemoryTransport create() {
        return builder().build();
    }

    @Override
    public String name() {
        return "in-memory";
    }

    @Override
    public boolean carriesObjects() {
        return carriesObjects;
    }

    /** The delivery mode. */
    public DeliveryMode mode() {
        return mode;
    }

    @Override
    public CompletionStage<RecordPosition> send(Message message) {
        if (closed) {
            return CompletableFuture.failedFuture(new TransportClosedException(message.topic(), "transport is closed"));
        }
        Topic topic = topic(message.topic());
        int partition = topic.partitionFor(message.key());
        PartitionLog partitionLog = topic.logs[partition];
        // Only age-based retention needs the append time; reading the clock per record is not free.
        Instant now = retention == null ? null : clock.instant();
        long offset = partitionLog.append(message, now, maxRecordsPerPartition,
                retention == null ? null : now.minus(retention));
        for (Member watcher : topic.watchers) {
            watcher.wake(partitionLog);
        }
        return new AppendedStage(message.topic(), partition, offset);
    }

    @Override
    public Subscription subscribe(String group, TopicPattern pattern, StartPosition start, RecordHandler handler) {
        ConfigurationException.require(!closed, "transport is closed; cannot subscribe group '%s'", group);
        Member member;
        synchronized (structure) {
            // Again under the lock close() collects the members under: a close since the check above missed this one.
            ConfigurationException.require(!closed, "transport is closed; cannot subscribe group '%s'", group);
            Group state = groups.computeIfAbsent(group, Group::new);
            member = new Member(state, pattern, handler, memberIds.incrementAndGet());
            for (Topic topic : topics.values()) {
                if (pattern.matches(topic.name)) {
                    for (PartitionLog partitionLog : topic.logs) {
                        state.cursorFor(partitionLog, start == StartPosition.EARLIEST
                                ? retained(partitionLog).startOffset() : partitionLog.endOffset());
                    }
                }
            }
            state.members.add(member);
            reassign(state);
        }
        if (mode == DeliveryMode.ASYNC) {
            member.startThread();
        }
        return member;
    }

    /**
     * Delivers every pending record to every subscription on the calling thread, again and again until
     * nothing is pending (handlers may publish more). A record whose handler throws stays pending and its
     * partition is skipped for the rest of this call. Only in {@link DeliveryMode#MANUAL}. Handlers that answer
     * each other for ever keep it delivering: {@link #drain(int)} bounds the call.
     *
     * @return how many records were delivered
     */
    public int drainAll() {
        ConfigurationException.require(mode == DeliveryMode.MANUAL,
                "drainAll() needs DeliveryMode.MANUAL, but this transport is %s", mode);
        return deliverPending(Integer.MAX_VALUE);
    }

    /**
     * Delivers pending records as {@link #drainAll()} does (a record whose handler throws stays pending, its
     * partition skipped for the rest of the call), until nothing more can be delivered or {@code maxRecords} were
     * delivered; what is left stays pending for the next call. A record counts once per subscription whose handler
     * took it; one whose handler threw does not count. Lets a test driver bound a delivery that may never end
     * (handlers that answer each other for ever). Successive calls take turns: a call that stopped at its bound is
     * followed by one that starts after the group and partition it stopped in (going round every group's
     * partitions), so a group or partition that keeps receiving (a handler publishing again) does not starve the
     * others when a driver delivers in bounded slices; after a call that ended with nothing more to deliver, the
     * next starts from the first. Only in {@link DeliveryMode#MANUAL}; calls (and
     * {@code drainAll()}) on several threads deliver one after another.
     *
     * @param maxRecords the most records to deliver, at least 1
     * @return how many records were delivered, counted as above
     */
    public int drain(int maxRecords) {
        ConfigurationException.require(mode == DeliveryMode.MANUAL,
                "drain(int) needs DeliveryMode.MANUAL, but this transport is %s", mode);
        ConfigurationException.require(maxRecords >= 1, "maxRecords must be at least 1, but was %s", maxRecords);
        return deliverPending(maxRecords);
    }

    private int deliverPending(int maxRecords) {
        synchronized (drainLock) {
            Cursor after = drainStoppedAt;
            drainStoppedAt = null;
            Set<Cursor> failed = new HashSet<>();
            List<Member> owners = new ArrayList<>();
            List<Cursor> cursors = new ArrayList<>();
            int total = 0;
            boolean progress = true;
            while (progress && total < maxRecords) {
                progress = false;
                // Read again on each pass: a handler's send may create a topic, and with it cursors to deliver.
                owners.clear();
                cursors.clear();
                for (Group group : groups.values()) {
                    for (Member member : group.members) {
                        for (Cursor cursor : member.assigned) {
                            owners.add(member);
                            cursors.add(cursor);
                        }
                    }
                }
                int count = cursors.size();
                int first = cursors.indexOf(after) + 1; // 0 when the previous call was not stopped by its bound
                for (int k = 0; k < count && total < maxRecords; k++) {
                    int i = (first + k) % count;
                    Cursor cursor = cursors.get(i);
                    if (failed.contains(cursor)) {
                        continue;
                    }
                    int delivered = owners.get(i).deliver(cursor, maxRecords - total);
                    if (delivered < 0) {
                        failed.add(cursor);
                        total += -delivered - 1;
                        progress |= delivered < -1;
                    } else {
                        total += delivered;
                        progress |= delivered > 0;
                    }
                    if (total >= maxRecords) {
                        drainStoppedAt = cursor;
                    }
                }
            }
            return total;
        }
    }

    /** How many retained records the active subscriptions have not yet handled, over all groups. */
    public long pendingCount() {
        long pending = 0;
        for (Group group : groups.values()) {
            for (Member member : group.members) {
                for (Cursor cursor : member.assigned) {
                    // Records already dropped by retention can no longer be delivered: they are not pending.
                    long from = Math.max(cursor.position, retained(cursor.log).startOffset());
                    pending += Math.max(0, cursor.log.endOffset() - from);
                }
            }
        }
        return pending;
    }

    @Override
    public Map<Integer, Long> endOffsets(String topicName) {
        Topic topic = topics.get(topicName);
        Map<Integer, Long> ends = new TreeMap<>();
        if (topic != null) {
            for (PartitionLog partitionLog : topic.logs) {
                ends.put(partitionLog.partition(), partitionLog.endOffset());
            }
        }
        return ends;
    }

    /** The first retained offset per partition of {@code topic}. */
    public Map<Integer, Long> startOffsets(String topicName) {
        Topic topic = topics.get(topicName);
        Map<Integer, Long> starts = new TreeMap<>();
        if (topic != null) {
            for (PartitionLog partitionLog : topic.logs) {
                starts.put(partitionLog.partition(), retained(partitionLog).startOffset());
            }
        }
        return starts;
    }

    @Override
    public Map<Integer, Long> committedOffsets(String groupName, String topicName) {
        Group group = groups.get(groupName);
        Map<Integer, Long> committed = new TreeMap<>();
        if (group != null) {
            for (Cursor cursor : group.cursors.values()) {
                if (cursor.log.topic().equals(topicName)) {
                    committed.put(cursor.log.partition(), cursor.position);
                }
            }
        }
        return committed;
    }

    @Override
    public Set<String> consumerGroups(String topicName) {
        Set<String> names = new HashSet<>();
        for (Group group : groups.values()) {
            // A group with a subscription open on the topic counts before the topic exists (it has no position on
            // it yet), as the contract says: a ServingLayer or a replay asking whether a group is unused would take it
            for (Member member : group.members) {
                if (member.pattern.matches(topicName)) {
                    names.add(group.name);
                    break;
                }
            }
            for (Cursor cursor : group.cursors.values()) {
                if (cursor.log.topic().equals(topicName)) {
                    names.add(group.name);
                    break;
                }
            }
        }
        return names;
    }

    /** The names of the topics written so far. */
    public Set<String> topics() {
        return Set.copyOf(topics.keySet());
    }

    /** The messages retained in {@code topic}, partition by partition, in offset order (for tests and tools). */
    public List<Message> messages(String topicName) {
        Topic topic = topics.get(topicName);
        List<Message> all = new ArrayList<>();
        if (topic != null) {
            for (PartitionLog partitionLog : topic.logs) {
                for (long offset = retained(partitionLog).startOffset(); offset < partitionLog.endOffset(); offset++) {
                    Message message = partitionLog.read(offset);
                    if (message != null) {
                        all.add(message);
                    }
                }
            }
        }
        return all;
    }

    /**
     * {@code partitionLog} with the records older than the retention dropped: an append drops them too, but a
     * partition no one appends to any more must not keep them past the replay horizon (a deduplication window or a
     * claim-check expiry covering it would no longer cover them).
     */
    private PartitionLog retained(PartitionLog partitionLog) {
        if (retention != null) {
            partitionLog.expire(clock.instant().minus(retention));
        }
        return partitionLog;
    }

    @Override
    public Optional<Duration> retentionHorizon() {
        return Optional.ofNullable(retention);
    }

    @Override
    public void close() {
        closed = true;
        List<Member> all = new ArrayList<>();
        synchronized (structure) { // a subscribe joins its group under it: either it is here, or it sees 'closed'
            for (Group group : groups.values()) {
                all.addAll(group.members);
            }
        }
        for (Member member : all) {
            member.close();
        }
    }

    /**
     * The topic sent to last. A racy cache: topics are never removed, and a Topic's final fields make it
     * safe to read through this plain field on any thread.
     */
    private Topic lastTopic;

    private Topic topic(String name) {
        Topic last = lastTopic;
        if (last != null && last.name == name) {
            return last; // a publisher mostly repeats one constant name: skip the map lookup
        }
        Topic existing = topics.get(name);
        if (existing != null) {
            lastTopic = existing;
            return existing;
        }
        synchronized (structure) {
            existing = topics.get(name);
            if (existing != null) {
                return existing;
            }
            TopicPattern.requireTopicName(name);
            Topic created = new Topic(name, partitions, retention != null);
            topics.put(name, created);
            for (Group group : groups.values()) {
                boolean matched = false;
                for (Member member : group.members) {
                    matched |= member.pattern.matches(name);
                }
                if (matched) {
                    // A topic born after the subscription: everything in it is new to the group.
                    for (PartitionLog partitionLog : created.logs) {
                        group.cursorFor(partitionLog, 0);
                    }
                    reassign(group);
                }
            }
            return created;
        }
    }

    /** Spreads the group's partitions over its members whose pattern matches; called under {@code structure}. */
    private void reassign(Group group) {
        Map<Member, List<Cursor>> plan = new LinkedHashMap<>();
        List<Member> members = new ArrayList<>(group.members);
        for (Member member : members) {
            plan.put(member, new ArrayList<>());
        }
        for (Topic topic : topics.values()) {
            List<Member> eligible = new ArrayList<>();
            for (Member member : members) {
                if (member.pattern.matches(topic.name)) {
                    eligible.add(member);
                }
            }
            if (eligible.isEmpty()) {
                continue;
            }
            for (PartitionLog partitionLog : topic.logs) {
                Cursor cursor = group.cursorFor(partitionLog, partitionLog.endOffset());
                Member owner = eligible.get(Math.floorMod(topic.name.hashCode() + partitionLog.partition(), eligible.size()));
                plan.get(owner).add(cursor);
            }
        }
        for (Map.Entry<Member, List<Cursor>> entry : plan.entrySet()) {
            entry.getKey().assigned = List.copyOf(entry.getValue());
            // a member parked until a waiting record's time would not see records on a partition it was just given
            entry.getKey().wake(null);
        }
        for (Topic topic : topics.values()) {
            List<Member> watchers = new ArrayList<>();
            for (Group each : groups.values()) {
                for (Member member : each.members) {
                    if (member.pattern.matches(topic.name)) {
                        watchers.add(member);
                    }
                }
            }
            topic.watchers = watchers.toArray(new Member[0]);
        }
    }

    private static final class Topic {
        final String name;
        final PartitionLog[] logs;
        final AtomicInteger roundRobin = new AtomicInteger();
        /** {@code partitions - 1} when the count is a power of two (the mask then equals floorMod), else -1. */
        final int mask;
        volatile Member[] watchers = new Member[0];

        Topic(String name, int partitions, boolean timed) {
            this.name = name;
            this.mask = Integer.bitCount(partitions) == 1 ? partitions - 1 : -1;
            this.logs = new PartitionLog[partitions];
            for (int i = 0; i < partitions; i++) {
                logs[i] = new PartitionLog(name, i, timed);
            }
        }

        int partitionFor(String key) {
            int hash = key == null ? roundRobin.getAndIncrement() : key.hashCode();
            // floorMod divides (tens of cycles per publish); for a power of two the mask gives the same value.
            return mask >= 0 ? hash & mask : Math.floorMod(hash, logs.length);
        }
    }

    private static final class Group {
        final String name;
        final Map<PartitionLog, Cursor> cursors = new ConcurrentHashMap<>();
        final Collection<Member> members = new CopyOnWriteArrayList<>();

        Group(String name) {
            this.name = name;
        }

        Cursor cursorFor(PartitionLog partitionLog, long initialPosition) {
            return cursors.computeIfAbsent(partitionLog, l -> new Cursor(l, initialPosition));
        }
    }

    /** Padding before a cursor's fields, so that no producer-written line neighbours them. */
    private abstract static class CursorPadBefore {
        long p00, p01, p02, p03, p04, p05, p06, p07;
    }

    /** The fields the deliverer writes: its claim on the cursor, the committed position, and who delivered last. */
    private abstract static class CursorFields extends CursorPadBefore {
        volatile int busy;
        volatile long position;
        /** The member that delivered from the cursor last, or null; read and written under the claim. */
        Member deliveredBy;
    }

    /**
     * A group's committed position in one partition; {@code busy} keeps one deliverer at a time. Padded like
     * {@link PartitionLog}: cursors are often allocated right next to the logs they read.
     */
    private static final class Cursor extends CursorFields {
        private static final VarHandle BUSY;

        static {
            try {
                BUSY = MethodHandles.lookup().findVarHandle(CursorFields.class, "busy", int.class);
            } catch (ReflectiveOperationException e) {
                throw new ExceptionInInitializerError(e);
            }
        }

        long p10, p11, p12, p13, p14, p15, p16, p17;
        final PartitionLog log;

        Cursor(PartitionLog log, long position) {
            this.log = log;
            this.position = position;
        }

        boolean claim() {
            return BUSY.compareAndSet(this, 0, 1);
        }

        void release() {
            BUSY.setRelease(this, 0);
        }
    }

    private final class Member implements Subscription {
        private static final VarHandle WAITING;

        static {
            try {
                WAITING = MethodHandles.lookup().findVarHandle(Member.class, "waiting", boolean.class);
            } catch (ReflectiveOperationException e) {
                throw new ExceptionInInitializerError(e);
            }
        }

        final Group group;
        final TopicPattern pattern;
        final RecordHandler handler;
        final int id;
        volatile List<Cursor> assigned = List.of();
        volatile boolean active = true;
        volatile boolean waiting;
        volatile Thread thread;
        /**
         * The cursors whose record failed, until when they wait (on {@code nanoClock}): the failing record's
         * partition alone waits, so the member's other partitions keep flowing. The consumer thread's only.
         */
        private final Map<Cursor, Long> failedUntil = new HashMap<>();
        /**
         * The logs of the cursors in {@code failedUntil}, for senders: an append to one does not wake the member,
         * which would find nothing to deliver. Written by the consumer thread when {@code failedUntil} changes.
         */
        private volatile Set<PartitionLog> held = Set.of();
        /** How long the record {@link #deliver} left pending last waits; the consumer thread's only. */
        private long failureWaitNanos;

        Member(Group group, TopicPattern pattern, RecordHandler handler, int id) {
            this.group = group;
            this.pattern = pattern;
            this.handler = handler;
            this.id = id;
        }

        void startThread() {
            Thread worker = new Thread(this::run, "streamsaga-inmemory-" + group.name + "-" + id);
            worker.setDaemon(true);
            thread = worker;
            worker.start();
        }

        /**
         * Unparks the consumer thread if it parks, unless {@code appendedTo} is the log of a cursor whose record waits
         * (null for none): one waker unparks it, the others see the flag cleared.
         */
        void wake(PartitionLog appendedTo) {
            if (waiting && (appendedTo == null || !held.contains(appendedTo))
                    && WAITING.compareAndSet(this, true, false)) {
                Thread worker = thread;
                if (worker != null) {
                    LockSupport.unpark(worker);
                }
            }
        }

        private void run() {
            int idlePolls = 0;
            int backoff = 1;
            List<Cursor> seenAssigned = assigned;
            while (active) {
                int delivered = 0;
                List<Cursor> current = assigned;
                if (current != seenAssigned) {
                    seenAssigned = current;
                    // As on Kafka, where a revoked partition's pause goes with it: a wait ends with the partition
                    // (the record it held may have been handled by another member since), else it would hold the
                    // partition given back, and the sends to it would not wake this member, until its end
                    if (!failedUntil.isEmpty()
                            && failedUntil.keySet().removeIf(cursor -> !current.contains(cursor) || movedOn(cursor))) {
                        refreshHeld();
                    }
                }
                if (!failedUntil.isEmpty()) {
                    long now = nanoClock.getAsLong();
                    if (failedUntil.values().removeIf(until -> now - until >= 0)) {
                        refreshHeld();
                    }
                }
                for (Cursor cursor : assigned) {
                    if (cursor.position >= cursor.log.endOffset() || waits(cursor)) {
                        continue; // nothing new, or its failed record waits: no need to claim the cursor
                    }
                    int result = deliver(cursor, BATCH);
                    if (result < 0) {
                        failedUntil.put(cursor, nanoClock.getAsLong() + failureWaitNanos);
                        refreshHeld();
                        delivered += -result - 1;
                    } else {
                        delivered += result;
                    }
                }
                if (delivered > 0) {
                    idlePolls = 0;
                    if (delivered < SMALL_PASS) {
                        // Level with the producers: polling again at once would pull the logs' end offsets
                        // back from their cores record by record; a short pause lets a chunk build up.
                        for (int i = 0; i < backoff; i++) {
                            Thread.onSpinWait();
                        }
                        backoff = Math.min(backoff << 1, MAX_BACKOFF_SPINS);
                    } else {
                        backoff = Math.max(1, backoff >> 1);
                    }
                } else if (idlePolls < IDLE_POLLS && failedUntil.isEmpty()) {
                    idlePolls++;
                    if (backoff < MAX_BACKOFF_SPINS) {
                        // Poll less and less often: every poll pulls the producers' cache lines (the logs'
                        // end offsets) back to this core, which would make each of their appends a miss.
                        for (int i = 0; i < backoff; i++) {
                            Thread.onSpinWait();
                        }
                        backoff <<= 1;
                    } else {
                        Thread.yield();
                    }
                } else {
                    idlePolls = 0;
                    backoff = 1;
                    // Dekker with send(): the flag is written (volatile) before the end offsets are read
                    // again, and a sender writes its end offset (volatile) before it reads the flag.
                    waiting = true;
                    if (!hasWork()) {
                        LockSupport.parkNanos(this, parkNanos());
                    }
                    waiting = false;
                }
            }
        }

        /**
         * How long an idle consumer parks: while a record waits, until the first wait ends (a record sent to another
         * partition, or a new assignment, wakes it sooner; nothing else would be delivered before), rather than
         * polling, with no spinning, at each send to the waiting partition or at each idle park's end.
         */
        private long parkNanos() {
            if (failedUntil.isEmpty()) {
                return IDLE_PARK_NANOS;
            }
            long now = nanoClock.getAsLong();
            long first = Long.MAX_VALUE;
            for (long until : failedUntil.values()) {
                first = Math.min(first, until - now);
            }
            return first;
        }

        /**
         * Whether another member delivered from the cursor since this one did (or delivers now): read under the claim,
         * which orders it after that member's writes.
         */
        private boolean movedOn(Cursor cursor) {
            if (!cursor.claim()) {
                return true;
            }
            try {
                return cursor.deliveredBy != this;
            } finally {
                cursor.release();
            }
        }

        /** Writes {@code held} again, after {@code failedUntil} changed: the logs of its cursors. */
        private void refreshHeld() {
            List<PartitionLog> logs = new ArrayList<>(failedUntil.size());
            for (Cursor cursor : failedUntil.keySet()) {
                logs.add(cursor.log);
            }
            held = Set.copyOf(logs);
        }

        /**
         * Whether a cursor has a record to deliver now: not one whose failed record waits (the idle park ends when
         * the first wait does).
         */
        private boolean hasWork() {
            for (Cursor cursor : assigned) {
                if (cursor.position < cursor.log.endOffset() && !waits(cursor)) {
                    return true;
                }
            }
            return false;
        }

        /** Whether the cursor's failed record waits; no hashing on the delivery path while no record failed. */
        private boolean waits(Cursor cursor) {
            return !failedUntil.isEmpty() && failedUntil.containsKey(cursor);
        }

        /**
         * Delivers up to {@code max} records from the cursor. Returns how many, or {@code -(n + 1)} when the
         * handler threw after {@code n} successes (the failed record stays pending).
         */
        int deliver(Cursor cursor, int max) {
            if (!cursor.claim()) {
                return 0;
            }
            PartitionLog partitionLog = cursor.log;
            long position = cursor.position;
            int delivered = 0;
            try {
                if (cursor.deliveredBy != this) {
                    // another member had the partition since this one (if ever) did: what the handler learnt of it
                    // then may be stale, as a Kafka member's is after a rebalance took the partition from it
                    if (cursor.deliveredBy != null) {
                        forgetPartition(partitionLog);
                    }
                    cursor.deliveredBy = this;
                }
                // The end offset and the segment are read once per chunk, not per record: the producer
                // writes the end on every append, and re-reading it would bounce its cache line. The loop
                // repeats only when retention moved the start meanwhile.
                while (delivered < max && active) {
                    long end = partitionLog.endOffset();
                    if (position >= end) {
                        break;
                    }
                    long start = retained(partitionLog).startOffset();
                    if (position < start) {
                        log.warn("group {} lost records {}..{} of {}-{} to retention before handling them",
                                group.name, position, start - 1, partitionLog.topic(), partitionLog.partition());
                        position = start;
                        continue;
                    }
                    PartitionLog.Reader reader = partitionLog.reader();
                    long limit = Math.min(end, position + (max - delivered));
                    while (position < limit && active) {
                        Message message = reader.read(position);
                        if (message == null) {
                            break; // dropped by retention meanwhile: the outer loop re-reads the start
                        }
                        try {
                            handler.handle(new TransportRecord(message, group.name, partitionLog.partition(), position));
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                            failureWaitNanos = FAILURE_PAUSE_NANOS;
                            return -(delivered + 1);
                        } catch (RedeliverLater e) {
                            // asked for, not an error (a handler that leaves a record for later): at debug, as Kafka's
                            // member logs it; the record waits for the delay asked (in nanoseconds: it is at most
                            // MAX_DURATION)
                            log.debug("group {} leaves {}-{}@{} for {}: {}", group.name, partitionLog.topic(),
                                    partitionLog.partition(), position, e.delay(), String.valueOf(e.getCause()));
                            failureWaitNanos = e.delay().toNanos();
                            return -(delivered + 1);
                        } catch (Exception | Error e) {
                            failureWaitNanos = FAILURE_PAUSE_NANOS;
                            log.warn("group {} could not handle {} at {}-{}@{}; it will be delivered again: {}",
                                    group.name, message, partitionLog.topic(), partitionLog.partition(), position,
                                    e.toString());
                            return -(delivered + 1);
                        }
                        position++;
                        delivered++;
                    }
                    if (position == limit) {
                        // One chunk per call: re-reading the end now would pull the producer's line back for
                        // the few records appended meanwhile; the next pass takes them with more.
                        break;
                    }
                }
                return delivered;
            } finally {
                // Committed once per chunk (and on failure): only this deliverer writes the cursor.
                cursor.position = position;
                cursor.release();
            }
        }

        private void forgetPartition(PartitionLog partitionLog) {
            try {
                handler.forgetPartition(partitionLog.topic(), partitionLog.partition());
            } catch (RuntimeException e) {
                log.warn("group {} could not have its handler forget {}-{}: {}", group.name, partitionLog.topic(),
                        partitionLog.partition(), e.toString());
            }
        }

        @Override
        public String group() {
            return group.name;
        }

        @Override
        public TopicPattern pattern() {
            return pattern;
        }

        @Override
        public boolean isActive() {
            return active;
        }

        @Override
        public void close() {
            boolean first;
            synchronized (this) { // one closer leaves the group and interrupts the thread
                first = active;
                active = false;
            }
            if (first) {
                synchronized (structure) {
                    group.members.remove(this);
                    reassign(group);
                }
            }
            Thread worker = thread;
            if (worker != null && worker != Thread.currentThread()) {
                if (first) {
                    worker.interrupt();
                }
                // Every closer waits, not only the first: a second one returning at once would let its caller go on
                // while the handler in progress still runs.
                // An interrupted caller waits all the same, bounded, and gets its interrupt back, as the schedulers'
                // close() does: no handler of this subscription runs once this has returned.
                long deadline = System.nanoTime() + Scheduler.CLOSE_WAIT.toNanos();
                boolean interrupted = false;
                for (long left = Scheduler.CLOSE_WAIT.toNanos(); left > 0 && worker.isAlive();
                        left = deadline - System.nanoTime()) {
                    try {
                        TimeUnit.NANOSECONDS.timedJoin(worker, left);
                    } catch (InterruptedException e) {
                        interrupted = true;
                    }
                }
                if (interrupted) {
                    Thread.currentThread().interrupt();
                }
            }
        }
    }

    /** Builds an {@link InMemoryTransport}; not thread-safe. */
    public static final class Builder {
        private int partitions = 4;
        private long maxRecordsPerPartition;
        private Duration retention;
        private DeliveryMode mode = DeliveryMode.ASYNC;
        private boolean serializePayloads;
        private Clock clock = Clock.systemUTC();
        private LongSupplier nanoClock = System::nanoTime;

        private Builder() {
        }

        /** Partitions per topic, 1 or more; default 4. */
        public Builder partitions(int partitions) {
            ConfigurationException.require(partitions >= 1, "partitions must be 1 or more, but was %s", partitions);
            this.partitions = partitions;
            return this;
        }

        /** Keep at most this many records per partition (0 = unbounded, the default). */
        public Builder maxRecordsPerPartition(long maxRecords) {
            ConfigurationException.require(maxRecords >= 0, "maxRecordsPerPartition must be 0 or more, but was %s", maxRecords);
            this.maxRecordsPerPartition = maxRecords;
            return this;
        }

        /**
         * Drop records older than this (by the transport's clock), where they are read (delivered, listed, replayed) as
         * well as when a record is appended to their partition; also the replay horizon. Positive; an age threshold,
         * not a delay, so one longer than {@link ConfigurationException#MAX_DURATION} ({@code
         * ChronoUnit.FOREVER.getDuration()}, keeping every record) is taken as that
         * ({@link ConfigurationException#requirePositiveAge}).
         */
        public Builder retention(Duration retention) {
            this.retention = ConfigurationException.requirePositiveAge(retention, "retention");
            return this;
        }

        public Builder deliveryMode(DeliveryMode mode) {
            this.mode = java.util.Objects.requireNonNull(mode, "mode");
            return this;
        }

        /** Encode payloads to bytes as a network transport would (stricter, slower). */
        public Builder serializePayloads(boolean serialize) {
            this.serializePayloads = serialize;
            return this;
        }

        /** The clock for record timestamps and age-based retention. */
        public Builder clock(Clock clock) {
            this.clock = java.util.Objects.requireNonNull(clock, "clock");
            return this;
        }

        /**
         * Test seam: the clock ({@code nanoTime}) a failed record's wait is measured on, so that a test ends the wait
         * when it chooses rather than after real time.
         */
        Builder nanoClock(LongSupplier nanoClock) {
            this.nanoClock = java.util.Objects.requireNonNull(nanoClock, "nanoClock");
            return this;
        }

        public InMemoryTransport build() {
            return new InMemoryTransport(this);
        }
    }
}
