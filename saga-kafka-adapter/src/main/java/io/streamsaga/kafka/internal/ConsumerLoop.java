package io.streamsaga.kafka.internal;

import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.TopicPattern;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.spi.PendingDelivery;
import io.streamsaga.spi.RecordHandler;
import io.streamsaga.spi.RedeliverLater;
import io.streamsaga.spi.TransportRecord;
import org.apache.kafka.clients.consumer.CommitFailedException;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.Callback;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.InterruptException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.RebalanceInProgressException;
import org.apache.kafka.common.errors.RetriableException;
import org.apache.kafka.common.errors.TransactionAbortedException;
import org.apache.kafka.common.errors.WakeupException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.LongSupplier;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * One consumer group member: a thread that polls one {@link Consumer} and hands each record to the bus's
 * {@link RecordHandler}, one at a time, in offset order per partition.
 *
 * <p>Offsets are committed only for records whose handler returned (the bus returns once the record is
 * handled or dead-lettered): asynchronously after each poll batch, synchronously when partitions are
 * revoked and on close. In plain mode with the transport's {@code awaitPublishesPerBatch} the bus hands the loop the
 * rest of a delivery whose handler's publishes are in flight, and a batch's offsets are committed only past records
 * whose rest finished ({@link #handleBatchFinishingLater}). When the handler throws (an exception, or an {@link Error} the bus passed on, which
 * is redelivered as by the in-memory transport rather than ending the thread), the consumer seeks back to
 * that record and pauses only its partition for the redelivery backoff; other partitions keep flowing. In
 * exactly-once mode each poll batch runs in one producer transaction that also carries the consumed
 * offsets (and the positions the poll moved past records it did not return; when it returned none, they are
 * committed in a transaction of their own: never with a plain commit), so outputs and progress commit or
 * abort together (a close commits the records its handlers finished, as in plain mode); a batch whose
 * transaction fails to commit is handled again after the redelivery backoff, but a commit that timed out
 * (the producer's {@code max.block.ms}) is retried, since it may still complete and Kafka refuses an abort
 * then. A batch open longer than the producer's {@code transaction.timeout.ms} since its first send (which
 * the broker aborts, fencing the producer's epoch) is not committed but aborted, logged and handled again:
 * that abort gives the producer a new epoch, which the coordinator refuses once another producer has taken
 * the transactional id, so only such a fence stops the member (at {@code transaction.version} 1 it refuses
 * it after a timeout too: see {@link TransactionalProducers}). A record its handler
 * {@linkplain RedeliverLater#declined declined} is no failure: the offset committed for its partition is the
 * record's own (past the markers before it), and in exactly-once mode the batch's transaction commits the
 * other records; the record is delivered again after its delay.
 *
 * <p>Thread-safety: the consumer is used only by the loop thread (and by the constructor before it
 * starts); {@link #close()} and {@link #awaitAssignment} may be called from any thread.
 */
public final class ConsumerLoop implements Runnable {
    private static final Logger log = LoggerFactory.getLogger(ConsumerLoop.class);

    private final String group;
    private final TopicPattern pattern;
    private final StartPosition start;
    private final RecordHandler handler;
    private final Consumer<String, byte[]> consumer;
    private final TransactionalProducers producers;
    /** Replaced only after a transaction timeout the coordinator did not let it abort; loop thread only. */
    private Producer<String, byte[]> transactionalProducer;
    private final ThreadLocal<Transaction> currentTransaction;
    /**
     * Plain mode with the transport's {@code awaitPublishesPerBatch}: where the loop publishes the batch's deferred
     * deliveries while it delivers a record, so that the transport can take the rest of a delivery
     * ({@code Transport.finishLater}); null otherwise (the bus waits for each record's publishes).
     */
    private final ThreadLocal<DeferredDeliveries> currentDeferrals;
    private final Duration pollTimeout;
    private final Duration redeliveryBackoff;
    /** The clock ({@code nanoTime}) redelivery waits are measured on: a test seam, System::nanoTime otherwise. */
    private final LongSupplier nanoClock;
    /** How long closing waits for this loop's thread, and what its consumer's and producer's close get. */
    private final Duration closeTimeout;
    /** What a synchronous commit on revoke, and of a LATEST start at the assignment, waits at most. */
    private final Duration requestTimeout;
    private final Set<String> topicsBeforeSubscribe;
    private final Map<TopicPartition, Long> latestStarts;

    private final CountDownLatch assigned = new CountDownLatch(1);
    private final CountDownLatch stopped = new CountDownLatch(1);
    private final CompletableFuture<Void> finished = new CompletableFuture<>();
    private final Map<TopicPartition, OffsetAndMetadata> processed = new HashMap<>();
    private final Map<TopicPartition, Long> pausedUntilNanos = new HashMap<>();
    /** Each assigned partition's position once the assignment positioned it; loop thread only. */
    private final Map<TopicPartition, Long> assignedAt = new HashMap<>();
    /**
     * Assigned partitions whose assignment could not position them (reading their committed offsets failed,
     * retriable): paused, so nothing is fetched from a position Kafka chose, until a later turn of the loop
     * positions them; loop thread only.
     */
    private final Set<TopicPartition> unpositioned = new HashSet<>();
    /**
     * Assigned partitions whose start is set (sought, or left to their committed offset) but whose position Kafka
     * could not tell in time (their leader unavailable, a reset or validation unanswered): paused, so nothing is
     * fetched or committed for them, until a later turn of the loop finds it told; true for one whose
     * {@link StartPosition#LATEST} start is to be committed then. Loop thread only.
     */
    private final Map<TopicPartition, Boolean> unresolved = new HashMap<>();
    /**
     * The partitions revoked in the rebalance under way whose handler is not told to forget them yet, each with the
     * group generation it was revoked at and its wait for a redelivery: an eager assignor (Kafka's
     * {@code RangeAssignor}, the first of its default list) revokes every partition at every rebalance and may give
     * some straight back, and no other member had such a one meanwhile (under an eager protocol nobody consumes
     * between the revoke and the assignment), so what the handler learnt of it holds, and so does its wait: forgetting
     * it there restarted a too-large dead letter's steps at every rebalance, and dropping the wait redelivered the
     * record at once, its retries used up without their backoff. The assignment that ends the rebalance keeps those
     * and tells the handler to forget the others (see {@link #keepGivenBackForgetOthers}); loop thread only.
     */
    private final Map<TopicPartition, Revoked> revokedUntold = new HashMap<>();
    /** Exactly-once: the partitions of the last committed transaction that carried offsets; loop thread only. */
    private Set<TopicPartition> lastTransactionPartitions = Set.of();
    private volatile boolean running = true;
    /** The unexpected error that ended the loop (not one while closing), or null. */
    private volatile Throwable failure;
    private volatile Thread thread;
    /** Set by the first {@link #stop()} that wakes the consumer: a later one would wake a closed consumer. */
    private final AtomicBoolean wokenUp = new AtomicBoolean();

    /**
     * @param transactionalProducer  a producer with transactions initialised for exactly-once mode, or null
     * @param producers              where that producer came from: its {@code transaction.timeout.ms} (a batch
     *                               open longer since its first send is aborted rather than committed), and a
     *                               new one after a timeout; null when {@code transactionalProducer} is
     * @param currentTransaction     where the loop publishes its transaction while a handler runs, so sends from
     *                               the handler join it
     * @param closeTimeout           how long {@link #close()} waits for the thread before interrupting it (and
     *                               again after), the timeout the consumer's and producer's own close get, and
     *                               what the final commit of the handled records waits at most
     * @param requestTimeout         what a synchronous commit on revoke, and of a {@link StartPosition#LATEST}
     *                               start at the assignment, waits at most (without one, Kafka's
     *                               {@code commitSync} waits up to {@code default.api.timeout.ms})
     * @param topicsBeforeSubscribe  topics that existed when the subscription started; a group with no
     *                               committed offset starts at their end for {@link StartPosition#LATEST},
     *                               and at the beginning of any topic created later
     * @param latestStarts           for {@link StartPosition#LATEST}, the end offsets of those topics' partitions
     *                               read before the member started, so that what is published after subscribe
     *                               returned is delivered also when the assignment comes later; a partition not
     *                               in it (added to its topic since) starts at its beginning, as a topic created
     *                               since does
     */
    public ConsumerLoop(String group, TopicPattern pattern, StartPosition start, RecordHandler handler,
                        Consumer<String, byte[]> consumer, Producer<String, byte[]> transactionalProducer,
                        TransactionalProducers producers, ThreadLocal<Transaction> currentTransaction, Duration pollTimeout,
                        Duration redeliveryBackoff, Duration closeTimeout, Duration requestTimeout,
                        Set<String> topicsBeforeSubscribe, Map<TopicPartition, Long> latestStarts) {
        this(group, pattern, start, handler, consumer, transactionalProducer, producers, currentTransaction, pollTimeout,
                redeliveryBackoff, closeTimeout, requestTimeout, topicsBeforeSubscribe, latestStarts, System::nanoTime);
    }

    /**
     * As {@link #ConsumerLoop(String, TopicPattern, StartPosition, RecordHandler, Consumer, Producer,
     * TransactionalProducers, ThreadLocal, Duration, Duration, Duration, Duration, Set, Map)}, with the clock
     * ({@code nanoTime}) the waits for redeliveries are measured on, so that a test can end one.
     */
    public ConsumerLoop(String group, TopicPattern pattern, StartPosition start, RecordHandler handler,
                        Consumer<String, byte[]> consumer, Producer<String, byte[]> transactionalProducer,
                        TransactionalProducers producers, ThreadLocal<Transaction> currentTransaction, Duration pollTimeout,
                        Duration redeliveryBackoff, Duration closeTimeout, Duration requestTimeout,
                        Set<String> topicsBeforeSubscribe, Map<TopicPartition, Long> latestStarts, LongSupplier nanoClock) {
        this(group, pattern, start, handler, consumer, transactionalProducer, producers, currentTransaction, pollTimeout,
                redeliveryBackoff, closeTimeout, requestTimeout, topicsBeforeSubscribe, latestStarts, nanoClock, null);
    }

    /**
     * As {@link #ConsumerLoop(String, TopicPattern, StartPosition, RecordHandler, Consumer, Producer,
     * TransactionalProducers, ThreadLocal, Duration, Duration, Duration, Duration, Set, Map, LongSupplier)}; in plain
     * mode with {@code currentDeferrals} (null otherwise), the handlers' publishes are awaited once per poll batch:
     * the loop sets it while it delivers a record, the transport hands it the rest of a delivery whose publishes are
     * in flight, and the loop finishes those before it commits past them ({@link #handleBatchFinishingLater}).
     */
    public ConsumerLoop(String group, TopicPattern pattern, StartPosition start, RecordHandler handler,
                        Consumer<String, byte[]> consumer, Producer<String, byte[]> transactionalProducer,
                        TransactionalProducers producers, ThreadLocal<Transaction> currentTransaction, Duration pollTimeout,
                        Duration redeliveryBackoff, Duration closeTimeout, Duration requestTimeout,
                        Set<String> topicsBeforeSubscribe, Map<TopicPartition, Long> latestStarts, LongSupplier nanoClock,
                        ThreadLocal<DeferredDeliveries> currentDeferrals) {
        if (currentDeferrals != null && transactionalProducer != null) {
            throw new IllegalArgumentException("deferred deliveries are for plain mode: exactly-once mode commits a"
                    + " batch's publishes in its transaction");
        }
        this.currentDeferrals = currentDeferrals;
        this.group = group;
        this.pattern = pattern;
        this.start = start;
        this.handler = handler;
        this.consumer = consumer;
        this.transactionalProducer = transactionalProducer;
        this.producers = producers;
        this.currentTransaction = currentTransaction;
        this.pollTimeout = pollTimeout;
        this.redeliveryBackoff = redeliveryBackoff;
        this.nanoClock = nanoClock;
        this.closeTimeout = closeTimeout;
        this.requestTimeout = requestTimeout;
        this.topicsBeforeSubscribe = Set.copyOf(topicsBeforeSubscribe);
        this.latestStarts = Map.copyOf(latestStarts);
    }

    /** The Kafka regex for a wildcard: the same rules as {@link TopicPattern#matches} (no .DLT, no __ topics). */
    public static Pattern kafkaRegex(TopicPattern pattern) {
        return Pattern.compile("(?!__)(?!.*" + Pattern.quote(MessageHeaders.DEAD_LETTER_SUFFIX) + "$)" + pattern.toRegex());
    }

    /** Starts the loop on a new thread with the given name. */
    public void start(String threadName) {
        Thread t = new MemberThread(this, threadName, group);
        t.setDaemon(true);
        thread = t;
        t.start();
    }

    /**
     * Whether the caller runs on the thread of a member of {@code group}, of any transport in this JVM (inside
     * one of its handlers, or in something a handler called): that member polls again, and so lets the group
     * rebalance, only once the caller returns. Answered from the thread itself, so that a transport sees the
     * members other transports started; by group name, so a member of a namesake group on another cluster
     * counts too.
     */
    public static boolean runsAMemberOf(String group) {
        return Thread.currentThread() instanceof MemberThread member && member.group.equals(group);
    }

    /** A loop's thread, which knows its member's group. */
    private static final class MemberThread extends Thread {
        private final String group;

        MemberThread(Runnable loop, String name, String group) {
            super(loop, name);
            this.group = group;
        }
    }

    /**
     * Waits until the first partition assignment (possibly empty) has completed and positions are fixed; a timeout
     * longer than {@link ConfigurationException#MAX_DURATION} is taken as that (toNanos would overflow).
     */
    public boolean awaitAssignment(Duration timeout) throws InterruptedException {
        long nanos = timeout.compareTo(ConfigurationException.MAX_DURATION) > 0 ? Long.MAX_VALUE : timeout.toNanos();
        return assigned.await(nanos, TimeUnit.NANOSECONDS);
    }

    public boolean isRunning() {
        return running && stopped.getCount() > 0;
    }

    /**
     * The error that ended the loop when it was not closing (Kafka's poll refusing the member's credentials, say),
     * or null; set before {@link #awaitAssignment} returns for a loop that ended so before its first assignment.
     */
    public Throwable failure() {
        return failure;
    }

    /**
     * Completes once the loop has ended and released its consumer and producer: after {@link #close} from
     * another thread returns, or later, when the loop was closed from inside its handler (or could not be
     * stopped within the timeout).
     */
    public CompletionStage<Void> finished() {
        return finished;
    }

    @Override
    public void run() {
        try {
            Listener listener = new Listener();
            if (pattern.isWildcard()) {
                consumer.subscribe(kafkaRegex(pattern), listener);
            } else {
                consumer.subscribe(List.of(pattern.pattern()), listener);
            }
            while (running) {
                if (!positionPostponed(Duration.ZERO)) {
                    continue; // close() woke us, and the attempt consumed the wakeup: no poll, it would not be cut short
                }
                resumeDuePartitions();
                ConsumerRecords<String, byte[]> records;
                try {
                    records = consumer.poll(pollTimeout);
                } catch (WakeupException e) {
                    continue; // close() woke us; the loop condition decides
                }
                if (transactionalProducer == null) {
                    if (!records.isEmpty()) {
                        handleBatch(records);
                    }
                    if (running) {
                        commitPositionsMovedWithoutRecords(records);
                    }
                } else {
                    // moved positions go into the transaction: a plain commit could replace a later one of it
                    Map<TopicPartition, OffsetAndMetadata> moved = running
                            ? positionsMovedWithoutRecords(records) : Map.of();
                    if (!records.isEmpty() || !moved.isEmpty()) {
                        handleBatchInTransaction(records, moved);
                    }
                }
            }
        } catch (InterruptException | WakeupException e) {
            log.debug("consumer of group {} on {} interrupted while closing", group, pattern);
        } catch (Throwable e) {
            if (running) {
                failure = e;
                log.error("consumer of group {} on {} stopped by an unexpected error", group, pattern, e);
            }
        } finally {
            running = false;
            shutdown();
            stopped.countDown();
            finished.complete(null);
        }
    }

    private void handleBatch(ConsumerRecords<String, byte[]> records) throws InterruptedException {
        Map<TopicPartition, OffsetAndMetadata> toCommit = new HashMap<>();
        if (currentDeferrals != null) {
            try {
                handleBatchFinishingLater(records, toCommit);
            } finally {
                commitAsync(toCommit); // also when closing is interrupted: what finished is committed
            }
            return;
        }
        for (TopicPartition partition : records.partitions()) {
            // The next offset to commit is recorded once per partition, after its handled records, rather
            // than per record: nothing reads it before this batch ends (revoke and close run on this thread).
            long next = -1;
            List<ConsumerRecord<String, byte[]>> partitionRecords = records.records(partition);
            int handledRecords = 0;
            try {
                for (ConsumerRecord<String, byte[]> record : partitionRecords) {
                    if (!running) {
                        break;
                    }
                    try {
                        deliver(record);
                    } catch (InterruptedException e) {
                        clearInterrupt(record);
                        if (!running) {
                            throw e; // closing
                        }
                        redeliverLater(partition, record.offset(), e);
                        break;
                    } catch (Exception | Error e) {
                        // an Error the bus passed on (not an AssertionError or StackOverflowError) is
                        // redelivered like an exception, as the in-memory transport does: not a dead thread
                        clearInterrupt(record);
                        if (e instanceof RedeliverLater later && later.declined()) {
                            next = record.offset(); // past the markers before it, which no record shows
                        }
                        redeliverLater(partition, record.offset(), e);
                        break;
                    }
                    clearInterrupt(record);
                    next = record.offset() + 1;
                    handledRecords++;
                }
                if (handledRecords == partitionRecords.size()) {
                    next = positionAfter(partition, next);
                }
            } finally {
                markHandled(partition, next, toCommit); // also when stopping: close commits what was handled
            }
        }
        commitAsync(toCommit);
    }

    private void commitAsync(Map<TopicPartition, OffsetAndMetadata> toCommit) {
        if (!toCommit.isEmpty()) {
            consumer.commitAsync(toCommit, (offsets, error) -> {
                if (error != null) {
                    // a later commit, the revoke commit or a redelivery covers it: at-least-once holds
                    log.debug("async offset commit of group {} failed: {}", group, error.toString());
                }
            });
        }
    }

    /**
     * Plain mode, the handlers' publishes awaited once per batch: delivers the batch's records (per partition up to
     * the first whose handling throws, as {@link #handleBatch} does), the rest of each delivery whose publishes are
     * in flight deferred to the transport ({@link DeferredDeliveries}); then finishes those deferred deliveries in
     * offset order per partition, so that the producer sends the batch's publishes together and the loop waits for
     * them about once. The offset committed for a partition never passes a record whose delivery has not finished:
     * at the first that throws (its publish failed and the bus retries it after a backoff, or its dead letter failed)
     * the partition is sought back to that record and paused as for a failed handling, and the records after it,
     * handled already, are delivered again (at-least-once: their publishes are made again, after those of the first
     * time and possibly before the failed record's retried ones). While closing the deliveries made so far are still
     * finished (their waits bounded by the producer's {@code delivery.timeout.ms}, or cut by closing's interrupt,
     * which leaves the rest unfinished and uncommitted), so that the final commit covers them.
     */
    private void handleBatchFinishingLater(ConsumerRecords<String, byte[]> records,
                                           Map<TopicPartition, OffsetAndMetadata> toCommit) throws InterruptedException {
        DeferredDeliveries deferrals = new DeferredDeliveries();
        List<PartitionPass> passes = new ArrayList<>(records.partitions().size());
        InterruptedException closing = null;
        currentDeferrals.set(deferrals);
        try {
            outer:
            for (TopicPartition partition : records.partitions()) {
                List<ConsumerRecord<String, byte[]>> partitionRecords = records.records(partition);
                PartitionPass pass = new PartitionPass(partition, partitionRecords.size());
                passes.add(pass);
                for (ConsumerRecord<String, byte[]> record : partitionRecords) {
                    if (!running) {
                        break outer;
                    }
                    deferrals.delivering(pass, record.offset());
                    try {
                        deliver(record);
                    } catch (InterruptedException e) {
                        clearInterrupt(record);
                        if (!running) {
                            closing = e;
                            break outer;
                        }
                        pass.failed(record.offset(), e);
                        break;
                    } catch (Exception | Error e) {
                        clearInterrupt(record); // an Error the bus passed on is redelivered, as in handleBatch
                        pass.failed(record.offset(), e);
                        break;
                    } finally {
                        deferrals.delivering(null, -1);
                    }
                    clearInterrupt(record);
                    pass.handled(record.offset());
                }
            }
        } finally {
            currentDeferrals.remove();
        }
        for (PartitionPass pass : passes) {
            if (closing == null) {
                closing = finish(pass);
            }
            // not past the first unfinished deferred delivery (all of them once closing was interrupted)
            long next = pass.next;
            if (!pass.deferred.isEmpty()) {
                next = pass.deferred.get(0).offset();
            }
            if (next >= 0 && pass.deferred.isEmpty() && pass.failedOffset < 0 && pass.handled == pass.size) {
                next = positionAfter(pass.partition, next);
            }
            markHandled(pass.partition, next, toCommit);
        }
        if (closing != null) {
            throw closing;
        }
    }

    /**
     * Finishes {@code pass}'s deferred deliveries in offset order, removing each finished one; at the first that
     * throws, seeks the partition back to its record and pauses it (see {@link #redeliverLater}), the others left
     * unfinished. When none throws, a record whose handling threw in the first pass is redelivered. Returns closing's
     * interrupt when it cut a wait short, else null.
     */
    private InterruptedException finish(PartitionPass pass) {
        while (!pass.deferred.isEmpty()) {
            Deferred deferred = pass.deferred.get(0);
            if (pass.failedOffset >= 0 && deferred.offset() >= pass.failedOffset) {
                break; // the record's handling threw after all: redelivered below, as it is
            }
            try {
                deferred.rest().finish();
            } catch (InterruptedException e) {
                Thread.interrupted();
                if (!running) {
                    return e;
                }
                redeliverLater(pass.partition, deferred.offset(), e);
                return null;
            } catch (Exception | Error e) {
                Thread.interrupted();
                redeliverLater(pass.partition, deferred.offset(), e);
                return null;
            }
            pass.deferred.remove(0);
        }
        pass.deferred.clear();
        if (pass.failedOffset >= 0 && running) {
            redeliverLater(pass.partition, pass.failedOffset, pass.failure);
        }
        return null;
    }

    /**
     * One partition's records of a batch in {@link #handleBatchFinishingLater}: how far their handling got, and the
     * deliveries deferred to it; loop thread only.
     */
    private static final class PartitionPass {
        private final TopicPartition partition;
        private final int size;
        /** The offset after the last record whose handler returned, or -1. */
        private long next = -1;
        private int handled;
        /** The record whose handling threw, or -1, and what it threw. */
        private long failedOffset = -1;
        private Throwable failure;
        private final List<Deferred> deferred = new ArrayList<>();

        PartitionPass(TopicPartition partition, int size) {
            this.partition = partition;
            this.size = size;
        }

        void handled(long offset) {
            next = offset + 1;
            handled++;
        }

        void failed(long offset, Throwable error) {
            failedOffset = offset;
            failure = error;
            if (error instanceof RedeliverLater later && later.declined()) {
                next = offset; // past the markers before it, which no record shows
            }
        }
    }

    /** The rest of the delivery of the record at {@code offset}, deferred by its handler's bus. */
    private record Deferred(long offset, PendingDelivery rest) {
    }

    /**
     * Where the transport hands the loop the rest of a delivery ({@code Transport.finishLater}) while the loop
     * delivers a record in plain mode with the handlers' publishes awaited per batch; reached through the transport's
     * thread-local, on the loop thread only.
     */
    public static final class DeferredDeliveries {
        private PartitionPass pass;
        private long offset;

        DeferredDeliveries() {
        }

        void delivering(PartitionPass pass, long offset) {
            this.pass = pass;
            this.offset = offset;
        }

        /**
         * Takes {@code rest}, the rest of the delivery of the record being delivered, to finish it before the batch's
         * offsets are committed; false outside a delivery (a hook run after it, say), when the caller waits itself.
         */
        public boolean defer(PendingDelivery rest) {
            if (pass == null) {
                return false;
            }
            pass.deferred.add(new Deferred(offset, rest));
            return true;
        }
    }

    /**
     * The offset to commit once every record a poll returned for {@code partition} was handled: the
     * consumer's position, when it passed a transaction's commit marker or aborted records after the last
     * record (otherwise the group's lag would stay above zero for ever); else {@code next}.
     */
    private long positionAfter(TopicPartition partition, long next) {
        Long position = positionNow(partition);
        return position == null ? next : Math.max(position, next);
    }

    /**
     * The consumer's position of {@code partition}, or null when it cannot tell it now. A valid position is a
     * lookup (so asking after every poll for every assigned partition costs about what the poll itself spends on
     * each); one that awaits validation (the partition's leader changed) or a reset is not: {@code position}
     * without a timeout then blocks the loop up to {@code default.api.timeout.ms}, and throws a
     * {@code TimeoutException} that ended the member, where its poll rides that out. The next poll settles it,
     * and a later check sees where it moved.
     */
    private Long positionNow(TopicPartition partition) {
        try {
            return consumer.position(partition, Duration.ZERO);
        } catch (org.apache.kafka.common.errors.TimeoutException e) {
            return null;
        }
    }

    /**
     * Plain mode: commits {@link #positionsMovedWithoutRecords} asynchronously, as a batch's handled records are.
     */
    private void commitPositionsMovedWithoutRecords(ConsumerRecords<String, byte[]> records) {
        Map<TopicPartition, OffsetAndMetadata> moved = positionsMovedWithoutRecords(records);
        if (!moved.isEmpty()) {
            processed.putAll(moved);
            consumer.commitAsync(moved, (offsets, error) -> {
                if (error != null) {
                    log.debug("async offset commit of group {} past records not returned failed: {}", group,
                            error.toString());
                }
            });
        }
    }

    /**
     * The position of each partition a poll moved without returning a record of it: past a transaction's
     * aborted records and its abort marker, or a commit marker fetched on its own ({@code read_committed}).
     * Nothing is handled there, so unless it is committed the group's offset stays before them for ever, its
     * lag above zero and a replay whose target lies past them never catches up. A paused partition (waiting to
     * redeliver) is left alone, and so is one whose position the consumer cannot tell now ({@link #positionNow}):
     * a later poll commits it.
     *
     * <p>Exactly-once mode commits them in its transactions only, never with a plain commit: of a partition's
     * transactional and plain commits, the group coordinator keeps the one appended last to
     * {@code __consumer_offsets}, whatever its offset, so a plain commit made at one poll but appended after
     * the next batch's transactional offsets (it is sent once the coordinator is found again, on another
     * connection than the producer's) would take the group back before that batch, handled again after a
     * rebalance, with its outputs produced a second time.
     */
    private Map<TopicPartition, OffsetAndMetadata> positionsMovedWithoutRecords(ConsumerRecords<String, byte[]> records) {
        Map<TopicPartition, OffsetAndMetadata> moved = new HashMap<>();
        Set<TopicPartition> paused = consumer.paused();
        for (TopicPartition partition : consumer.assignment()) {
            if (records.partitions().contains(partition) || paused.contains(partition)) {
                continue;
            }
            OffsetAndMetadata handled = processed.get(partition);
            Long known = handled != null ? Long.valueOf(handled.offset()) : assignedAt.get(partition);
            if (known == null) {
                continue;
            }
            Long position = positionNow(partition);
            if (position != null && position > known) {
                moved.put(partition, new OffsetAndMetadata(position));
            }
        }
        return moved;
    }

    private void markHandled(TopicPartition partition, long next, Map<TopicPartition, OffsetAndMetadata> toCommit) {
        if (next >= 0) {
            OffsetAndMetadata offset = new OffsetAndMetadata(next);
            processed.put(partition, offset);
            toCommit.put(partition, offset);
        }
    }

    /**
     * Handles {@code records} in one transaction, which also commits the offsets after the handled records and
     * the positions the same poll {@code moved} on partitions it returned no record of (only those when it
     * returned none); on failure the transaction aborts and none of them is committed.
     */
    private void handleBatchInTransaction(ConsumerRecords<String, byte[]> records,
                                          Map<TopicPartition, OffsetAndMetadata> moved) throws InterruptedException {
        Transaction transaction = new Transaction(transactionalProducer);
        try {
            handleBatchInTransaction(records, moved, transaction);
        } finally {
            // after the abort's seeks, before the next poll: what the handlers kept outside Kafka about the batch's
            // deliveries is settled before any of its records is delivered again
            transaction.ended();
        }
    }

    private void handleBatchInTransaction(ConsumerRecords<String, byte[]> records,
                                          Map<TopicPartition, OffsetAndMetadata> moved,
                                          Transaction transaction) throws InterruptedException {
        Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
        // records their handlers declined (RedeliverLater.declined): not failures, redelivered once the batch commits;
        // made at the first, so a batch without one allocates nothing more
        Map<TopicPartition, RedeliverLater> declined = null;
        TopicPartition failedPartition = null;
        Throwable failure = null;
        boolean transactionFailed = false;
        // A producer left in an error state refuses to begin: that failure goes through the same handling as
        // one of the commit (fenced: the member stops; otherwise abort, and the batch is handled again after
        // the backoff), not through the loop's "unexpected error".
        KafkaException beginFailure = null;
        try {
            transactionalProducer.beginTransaction();
        } catch (KafkaException e) {
            beginFailure = e;
        }
        currentTransaction.set(transaction);
        try {
            outer:
            for (TopicPartition partition : records.partitions()) {
                for (ConsumerRecord<String, byte[]> record : records.records(partition)) {
                    if (!running || beginFailure != null) {
                        break outer;
                    }
                    try {
                        deliver(record);
                    } catch (InterruptedException e) {
                        clearInterrupt(record);
                        if (!running) {
                            throw e; // closing
                        }
                        failedPartition = partition;
                        failure = e;
                        break outer;
                    } catch (Exception | Error e) {
                        clearInterrupt(record);
                        if (e instanceof RedeliverLater later && later.declined()) {
                            // the handler did nothing for it: the batch's other records still commit, and the
                            // partition's position up to it (past the markers before it, which no record shows)
                            if (declined == null) {
                                declined = new HashMap<>();
                            }
                            declined.put(partition, later);
                            offsets.put(partition, new OffsetAndMetadata(record.offset()));
                            continue outer;
                        }
                        failedPartition = partition;
                        failure = e;
                        break outer;
                    }
                    clearInterrupt(record);
                    offsets.put(partition, new OffsetAndMetadata(record.offset() + 1));
                }
            }
        } finally {
            currentTransaction.remove();
        }
        // the broker's clock for the timeout starts at the first send (a transaction nothing was sent into starts
        // with its commit, which sends the offsets)
        Duration openFor = transaction.sent
                ? Duration.ofNanos(System.nanoTime() - transaction.firstSendNanos) : Duration.ZERO;
        boolean outlived = openFor.compareTo(producers.transactionTimeout()) >= 0;
        try {
            if (beginFailure != null) {
                throw beginFailure;
            }
            if (failure == null && !outlived) { // also when closing: what the handlers finished commits, as in plain mode
                offsets.replaceAll((partition, offset) -> handledAll(records, partition, offset)
                        ? new OffsetAndMetadata(positionAfter(partition, offset.offset())) : offset);
                offsets.putAll(moved); // partitions without records in this batch
                if (!offsets.isEmpty()) {
                    transactionalProducer.sendOffsetsToTransaction(offsets, consumer.groupMetadata());
                }
                if (commit()) {
                    transaction.committed = true;
                    processed.putAll(offsets);
                    if (!offsets.isEmpty()) {
                        lastTransactionPartitions = Set.copyOf(offsets.keySet());
                    }
                }
                if (running && declined != null) {
                    declined.forEach((partition, later) ->
                            redeliverLater(partition, offsets.get(partition).offset(), later));
                }
                return;
            }
            if (outlived) {
                logTimedOut(openFor);
                transactionFailed = failure == null;
            }
            // After the broker aborted the transaction for its timeout, this also gives the producer a new epoch
            // (committing would fail for good); the coordinator refuses that (ProducerFencedException) when
            // another producer has taken the transactional id since.
            transactionalProducer.abortTransaction();
        } catch (ProducerFencedException e) {
            if (!running) {
                log.debug("transaction of group {} on {} ends with the member: {}", group, pattern, e.toString());
                return; // closing: the broker aborts what it has not aborted yet
            }
            if (!outlived || !producers.abortedForTimeout()) {
                // Another instance with the same transactional id owns these partitions now: this member must
                // stop; its uncommitted outputs are aborted by the broker. (A CommitFailedException only says
                // the group moved the partitions on while this member was busy: it aborts below, and the next
                // poll rejoins the group, as in plain mode.)
                log.warn("consumer of group {} on {} was fenced and stops: {}", group, pattern, e.toString());
                running = false;
                return;
            }
            // transaction.version 1: the coordinator refused the abort of the transaction it aborted for its
            // timeout, but nobody took the id since, so the member goes on with a new producer (its
            // initialisation fences only the old one)
            transactionFailed = failure == null;
            try {
                transactionalProducer.close(Duration.ZERO);
                transactionalProducer = producers.create();
            } catch (RuntimeException createError) {
                log.warn("consumer of group {} on {} cannot create a new transactional producer and stops: {}",
                        group, pattern, createError.toString());
                running = false;
                return;
            }
        } catch (InterruptException e) {
            // Only the second phase of close() interrupts this thread: the member ends as asked. The transaction
            // is not aborted here (an abort on the interrupted thread is interrupted too); the producer's close
            // leaves it to the broker, which commits it (a commit the coordinator received) or aborts it.
            log.debug("transaction of group {} on {} interrupted while closing, left to the broker: {}",
                    group, pattern, e.toString());
            running = false;
            return;
        } catch (KafkaException e) {
            logFailedTransaction(records.isEmpty(), e != beginFailure, e);
            transactionFailed = true;
            try {
                transactionalProducer.abortTransaction();
            } catch (KafkaException abortError) {
                log.warn("consumer of group {} on {} cannot abort{} and stops: {}", group, pattern,
                        abortError instanceof ProducerFencedException ? " (fenced)" : "", abortError.toString());
                running = false;
                return;
            }
        }
        // The whole batch's outputs were aborted: handle it again from its first record.
        for (TopicPartition partition : records.partitions()) {
            List<ConsumerRecord<String, byte[]>> partitionRecords = records.records(partition);
            if (!partitionRecords.isEmpty()) {
                consumer.seek(partition, partitionRecords.get(0).offset());
            }
        }
        if (failedPartition != null && running) {
            // from the partition's first record in the batch, not the failed one: the outputs of the records
            // before it were aborted too, and their offsets were not committed
            redeliverLater(failedPartition, records.records(failedPartition).get(0).offset(), failure);
        } else if (transactionFailed && running) {
            // Every handler returned but the transaction could not commit (say a handler swallowed its own
            // failed publish): handling the batch again at once would spin; it waits for redeliveryBackoff, and
            // so do the moved positions it carried, committed again after that.
            long until = nanoClock.getAsLong() + redeliveryBackoff.toNanos();
            Set<TopicPartition> retried = new HashSet<>(records.partitions());
            retried.addAll(moved.keySet());
            consumer.pause(retried);
            retried.forEach(partition -> pausedUntilNanos.put(partition, until));
        }
        if (declined != null && running) {
            // A declined record's partition, moved back above with the batch, keeps the wait its record asked for
            // (from its first record of the batch, whose delivery was withdrawn too), or the longer one set above.
            long now = nanoClock.getAsLong();
            declined.forEach((partition, later) -> {
                log.debug("group {} redelivers {}@{} after {}: {}", group, partition,
                        records.records(partition).get(0).offset(), later.delay(), String.valueOf(later.getCause()));
                consumer.pause(List.of(partition));
                pausedUntilNanos.merge(partition, now + later.delay().toNanos(),
                        (set, asked) -> set - asked >= 0 ? set : asked);
            });
        }
    }

    /**
     * Commits the batch's transaction; returns false when the member is closing after a commit timed out.
     * A commit not acknowledged within the producer's {@code max.block.ms} fails with a
     * {@code TimeoutException} but may still complete, so Kafka allows only retrying it (an abort is refused
     * with an {@code IllegalStateException}): it is retried until it completes or the member closes, when the
     * producer's close leaves it to the broker (committed, or aborted at the transaction timeout).
     */
    private boolean commit() {
        while (true) {
            try {
                transactionalProducer.commitTransaction();
                return true;
            } catch (org.apache.kafka.common.errors.TimeoutException e) {
                if (!running) {
                    log.debug("commit of the transaction of group {} on {} unacknowledged while closing: {}",
                            group, pattern, e.toString());
                    return false;
                }
                log.warn("commit of the transaction of group {} on {} not acknowledged within the producer's"
                        + " max.block.ms, retrying it: {}", group, pattern, e.toString());
            }
        }
    }

    /**
     * The transaction of the batch a loop is handling, as its handlers' sends reach it (through the transport's
     * thread-local): its producer, and when the first send went into it, which starts the broker's clock for
     * {@code transaction.timeout.ms}. Used by the loop thread only.
     */
    public static final class Transaction {
        private final Producer<String, byte[]> producer;
        private boolean sent;
        private long firstSendNanos;
        private boolean committed;
        /** Pairs of what to run once the transaction committed, and once it did not; made at the first. */
        private List<Runnable> outcomes;
        /** The failures reported to a record of this transaction; guarded by itself, made at the first. */
        private Set<Exception> reported;

        Transaction(Producer<String, byte[]> producer) {
            this.producer = producer;
        }

        /**
         * Runs {@code kept} once this transaction committed, {@code withdrawn} once it aborted or its outcome was left
         * to the broker (see {@code Transport.afterDelivery}); on the loop thread, when the batch's handling ends.
         */
        public void afterOutcome(Runnable kept, Runnable withdrawn) {
            if (outcomes == null) {
                outcomes = new ArrayList<>();
            }
            outcomes.add(kept);
            outcomes.add(withdrawn);
        }

        /**
         * Runs, in the order they were given, the actions for how the transaction ended; each failure is logged (an
         * {@code AssertionError} or {@code StackOverflowError} too, of the action's own making as the bus takes a
         * handler's); any other {@code Error} is thrown once every action ran, so no claim is left unreleased.
         */
        void ended() {
            if (outcomes == null) {
                return;
            }
            List<Runnable> actions = outcomes;
            outcomes = null;
            Error fatal = null;
            for (int i = committed ? 0 : 1; i < actions.size(); i += 2) {
                try {
                    actions.get(i).run();
                } catch (RuntimeException | AssertionError | StackOverflowError e) {
                    // the transaction's outcome stands: a failing action must not change what the loop does
                    log.warn("an action run once a transaction {} failed: {}", committed ? "committed" : "was withdrawn",
                            e.toString());
                } catch (Error e) {
                    if (fatal == null) {
                        fatal = e;
                    } else {
                        fatal.addSuppressed(e);
                    }
                }
            }
            if (fatal != null) {
                throw fatal;
            }
        }

        /** The producer to send a record into this transaction with; notes the first send. */
        public Producer<String, byte[]> producerForSend() {
            if (!sent) {
                sent = true;
                firstSendNanos = System.nanoTime();
            }
            return producer;
        }

        /**
         * {@code callback} for a record sent into this transaction, which gets a failure that is not the record's own
         * but its transaction's as a retriable {@code AbortedWithItsTransactionException} caused by it: an exception
         * another record of the transaction got first (once the broker refused a record, as too large or its topic not
         * authorised, the transaction is in an error state, and the producer's I/O thread aborts the records it has not
         * sent yet with that same exception, the transaction's last error, so a small dead letter sent beside a
         * handler's publish nobody awaits looked too large itself), the {@code TransactionAbortedException} of a
         * record the transaction's abort found unsent, and a {@code ProducerFencedException} (another producer took the
         * transactional id: the member stops, no record was refused for anything of its own). So a non-retriable
         * failure a record reports is its own refusal, which the bus takes for the failure of the handling that
         * published it. Called on the producer's I/O thread (or in {@code send}); thread-safe.
         */
        public Callback reporting(Callback callback) {
            return (metadata, error) -> callback.onCompletion(metadata,
                    error != null && (error instanceof TransactionAbortedException
                            || error instanceof ProducerFencedException || !firstReportOf(error))
                            ? new AbortedWithItsTransactionException(error) : error);
        }

        /**
         * What the producer's {@code send} of a record into this transaction threw, as the record's outcome: a plain
         * {@code KafkaException} with a cause is the transaction's error state (the producer refuses every send once
         * another record's failure left it so, that failure the cause), retriable as in {@link #reporting}; anything
         * else is as thrown.
         */
        public RuntimeException thrownBySend(RuntimeException error) {
            return error.getClass() == KafkaException.class && error.getCause() != null
                    ? new AbortedWithItsTransactionException(error.getCause()) : error;
        }

        private boolean firstReportOf(Exception error) {
            synchronized (this) {
                if (reported == null) {
                    reported = Collections.newSetFromMap(new IdentityHashMap<>());
                }
                return reported.add(error);
            }
        }
    }

    /**
     * A record of a transaction aborted by Kafka's producer for another record's failure, or by the transaction's abort:
     * retriable, as it was not this record's fault and goes through in the member's next transaction (the bus retries a
     * handler whose awaited publish failed so per its policy, and takes a non-retriable failure of a publish left to the
     * transaction for its handling's refusal). Caused by the transaction's error.
     */
    private static final class AbortedWithItsTransactionException extends RetriableException {
        private static final long serialVersionUID = 1L;

        AbortedWithItsTransactionException(Throwable transactions) {
            super("aborted with its transaction, not for a fault of its own (" + transactions + ")", transactions);
        }
    }

    private static boolean handledAll(ConsumerRecords<String, byte[]> records, TopicPartition partition,
                                      OffsetAndMetadata next) {
        List<ConsumerRecord<String, byte[]>> partitionRecords = records.records(partition);
        return next.offset() == partitionRecords.get(partitionRecords.size() - 1).offset() + 1;
    }

    /**
     * Logs a transaction that failed and is aborted: a batch's, handled again after the redelivery backoff, or
     * one of moved positions only, which has no batch and whose positions are committed again after it; while
     * closing, neither is made again by this member (the group's next one resumes at the last committed offsets).
     * One that could not begin (a producer left in an abortable error state) had nothing in it: the abort is of
     * the producer's failed transaction, which lets it begin again, and the batch was not handled yet.
     */
    private void logFailedTransaction(boolean movedPositionsOnly, boolean begun, KafkaException e) {
        String what = movedPositionsOnly
                ? "transaction of group {} on {} committing only positions its poll moved past records it did not return"
                : "transaction of group {} on {}";
        String failed = begun ? " failed" : " could not begin";
        String abort = begun ? ", aborting it" : ", aborting the producer's failed transaction to recover it";
        String then = !running
                ? failed + " while closing" + abort + " (the group's next member resumes at its last committed offsets): {}"
                : movedPositionsOnly
                ? failed + abort + " and committing them" + (begun ? " again" : "") + " after {}: {}"
                : failed + abort + (begun ? " and handling the batch again" : " and handling the batch") + " after {}: {}";
        if (running) {
            log.warn(what + then, group, pattern, redeliveryBackoff, e.toString());
        } else {
            log.warn(what + then, group, pattern, e.toString());
        }
    }

    private void logTimedOut(Duration openFor) {
        log.warn("transaction of group {} on {} was open for {}, longer than the producer's transaction.timeout.ms ({}):"
                        + " the broker aborts it with the batch's outputs, so the batch is handled again"
                        + " (raise transaction.timeout.ms above the slowest batch)",
                group, pattern, openFor, producers.transactionTimeout());
    }

    /**
     * Clears the interrupt a handler left on the thread, which made the next Kafka call throw InterruptException:
     * while running, that ended the member as if closing, and while closing it failed the final commit (in
     * exactly-once mode, the commit of the transaction) of what was handled. Closing stops the loop before it
     * interrupts the thread, and its interrupt has done its work once the handler is out (the loop then stops), so
     * one seen while running is the handler's own (restored after it caught an InterruptedException, say): a
     * warning. Read after the clear, {@code running} is false for closing's interrupt, written before it was sent.
     */
    private void clearInterrupt(ConsumerRecord<String, byte[]> record) {
        if (Thread.interrupted() && running) {
            log.warn("the handler of group {} on {} left its thread interrupted at {}-{}@{}; only closing stops the"
                    + " member, so the interrupt is cleared", group, pattern, record.topic(), record.partition(),
                    record.offset());
        }
    }

    private void deliver(ConsumerRecord<String, byte[]> record) throws Exception {
        Message message = WireFormat.fromRecord(record);
        handler.handle(new TransportRecord(message, group, record.partition(), record.offset()));
    }

    private void redeliverLater(TopicPartition partition, long offset, Throwable error) {
        Duration delay;
        if (error instanceof RedeliverLater later) {
            delay = later.delay(); // the bus between two attempts of its retry policy: expected, not a warning
            log.debug("group {} redelivers {}@{} after {}: {}", group, partition, offset, delay,
                    String.valueOf(later.getCause()));
        } else {
            delay = redeliveryBackoff;
            log.warn("group {} could not handle {}@{}; redelivering after {}: {}", group, partition, offset, delay,
                    error.toString());
        }
        consumer.seek(partition, offset);
        consumer.pause(List.of(partition));
        pausedUntilNanos.put(partition, nanoClock.getAsLong() + delay.toNanos());
    }

    private void resumeDuePartitions() {
        if (pausedUntilNanos.isEmpty()) {
            return;
        }
        long now = nanoClock.getAsLong();
        List<TopicPartition> due = new ArrayList<>();
        for (Iterator<Map.Entry<TopicPartition, Long>> it = pausedUntilNanos.entrySet().iterator(); it.hasNext(); ) {
            Map.Entry<TopicPartition, Long> entry = it.next();
            if (now - entry.getValue() >= 0 && !unpositioned.contains(entry.getKey())
                    && !unresolved.containsKey(entry.getKey())) {
                due.add(entry.getKey());
                it.remove();
            }
        }
        if (!due.isEmpty()) {
            consumer.resume(due);
        }
    }

    /**
     * Stops the loop and waits up to the close timeout for the thread; then interrupts it (a handler stuck in a
     * retry sleep or a blocking call) and waits up to the close timeout again.
     */
    public void close() {
        closeAll(List.of(this), closeTimeout);
    }

    /**
     * Closes {@code loops} together, as {@link #close()} closes one: tells every one to stop first, then waits up
     * to {@code timeout} for all their threads, interrupts those still running and waits up to {@code timeout}
     * again, so that closing many takes no longer than closing one. A loop closed from its own thread (inside
     * its handler) is told to stop and not waited for: it ends after that record.
     */
    public static void closeAll(Collection<ConsumerLoop> loops, Duration timeout) {
        List<ConsumerLoop> running = new ArrayList<>();
        for (ConsumerLoop loop : loops) {
            if (loop.stop()) {
                running.add(loop);
            }
        }
        if (running.isEmpty()) {
            return;
        }
        try {
            if (!joinAll(running, timeout)) {
                running.forEach(loop -> loop.thread.interrupt());
                if (!joinAll(running, timeout)) {
                    for (ConsumerLoop loop : running) {
                        if (loop.thread.isAlive()) {
                            log.warn("consumer thread {} of group {} did not stop within {}", loop.thread.getName(),
                                    loop.group, timeout);
                        }
                    }
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Tells the loop to stop; returns whether its thread, another one than the caller's, is to be waited for. */
    private boolean stop() {
        running = false;
        Thread t = thread;
        if (t == null) {
            shutdown();
            finished.complete(null);
            return false;
        }
        if (t == Thread.currentThread()) {
            return false; // closed from inside a handler: the loop ends after this record
        }
        // Once: a second close only waits for the thread (ended by then, its consumer closed), and one after
        // the thread ended on its own (fenced) has nothing to wake.
        if (stopped.getCount() > 0 && !wokenUp.getAndSet(true)) {
            consumer.wakeup();
        }
        return true;
    }

    /** Waits until every loop's thread has ended or {@code timeout} has passed; returns whether all ended. */
    private static boolean joinAll(List<ConsumerLoop> loops, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        for (ConsumerLoop loop : loops) {
            long left = deadline - System.nanoTime();
            if (left > 0) {
                TimeUnit.NANOSECONDS.timedJoin(loop.thread, left);
            }
        }
        return loops.stream().noneMatch(loop -> loop.thread.isAlive());
    }

    private void shutdown() {
        if (transactionalProducer == null && !processed.isEmpty()) {
            commitHandled(new HashMap<>(processed), closeTimeout, "final offset commit", HANDLED_AGAIN);
            // made once: the consumer's close revokes the partitions, and the revoke commit would make it again, a
            // second request, and after one that timed out another wait of up to requestTimeout past closeTimeout
            processed.clear();
        }
        // after the final commit: its reads may wait pollTimeout, and a close that interrupts them (a pollTimeout
        // longer than closeTimeout) would fail that commit too, the records handled then handled again
        commitPostponedStarts();
        // that was the last attempt, warned about when it failed: not made again when the consumer's close revokes them
        unpositioned.clear();
        unresolved.clear();
        awaitLastTransactionsOffsets();
        try {
            consumer.close(org.apache.kafka.clients.consumer.CloseOptions.timeout(closeTimeout));
        } catch (RuntimeException e) {
            log.debug("closing the consumer of group {} failed: {}", group, e.toString());
        }
        if (transactionalProducer != null) {
            try {
                transactionalProducer.close(closeTimeout);
            } catch (RuntimeException e) {
                log.debug("closing the transactional producer of group {} failed: {}", group, e.toString());
            }
        }
        assigned.countDown(); // nobody waits forever for a member that is gone
    }

    private static final String HANDLED_AGAIN = "those records may be handled again";

    /**
     * A {@link StartPosition#LATEST} member closing while partitions wait to be positioned again ({@link #unpositioned},
     * or {@link #unresolved} with their start to commit) makes one more attempt, each read waiting up to
     * {@link #pollTimeout}, so that their start is committed: {@code close()} landed in a poll between attempts, or
     * its wakeup cut one short (made again once, as the assignment's is). Otherwise a partition whose start
     * {@code subscribe} did not commit (the group had members, or the topic or partition is newer than the
     * subscribe) would start, for the group's next member, at the end as of that member's own subscribe, skipping
     * what was published since this one returned. When Kafka still cannot tell them, that is logged as a warning.
     */
    private void commitPostponedStarts() {
        if (start != StartPosition.LATEST || (unpositioned.isEmpty() && !unresolved.containsValue(true))) {
            return;
        }
        try {
            if (!positionPostponed(pollTimeout)) {
                positionPostponed(pollTimeout); // the wakeup of close() cut the first attempt short, and that consumed it
            }
        } catch (RuntimeException e) { // the second phase of closing interrupted it, or the consumer failed
            log.debug("positioning the waiting partitions of group {} on {} while closing failed: {}", group, pattern,
                    e.toString());
        }
        Set<TopicPartition> untold = new HashSet<>(unpositioned);
        unresolved.forEach((partition, startToCommit) -> {
            if (startToCommit) {
                untold.add(partition);
            }
        });
        if (!untold.isEmpty()) {
            log.warn("group {} on {} closes before Kafka could position {} and commit the start subscribe read there:"
                    + " unless subscribe committed it (a group without members) the group's next member starts at the"
                    + " end as of its own subscribe", group, pattern, untold);
        }
    }

    /**
     * Plain mode: commits the handled records' {@code offsets} (at close, on revoke) with {@link #commitSync},
     * logging a failure as {@code what} failed, with its {@code consequence}.
     */
    private void commitHandled(Map<TopicPartition, OffsetAndMetadata> offsets, Duration timeout, String what,
                               String consequence) {
        try {
            commitSync(offsets, timeout);
        } catch (RuntimeException e) {
            log.warn("{} of group {} on {} failed ({}): {}", what, group, pattern, consequence, e.toString());
        }
    }

    /**
     * Commits {@code offsets} synchronously (plain mode: the final commit of handled records, and the commit on
     * revoke; in both modes a {@link StartPosition#LATEST} group's start), waiting at most {@code timeout}: without
     * one, Kafka's {@code commitSync} waits up to {@code default.api.timeout.ms}, then throws a
     * {@code TimeoutException}. {@link #stop()} wakes the consumer, and when this thread was not in {@code poll}
     * then (inside a handler, or past its last poll), or was in a rebalance listener inside {@code poll}, the
     * wakeup is still pending: the next blocking call, this commit, throws it and so consumes it, and the commit
     * is made again.
     */
    private void commitSync(Map<TopicPartition, OffsetAndMetadata> offsets, Duration timeout) {
        try {
            consumer.commitSync(offsets, timeout);
        } catch (WakeupException e) {
            consumer.commitSync(offsets, timeout);
        }
    }

    /**
     * Exactly-once: waits, up to the close timeout (a warning is logged when that is not enough, or when the
     * second phase of closing interrupts the wait), until the group coordinator has applied the offsets of the
     * member's last committed transaction. {@code commitTransaction} returns before the transaction's markers
     * are written, and until then the broker lists none of those offsets (a listing of the group's offsets with
     * {@code requireStable} skips them too), so a group whose only commits were that transaction looked as if it
     * had none to a listing made right after the member ended ({@code KafkaTransport.consumerGroups}). The
     * consumer's {@code committed} asks for stable offsets and retries until the markers are in. A transaction
     * before the last one that carried offsets is complete: the coordinator lets the producer add offsets to a
     * new one only then.
     */
    private void awaitLastTransactionsOffsets() {
        if (transactionalProducer == null || lastTransactionPartitions.isEmpty()) {
            return;
        }
        try {
            try {
                consumer.committed(lastTransactionPartitions, closeTimeout);
            } catch (WakeupException e) {
                consumer.committed(lastTransactionPartitions, closeTimeout); // the wakeup stop() left pending
            }
        } catch (RuntimeException e) {
            log.warn("offsets of the last transaction of group {} on {} not confirmed as committed within {}:"
                    + " until its markers are written the broker lists none of them, so a consumerGroups listing"
                    + " made meanwhile may miss the group: {}", group, pattern, closeTimeout, e.toString());
        }
    }

    /**
     * Positions {@code partitions} (see {@link #position}); when Kafka cannot tell their committed offsets now (a
     * {@code TimeoutException} after {@code default.api.timeout.ms}, the coordinator moving: any retriable error),
     * pauses them and leaves them to {@link #positionPostponed} at the loop's next turn, as the poll loop rides out
     * a position it cannot tell, instead of letting the error end the member; so are, each on its own, those whose
     * position Kafka cannot tell in time, while the others are consumed. Paused, they fetch nothing from where
     * Kafka would start them on its own ({@code auto.offset.reset}, or the end of a new {@code LATEST} group's
     * partition as of now).
     *
     * @param wait how long each of Kafka's reads may wait: null for its own {@code default.api.timeout.ms} (the
     *             assignment), {@link #pollTimeout} when positioning postponed partitions again, so that a read
     *             failing again does not stall the member's other partitions (cooperative or KIP-848 assignment)
     *             for that long at every turn of the loop
     */
    private void positionOrPostpone(Collection<TopicPartition> partitions, Duration wait) {
        Set<TopicPartition> toPosition = Set.copyOf(partitions);
        try {
            position(toPosition, wait);
        } catch (RetriableException | CommitFailedException | RebalanceInProgressException e) {
            postpone(toPosition, e);
            return;
        }
        boolean wasPostponed = unpositioned.removeAll(toPosition);
        List<TopicPartition> waiting = toPosition.stream().filter(unresolved::containsKey).toList();
        if (!waiting.isEmpty()) {
            consumer.pause(waiting);
            if (wait == null) {
                log.warn("group {} on {}: Kafka could not tell the positions of its assigned partitions {} in time;"
                        + " they stay paused until it does, the others are consumed", group, pattern, waiting);
            } else { // warned about when postponed; a pollTimeout is short for a lookup, the next turns ask again
                log.debug("group {} on {}: Kafka could not tell the positions of its assigned partitions {} within {};"
                        + " they stay paused until it does", group, pattern, waiting, wait);
            }
        }
        if (wasPostponed) {
            consumer.resume(toPosition.stream().filter(partition -> !unresolved.containsKey(partition)
                    && !pausedUntilNanos.containsKey(partition)).toList());
        }
    }

    /**
     * Leaves {@code partitions}, which Kafka could not position (or commit the start of, a rebalance's refusal
     * included), to be positioned again
     * before each poll: paused, so nothing is fetched from a position Kafka chose, or consumed before its start
     * is committed. The first failure is a warning, one again debug; so is one while closing, which polls no more
     * (its last attempt warns about what it could not position: {@link #commitPostponedStarts}).
     */
    private void postpone(Set<TopicPartition> partitions, KafkaException e) {
        boolean again = unpositioned.containsAll(partitions);
        unpositioned.addAll(partitions);
        unresolved.keySet().removeAll(partitions);
        consumer.pause(partitions);
        if (!running) {
            log.debug("group {} on {} could not position its assigned partitions {} while closing ({})", group, pattern,
                    partitions, e.toString());
        } else if (again) {
            log.debug("group {} on {} could not position its assigned partitions {} again ({}); they stay paused",
                    group, pattern, partitions, e.toString());
        } else {
            log.warn("group {} on {} could not position its assigned partitions {} ({}); they stay paused and are"
                    + " positioned again before each poll, each attempt waiting up to {}", group, pattern,
                    partitions, e.toString(), pollTimeout);
        }
    }

    /**
     * Positions again the assigned partitions whose assignment could not ({@link #positionOrPostpone}), and asks
     * for the positions Kafka could not tell then, waiting up to {@code untoldWait}: zero in the loop (its polls
     * drive their resolution, so that waiting for them does not hold back the member's other partitions), a
     * {@link #pollTimeout} when closing (no poll drives them any more); each is resumed once told. Once none is
     * left, the first assignment counts as complete. Returns false when a wakeup from {@link #close()} ended the
     * attempt: the blocking call that threw it consumed it, so the loop condition decides before any poll.
     */
    private boolean positionPostponed(Duration untoldWait) {
        if (unpositioned.isEmpty() && unresolved.isEmpty()) {
            return true;
        }
        try {
            if (!unpositioned.isEmpty()) {
                positionOrPostpone(new HashSet<>(unpositioned), pollTimeout);
            }
            tellUnresolved(untoldWait);
        } catch (WakeupException e) {
            return false;
        }
        if (unpositioned.isEmpty() && unresolved.isEmpty()) {
            assigned.countDown();
        }
        return true;
    }

    /**
     * Resumes each {@link #unresolved} partition whose position Kafka tells, committing its LATEST start (within
     * {@link #pollTimeout}; one Kafka does not commit in time is {@link #postpone postponed}). Kafka is given up to
     * {@code wait} to tell one (its position without a wait is only one already valid when asked); after one such
     * wait ran out, the others are only asked, as in {@link #position}.
     */
    private void tellUnresolved(Duration wait) {
        List<TopicPartition> told = new ArrayList<>();
        Map<TopicPartition, OffsetAndMetadata> starts = new HashMap<>();
        Duration ask = wait;
        for (Iterator<Map.Entry<TopicPartition, Boolean>> it = unresolved.entrySet().iterator(); it.hasNext(); ) {
            Map.Entry<TopicPartition, Boolean> entry = it.next();
            Long position = positionWithin(entry.getKey(), ask);
            if (position == null) {
                ask = Duration.ZERO;
            } else {
                it.remove();
                assignedAt.put(entry.getKey(), position);
                told.add(entry.getKey());
                if (entry.getValue()) {
                    starts.put(entry.getKey(), new OffsetAndMetadata(position));
                }
            }
        }
        if (told.isEmpty()) {
            return;
        }
        boolean startsCommitted = false;
        if (!starts.isEmpty()) {
            try {
                startsCommitted = commitStarts(starts, pollTimeout);
            } catch (RetriableException | CommitFailedException | RebalanceInProgressException e) {
                postpone(starts.keySet(), e);
                told.removeAll(starts.keySet());
            }
        }
        if (told.isEmpty()) {
            return;
        }
        consumer.resume(told.stream().filter(partition -> !pausedUntilNanos.containsKey(partition)).toList());
        if (running) {
            log.info("group {} on {}: Kafka now tells the positions of {}, which are consumed again", group, pattern, told);
        } else { // closing's last attempt: nothing is consumed any more, it was for the start
            log.info("group {} on {} as the member closes: Kafka now tells the positions of {}{}", group, pattern, told,
                    startsCommitted ? "; the start subscribe read is committed on " + starts.keySet() : "");
        }
    }

    /**
     * Positions the assigned partitions; a LATEST group commits its start on those it had none for. A partition
     * whose position Kafka cannot tell in time is left {@link #unresolved} (after one such wait, the others are only
     * asked: one wait per partition could hold the member past {@code max.poll.interval.ms}). Kafka's reads wait
     * up to {@code wait}, or its {@code default.api.timeout.ms} when that is null; the start commit up to
     * {@link #requestTimeout} then, else {@link #pollTimeout} (a commit that takes longer may still land: the
     * next attempt reads it as committed). A retriable failure of any of them (a read or the commit not answered
     * in time), and the commit's refusal for a rebalance, is thrown.
     */
    private void position(Collection<TopicPartition> partitions, Duration wait) {
        Set<TopicPartition> fresh = new HashSet<>(partitions);
        Map<TopicPartition, OffsetAndMetadata> committed = wait == null
                ? consumer.committed(new HashSet<>(partitions)) : consumer.committed(new HashSet<>(partitions), wait);
        committed.forEach((partition, offset) -> {
            if (offset != null) {
                fresh.remove(partition);
            }
        });
        List<TopicPartition> toBeginning = new ArrayList<>();
        for (TopicPartition partition : fresh) {
            // LATEST means "published after the subscription": a topic created since then is read whole, and
            // so is a partition added to a topic since (subscribe read the end of every partition there was).
            Long end = start == StartPosition.LATEST && topicsBeforeSubscribe.contains(partition.topic())
                    ? latestStarts.get(partition) : null;
            if (end != null) {
                consumer.seek(partition, end); // past retention: auto.offset.reset (earliest)
            } else {
                toBeginning.add(partition);
            }
        }
        if (!toBeginning.isEmpty()) {
            consumer.seekToBeginning(toBeginning);
        }
        boolean waited = false;
        Map<TopicPartition, OffsetAndMetadata> starts = new HashMap<>();
        for (TopicPartition partition : partitions) {
            // resolve lazy seeks now, so "assigned" means positioned
            Long position = waited ? positionNow(partition) : positionWithin(partition, wait);
            boolean startToCommit = start == StartPosition.LATEST && fresh.contains(partition);
            if (position == null) {
                waited = true;
                unresolved.put(partition, startToCommit);
                continue;
            }
            unresolved.remove(partition);
            assignedAt.put(partition, position);
            if (startToCommit) {
                starts.put(partition, new OffsetAndMetadata(position));
            }
        }
        if (!starts.isEmpty()) {
            commitStarts(starts, wait == null ? requestTimeout : pollTimeout);
        }
    }

    /**
     * Commits a LATEST group's start: a later member (after a rebalance, a close or a crash) resumes there rather
     * than at a newer end, which would skip records never handled. That includes the beginning of a topic created
     * after the subscription: for a member that subscribed later the topic existed, and it would start at its end.
     * A retriable failure (not committed within {@code timeout}, the coordinator moving) is thrown, so that the
     * partitions wait to be positioned again, their start committed before they are consumed; so is a refusal for a
     * rebalance ({@code RebalanceInProgressException} while the group rebalances, {@code CommitFailedException}
     * once its generation moved on), which the next poll's rejoin settles: the partitions are revoked then (and
     * positioned anew if assigned again) or kept, and then committed at the next attempt. Consumed before then, a
     * partition the rebalance hands to a member that subscribed later would start at that member's end. Another
     * failure is logged, and false returned.
     */
    private boolean commitStarts(Map<TopicPartition, OffsetAndMetadata> starts, Duration timeout) {
        try {
            commitSync(starts, timeout);
            return true;
        } catch (RetriableException | CommitFailedException | RebalanceInProgressException e) {
            throw e;
        } catch (RuntimeException e) {
            log.warn("offset commit of the start position of group {} on {} failed (the group's next member starts at"
                    + " the end as of its own subscribe): {}", group, pattern, e.toString());
            return false;
        }
    }

    /**
     * The consumer's position of {@code partition}, waiting for Kafka to tell it (its lazy seek, reset or
     * validation) up to {@code wait}, or {@code default.api.timeout.ms} when that is null; null when it could not
     * in that time.
     */
    private Long positionWithin(TopicPartition partition, Duration wait) {
        try {
            return wait == null ? consumer.position(partition) : consumer.position(partition, wait);
        } catch (org.apache.kafka.common.errors.TimeoutException e) {
            return null;
        }
    }

    /**
     * A {@link StartPosition#LATEST} member whose revoked {@code partitions} include some that wait to be positioned
     * again with their start to commit ({@link #unpositioned}, or {@link #unresolved} with their start to commit)
     * makes one more attempt while they are still its own, each read and the commit waiting up to
     * {@link #pollTimeout} (the group waits for this rebalance), as closing does ({@link #commitPostponedStarts}):
     * dropped with their start not committed, the member they go to, had it subscribed later, would start at the
     * end as of its own subscribe, skipping what was published in between. A wakeup of {@code close()} that cuts
     * the attempt short is consumed by it, and the attempt made again. When Kafka still cannot commit it, that is
     * logged as a warning.
     */
    private void commitWaitingStartsOf(Collection<TopicPartition> partitions) {
        if (start != StartPosition.LATEST) {
            return;
        }
        Set<TopicPartition> waiting = new HashSet<>();
        for (TopicPartition partition : partitions) {
            if (unpositioned.contains(partition) || Boolean.TRUE.equals(unresolved.get(partition))) {
                waiting.add(partition);
            }
        }
        if (waiting.isEmpty()) {
            return;
        }
        Set<TopicPartition> untold = waiting;
        String why = "";
        try {
            try {
                position(waiting, pollTimeout);
            } catch (WakeupException e) {
                position(waiting, pollTimeout);
            }
            untold = waiting.stream().filter(partition -> Boolean.TRUE.equals(unresolved.get(partition)))
                    .collect(Collectors.toSet());
        } catch (RuntimeException e) {
            why = " (" + e + ")";
        }
        if (!untold.isEmpty()) {
            log.warn("group {} on {} loses {} in a rebalance before Kafka could position them and commit the start"
                    + " subscribe read there{}: unless subscribe committed it (a group without members), a member that"
                    + " subscribed later and takes them over starts at the end as of its own subscribe", group, pattern,
                    untold, why);
        }
    }

    /**
     * A partition revoked in the rebalance under way: the group generation it was revoked at, and when the wait for
     * its record's redelivery ends ({@code nanoClock}), null when it had none.
     */
    private record Revoked(int generation, Long pausedUntilNanos) {
    }

    /** The consumer's group generation (its member epoch under the consumer protocol), or -1 when it has none. */
    private int generation() {
        try {
            return consumer.groupMetadata().generationId();
        } catch (RuntimeException e) {
            return -1; // not told: the partition is forgotten, as before
        }
    }

    private final class Listener implements ConsumerRebalanceListener {
        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
            commitWaitingStartsOf(partitions);
            Map<TopicPartition, OffsetAndMetadata> revoked = new HashMap<>();
            for (TopicPartition partition : partitions) {
                OffsetAndMetadata offset = processed.remove(partition);
                if (offset != null) {
                    revoked.put(partition, offset);
                }
                assignedAt.remove(partition);
                unpositioned.remove(partition);
                unresolved.remove(partition);
                // the wait too is kept until the assignment: given straight back, the record still waits
                revokedUntold.put(partition, new Revoked(generation(), pausedUntilNanos.remove(partition)));
            }
            // Transactions commit their offsets with each batch; plain mode commits what it handled now, so
            // the next owner starts right after it instead of handling it again.
            if (transactionalProducer == null && !revoked.isEmpty()) {
                commitHandled(revoked, requestTimeout, "offset commit on revoke", HANDLED_AGAIN);
            }
        }

        @Override
        public void onPartitionsLost(Collection<TopicPartition> partitions) {
            // the member left the group: another member may have had those revoked since
            revokedUntold.keySet().forEach(this::forget);
            revokedUntold.clear();
            for (TopicPartition partition : partitions) {
                processed.remove(partition);
                pausedUntilNanos.remove(partition);
                assignedAt.remove(partition);
                unpositioned.remove(partition);
                unresolved.remove(partition);
                forget(partition);
            }
        }

        /**
         * The partition may come back after another member handled records of it (or after its topic was created
         * again): what the handler learnt of it is stale then.
         */
        private void forget(TopicPartition partition) {
            try {
                handler.forgetPartition(partition.topic(), partition.partition());
            } catch (RuntimeException e) {
                log.warn("group {} on {} could not have its handler forget {}: {}", group, pattern, partition,
                        e.toString());
            }
        }

        /**
         * Tells the handler to forget each partition revoked in this rebalance that it does not get back, or gets back
         * at a generation later than the next (a rebalance this member was not in came between, in which another member
         * may have had it), its wait for a redelivery dropped with it: only one given back at the generation right
         * after its revoke is kept, with what the handler learnt of it and its wait, paused again until that wait's
         * deadline (Kafka's new assignment starts unpaused). Called at the assignment, before any record of the
         * partitions is delivered.
         */
        private void keepGivenBackForgetOthers() {
            if (revokedUntold.isEmpty()) {
                return;
            }
            int generation = generation();
            Set<TopicPartition> owned = consumer.assignment();
            List<TopicPartition> stillWaiting = new ArrayList<>();
            for (Map.Entry<TopicPartition, Revoked> revoked : revokedUntold.entrySet()) {
                int revokedAt = revoked.getValue().generation();
                if (!(owned.contains(revoked.getKey()) && revokedAt > 0 && generation == revokedAt + 1)) {
                    forget(revoked.getKey());
                } else if (revoked.getValue().pausedUntilNanos() != null) {
                    pausedUntilNanos.put(revoked.getKey(), revoked.getValue().pausedUntilNanos());
                    stillWaiting.add(revoked.getKey());
                }
            }
            revokedUntold.clear();
            if (!stillWaiting.isEmpty()) {
                consumer.pause(stillWaiting); // resumed once due, as before the rebalance (resumeDuePartitions)
            }
        }

        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
            keepGivenBackForgetOthers();
            if (!partitions.isEmpty()) {
                try {
                    positionOrPostpone(partitions, null);
                } catch (WakeupException e) {
                    // close() woke the consumer during the assignment, and a blocking call here (reading the
                    // committed offsets, resolving a position) threw the wakeup, which consumed it: position
                    // again, so that a LATEST group's start is committed for the group's next member. Part of
                    // closing, each call waits as closing's own attempt does (not default.api.timeout.ms); what
                    // Kafka does not answer in time is postponed, and closing tries once more.
                    positionOrPostpone(partitions, pollTimeout);
                }
            }
            if (unpositioned.isEmpty() && unresolved.isEmpty()) {
                assigned.countDown();
            }
        }
    }
}
