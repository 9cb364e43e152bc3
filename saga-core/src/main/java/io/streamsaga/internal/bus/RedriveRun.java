package io.streamsaga.internal.bus;

import io.streamsaga.StreamSagaException;
import io.streamsaga.bus.DeadLetterRedrive;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.Subscription;
import io.streamsaga.bus.TopicPattern;
import io.streamsaga.claimcheck.PayloadReference;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.spi.RecordHandler;
import io.streamsaga.spi.RedeliverLater;
import io.streamsaga.spi.Transport;
import io.streamsaga.spi.TransportRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Clock;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Predicate;

/**
 * One run of a {@link DeadLetterRedrive}: a subscription of the run's group to the dead-letter topic whose handler sends
 * each letter back, up to the end offsets taken at the start. Thread-safe.
 *
 * <p>The run ends its subscription from the consumer thread as soon as the letter it handles is the last it will take
 * (its limit, or every partition handled to its end), so the transport delivers nothing after it: a letter dead-lettered
 * meanwhile is not refused in the same Kafka transaction. A letter it does not take (past its end or its limit, or
 * once stopped) it declines ({@link RedeliverLater#declined}): the transport keeps what the run sent before it in the
 * same transaction and commits the partition's position up to it, and one past the end shows its partition handled to
 * the end (what lies between its last letter and it is no letter: a commit marker). It counts a
 * partition as passed from what the group committed too, checked every {@link #END_CHECK} on a thread of its own: an
 * end that no letter shows (a transaction's commit marker after the last letter, written by a bus in exactly-once
 * mode). It finishes at its end only once the group's committed offsets reach it, and subscribes again otherwise (a
 * transaction that aborted as the subscription closed).
 *
 * <p>Both threads of its own, daemons named for the group ({@code streamsaga-redrive-end-<group>} for that check,
 * {@code streamsaga-redrive-close-<group>} for the close once stopped), rather than the bus's {@link
 * io.streamsaga.time.Scheduler}: each blocks on the transport (the check asks a broker for the group's offsets, the
 * close waits for the consumer to commit its batch), which on the scheduler's one thread would hold back the bus's
 * timers (sagas' timeouts, retries), and the check runs on real time, which a virtual scheduler does not advance.
 * {@link #close()} ends them, waiting up to the scheduler's {@link io.streamsaga.time.Scheduler#closeWait()}.
 */
public final class RedriveRun implements DeadLetterRedrive.Run, RecordHandler {
    private static final Logger log = LoggerFactory.getLogger(RedriveRun.class);
    /** What every dead-letter header's name starts with ({@link MessageHeaders#DLT_REASON} and the others). */
    private static final String DEAD_LETTER_HEADER_PREFIX = "dlt-";
    /**
     * How long a letter the run does not take waits on a transport that redelivers per partition: longer than the
     * run takes to close its subscription once it stopped, so the letter is not delivered again meanwhile.
     */
    private static final Duration LEFT_FOR_THE_NEXT_RUN = Duration.ofMinutes(1);
    /** The name of a thread of the run's that closes its subscription, before the group. */
    private static final String CLOSER = "streamsaga-redrive-close-";
    /** How often the run compares the group's committed offsets with its end. */
    private static final Duration END_CHECK = Duration.ofSeconds(1);

    /** Why a run stopped on its own. */
    private enum Stop { END, LIMIT, FAILURE }

    private final EventBus bus;
    private final Transport transport;
    private final Clock clock;
    private final String deadLetterTopic;
    private final String originalTopic;
    private final String group;
    private final Predicate<Message> filter;
    private final long limit;
    /** The end offsets per partition taken at the start: the run covers the letters below them. */
    private final Map<Integer, Long> end;
    /** The next offset per partition the run passed: committed, or handled and kept. */
    private final Map<Integer, Long> passed = new ConcurrentHashMap<>();
    /** The next offset per partition the run handled, kept or not yet (in a Kafka transaction still open). */
    private final Map<Integer, Long> handled = new ConcurrentHashMap<>();
    /** The partitions whose letters past the end were logged as left, once each. */
    private final Set<Integer> leftLogged = ConcurrentHashMap.newKeySet();
    /** Letters sent back whose delivery was not withdrawn (yet): what the limit counts. */
    private final AtomicLong taken = new AtomicLong();
    private final AtomicLong redriven = new AtomicLong();
    private final AtomicLong filteredOut = new AtomicLong();
    private final AtomicLong skipped = new AtomicLong();
    private final AtomicLong failed = new AtomicLong();
    private final CompletableFuture<DeadLetterRedrive.Report> finished = new CompletableFuture<>();
    /** Set once the run takes no more letters: it stopped, or was closed. */
    private volatile boolean stopping;
    private Stop stop; // guarded by this; null while the run goes on
    private boolean closed; // guarded by this; closed by its caller or with the bus
    private Subscription subscription; // guarded by this; null until subscribed
    /** The run's threads of its own that may still run: its end check and its closers; see the class comment. */
    private final Set<Thread> threads = ConcurrentHashMap.newKeySet();
    /** The consumer thread while it handles a letter, else null: what a close() there does not wait for. */
    private volatile Thread handling;

    private RedriveRun(EventBus bus, String deadLetterTopic, String originalTopic, String group, Predicate<Message> filter,
                       long limit, Map<Integer, Long> end) {
        this.bus = bus;
        this.transport = bus.transport();
        this.clock = bus.scheduler().clock();
        this.deadLetterTopic = deadLetterTopic;
        this.originalTopic = originalTopic;
        this.group = group;
        this.filter = filter;
        this.limit = limit;
        this.end = end;
    }

    /** Starts a run as {@link DeadLetterRedrive#start()} describes. */
    public static DeadLetterRedrive.Run start(EventBus bus, String deadLetterTopic, String originalTopic, String group,
                                              Predicate<Message> filter, long limit) {
        Transport transport = bus.transport();
        // Taken before subscribing: every letter there at the start is covered, none dead-lettered after it.
        Map<Integer, Long> end = Map.copyOf(transport.endOffsets(deadLetterTopic));
        RedriveRun run = new RedriveRun(bus, deadLetterTopic, originalTopic, group, filter, limit, end);
        run.passed.putAll(transport.committedOffsets(group, deadLetterTopic));
        if (run.reachedTheEnd()) {
            run.stopping = true;
            run.stop = Stop.END;
            run.complete();
            return run;
        }
        run.subscribe();
        log.info("redrive of {} to {} by group {} started, up to {}", deadLetterTopic, originalTopic, group, end);
        run.startThread("streamsaga-redrive-end-", run::checkTheEndUntilFinished);
        return run;
    }

    /** Subscribes the run's group, through the bus when it is this package's (closing the bus then closes the run). */
    private void subscribe() {
        TopicPattern pattern = TopicPattern.of(deadLetterTopic);
        Subscription made = bus instanceof DefaultEventBus own
                ? own.subscribeTracked(group, pattern, StartPosition.EARLIEST, this, this::subscriptionClosed)
                : transport.subscribe(group, pattern, StartPosition.EARLIEST, this);
        boolean stoppedMeanwhile;
        boolean closedMeanwhile;
        synchronized (this) {
            subscription = made;
            stoppedMeanwhile = stop != null;
            closedMeanwhile = closed;
        }
        if (closedMeanwhile) {
            made.close();
        } else if (stoppedMeanwhile) { // stopped before the subscription was known: closed here
            closeThenComplete();
        }
    }

    /**
     * Once the run's subscription was closed: when neither the run stopped nor its caller closed it, the bus closed it
     * (with every subscription made through it), which closes the run.
     */
    private void subscriptionClosed() {
        synchronized (this) {
            if (stop != null || closed) {
                return;
            }
        }
        close();
    }

    @Override
    public void handle(TransportRecord record) throws Exception {
        handling = Thread.currentThread();
        try {
            handleLetter(record);
        } finally {
            handling = null;
        }
    }

    private void handleLetter(TransportRecord record) throws Exception {
        int partition = record.partition();
        long offset = record.offset();
        long partitionEnd = end.getOrDefault(partition, 0L);
        boolean pastTheEnd = offset >= partitionEnd;
        if (stopping || pastTheEnd || taken.get() >= limit) {
            if (pastTheEnd && !stopping) {
                if (leftLogged.add(partition)) {
                    log.info("redrive of {} by group {} reached the end {}-{}@{} taken at its start: the dead letters"
                            + " from there are left for the next run", deadLetterTopic, group, deadLetterTopic,
                            partition, partitionEnd);
                }
                // Delivered after the partition's last letter: what lies between them is no letter (a transaction's
                // commit marker), and the transport commits the position up to this one, which it declines.
                handled.merge(partition, partitionEnd, Math::max);
                if (handledToTheEnd()) {
                    stop(Stop.END, true);
                }
            }
            // Declined, so not committed: the letter is the next run's (a transport that redelivers per partition
            // holds it back, the others deliver it again until the run has closed its subscription); what the
            // run sent before it in the same Kafka transaction is kept.
            throw RedeliverLater.declined(LEFT_FOR_THE_NEXT_RUN, new IllegalStateException("the dead letter at "
                    + deadLetterTopic + "-" + partition + "@" + offset + " is left for the next redrive run of group "
                    + group + ": this one ends at " + end + (limit == Long.MAX_VALUE ? "" : " or " + limit + " letters")
                    + ", or has stopped"));
        }
        redriveOrPassOver(record);
        handled.merge(partition, offset + 1, Math::max);
        if (taken.get() >= limit) {
            stop(Stop.LIMIT, true);
        } else if (handledToTheEnd()) {
            stop(Stop.END, true);
        }
    }

    /** Sends {@code record}'s letter back, or passes over it (filtered out, or skipped); throws when that failed. */
    private void redriveOrPassOver(TransportRecord record) throws Exception {
        int partition = record.partition();
        long offset = record.offset();
        Message letter = record.message();
        boolean wanted;
        try {
            wanted = filter.test(letter);
        } catch (RuntimeException e) {
            throw fail(record, "its filter threw", e);
        }
        if (!wanted) {
            counted(filteredOut, partition, offset);
            return;
        }
        String whyNot = whyNotRedrivable(letter);
        if (whyNot != null) {
            log.warn("redrive of {} by group {} skipped the dead letter {} at {}-{}@{}, which stays there: {}",
                    deadLetterTopic, group, letter.id(), deadLetterTopic, partition, offset, whyNot);
            counted(skipped, partition, offset);
            return;
        }
        Message redrive = redriveOf(letter);
        try {
            // Synchronous on purpose: the letter is acknowledged (its position committed) only once this is durable.
            transport.send(redrive).toCompletableFuture().join();
        } catch (RuntimeException e) {
            throw fail(record, "sending it back to " + originalTopic + " failed",
                    e instanceof CompletionException && e.getCause() != null ? e.getCause() : e);
        }
        log.debug("redrove the dead letter at {}-{}@{} to {} as {}", deadLetterTopic, partition, offset, originalTopic,
                redrive.id());
        taken.incrementAndGet();
        transport.afterDelivery(() -> {
            redriven.incrementAndGet();
            passed(partition, offset + 1);
        }, taken::decrementAndGet); // withdrawn with the send (a Kafka transaction aborted): it comes again
    }

    /**
     * Counts a letter the run passed over in {@code count} once its delivery stays handled (on Kafka in exactly-once
     * mode a delivery may be withdrawn, to come again), as sent letters are counted.
     */
    private void counted(AtomicLong count, int partition, long offset) {
        transport.afterDelivery(() -> {
            count.incrementAndGet();
            passed(partition, offset + 1);
        }, () -> { });
    }

    /**
     * Why {@code letter} cannot be sent back as the original it stands for, or null when it can: it must name this
     * dead-letter topic's original topic, hold the whole original, and carry a well-formed redrive count.
     */
    private String whyNotRedrivable(Message letter) {
        String named = letter.headers().get(MessageHeaders.DLT_ORIGINAL_TOPIC);
        if (named == null) {
            return "it names no original topic (no " + MessageHeaders.DLT_ORIGINAL_TOPIC + " header)";
        }
        if (!named.equals(originalTopic)) {
            return "it names the original topic " + StreamSagaException.quote(named) + ", not " + originalTopic
                    + ", whose dead-letter topic this is";
        }
        if (letter.headers().containsKey(MessageHeaders.DLT_PAYLOAD_OMITTED)) {
            // each smaller form of a dead letter leaves out the payload, and more
            return "it was dead-lettered without the original's payload (the whole was too large); the original is at "
                    + named + "-" + letter.headers().get(MessageHeaders.DLT_ORIGINAL_PARTITION) + "@"
                    + letter.headers().get(MessageHeaders.DLT_ORIGINAL_OFFSET);
        }
        String count = letter.headers().get(MessageHeaders.REDRIVE_COUNT);
        if (count != null && redriveCount(count) < 0) {
            return "its " + MessageHeaders.REDRIVE_COUNT + " header is not a count: " + StreamSagaException.quote(count);
        }
        return null;
    }

    /** The count {@code value} holds, or -1 when it holds none. */
    private static int redriveCount(String value) {
        try {
            int count = Integer.parseInt(value);
            return count >= 0 && count < Integer.MAX_VALUE ? count : -1;
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    /** The original {@code letter} stands for, as {@link DeadLetterRedrive} describes, to send back. */
    private Message redriveOf(Message letter) {
        String originalId = letter.headers().get(MessageHeaders.DLT_ORIGINAL_MESSAGE_ID);
        Map<String, String> headers = new LinkedHashMap<>();
        letter.headers().forEach((name, value) -> {
            if (!name.startsWith(DEAD_LETTER_HEADER_PREFIX) && !name.equals(PayloadReference.HOLD_HEADER)) {
                headers.put(name, value);
            }
        });
        if (originalId != null && originalId.equals(headers.get(MessageHeaders.CAUSATION_ID))) {
            headers.remove(MessageHeaders.CAUSATION_ID); // the bus's, given when the original had none: no message causes itself
        }
        String count = letter.headers().get(MessageHeaders.REDRIVE_COUNT);
        headers.put(MessageHeaders.REDRIVE_COUNT, Integer.toString(count == null ? 1 : redriveCount(count) + 1));
        String id = originalId != null && !originalId.isBlank() ? originalId : letter.id();
        return new Message(id, originalTopic, letter.key(), letter.type(), letter.version(), letter.payload(), headers,
                clock.instant());
    }

    /** Counts and logs a failed letter and stops the run; returns the failure for the handler to throw. */
    private Exception fail(TransportRecord record, String what, Throwable failure) {
        failed.incrementAndGet();
        log.error("redrive of {} by group {} stopped at the dead letter {} at {}-{}@{}, which stays there: {}: {}",
                deadLetterTopic, group, record.message().id(), deadLetterTopic, record.partition(), record.offset(), what,
                failure.toString());
        stop(Stop.FAILURE, true);
        return failure instanceof Exception e ? e : new IllegalStateException(what, failure);
    }

    /** The letters of {@code partition} below {@code next} are passed; the run stops once every partition passed its end. */
    private void passed(int partition, long next) {
        Long now = passed.merge(partition, next, Math::max);
        if (now >= end.getOrDefault(partition, 0L) && reachedTheEnd()) {
            stop(Stop.END, true); // on the consumer thread: a kept delivery, the handler's or after its transaction
        }
    }

    private boolean reachedTheEnd() {
        for (Map.Entry<Integer, Long> partition : end.entrySet()) {
            if (passed.getOrDefault(partition.getKey(), 0L) < partition.getValue()) {
                return false;
            }
        }
        return true;
    }

    /** Whether every partition was handled (or passed) to its end, what this delivery handled included. */
    private boolean handledToTheEnd() {
        for (Map.Entry<Integer, Long> partition : end.entrySet()) {
            long next = Math.max(passed.getOrDefault(partition.getKey(), 0L),
                    handled.getOrDefault(partition.getKey(), 0L));
            if (next < partition.getValue()) {
                return false;
            }
        }
        return true;
    }

    /**
     * Takes no more letters and, once, closes the subscription and completes the run. On the consumer thread
     * ({@code onConsumerThread}), the subscription is closed there first, so that the transport delivers no record
     * after the one being handled (which it still commits); a thread of the run's own then waits for the close.
     */
    private void stop(Stop why, boolean onConsumerThread) {
        stopping = true;
        Subscription toClose;
        synchronized (this) {
            if (stop != null || closed) {
                return;
            }
            stop = why;
            toClose = subscription;
        }
        if (toClose != null) { // otherwise subscribe() closes it once subscribed
            if (onConsumerThread) {
                toClose.close(); // from the consumer thread: not waited for, the delivery ends after this record
            }
            closeThenComplete();
        }
    }

    /**
     * Closes the subscription on a thread of its own, then completes: the stop is seen on the consumer thread, in the
     * handler, and a close from there would not wait for the transport to commit the letter being handled. At its end,
     * the run completes only once the group's committed offsets reach it, and subscribes again otherwise.
     */
    private void closeThenComplete() {
        startThread(CLOSER, () -> {
            try {
                subscription().close();
                if (stopOf() == Stop.END && !isClosed()) {
                    // what was kept (in Kafka's exactly-once mode: committed) or the group committed
                    Map<Integer, Long> committed = transport.committedOffsets(group, deadLetterTopic);
                    committed.forEach((partition, next) -> passed.merge(partition, next, Math::max));
                    if (!reachedTheEnd()) {
                        resume(committed);
                        return;
                    }
                }
                complete();
            } catch (RuntimeException e) { // the bus was closed meanwhile, say: the run cannot go on
                finished.completeExceptionally(e);
            }
        });
    }

    /** Starts a daemon thread of the run's own, named {@code prefix} and the group, which {@link #close()} ends. */
    private void startThread(String prefix, Runnable task) {
        Thread thread = new Thread(() -> {
            try {
                task.run();
            } finally {
                threads.remove(Thread.currentThread());
            }
        }, prefix + group);
        thread.setDaemon(true);
        threads.add(thread);
        thread.start();
    }

    /**
     * Waits, up to the bus scheduler's close wait in all, for the run's threads to end (not for the calling thread,
     * when it is one of them, nor for a closer when it is the consumer thread in a letter's handling: a closer's
     * subscription close waits for that handling to end); an interrupted caller waits all the same and keeps its
     * interrupt, as the schedulers' close() does. Each ends promptly once the run is closed: the end check at its next
     * wake, which the close triggers, and a closer once the subscription it closes has closed.
     */
    private void awaitThreads() {
        long deadline = System.nanoTime() + bus.scheduler().closeWait().toNanos();
        boolean interrupted = false;
        boolean inHandling = handling == Thread.currentThread();
        for (Thread thread : threads) {
            if (thread == Thread.currentThread() || inHandling && thread.getName().startsWith(CLOSER)) {
                continue;
            }
            for (long left = deadline - System.nanoTime(); left > 0 && thread.isAlive(); left = deadline - System.nanoTime()) {
                try {
                    TimeUnit.NANOSECONDS.timedJoin(thread, left);
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
            if (thread.isAlive()) {
                log.warn("redrive of {} by group {} closed while its thread {} still runs after {}", deadLetterTopic,
                        group, thread.getName(), bus.scheduler().closeWait());
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    /** Subscribes again after a stop at the end that the group's committed offsets do not show. */
    private void resume(Map<Integer, Long> committed) {
        log.info("redrive of {} by group {} resumes: its committed offsets {} are short of the end {} (a transaction"
                + " aborted as it closed)", deadLetterTopic, group, committed, end);
        synchronized (this) {
            if (closed) {
                return;
            }
            stop = null;
            subscription = null;
        }
        handled.clear();
        stopping = false;
        subscribe();
    }

    /**
     * Until the run finished: every {@link #END_CHECK}, takes the group's committed offsets as passed, which shows an
     * end no letter shows (a commit marker after the last letter) and stops the run there.
     */
    private void checkTheEndUntilFinished() {
        while (true) {
            try {
                finished.get(END_CHECK.toMillis(), TimeUnit.MILLISECONDS);
                return;
            } catch (TimeoutException e) {
                checkTheEnd();
            } catch (ExecutionException | CancellationException e) {
                return; // closed
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    private void checkTheEnd() {
        if (stopping) {
            return;
        }
        try {
            transport.committedOffsets(group, deadLetterTopic).forEach((partition, next) ->
                    passed.merge(partition, next, Math::max));
        } catch (RuntimeException e) {
            log.debug("redrive of {} by group {} could not read its committed offsets: {}", deadLetterTopic, group,
                    e.toString());
            return;
        }
        if (reachedTheEnd()) {
            stop(Stop.END, false);
        }
    }

    private synchronized Subscription subscription() {
        return subscription;
    }

    private synchronized Stop stopOf() {
        return stop;
    }

    private synchronized boolean isClosed() {
        return closed;
    }

    private void complete() {
        DeadLetterRedrive.Report report = counts();
        if (finished.complete(report)) {
            log.info("redrive of {} to {} by group {} finished: {}", deadLetterTopic, originalTopic, group, report);
        }
    }

    private DeadLetterRedrive.Report counts() {
        return new DeadLetterRedrive.Report(redriven.get(), filteredOut.get(), skipped.get(), failed.get());
    }

    @Override
    public String group() {
        return group;
    }

    @Override
    public DeadLetterRedrive.Report report() {
        return counts();
    }

    @Override
    public CompletionStage<DeadLetterRedrive.Report> finished() {
        return finished.minimalCompletionStage();
    }

    @Override
    public void close() {
        stopping = true;
        Subscription toClose;
        synchronized (this) {
            closed = true;
            toClose = subscription;
        }
        if (toClose != null) {
            toClose.close();
        }
        finished.completeExceptionally(new CancellationException("redrive of " + deadLetterTopic + " by group " + group
                + " was closed before it finished"));
        awaitThreads();
    }
}
