package io.streamsaga.internal.bus;

import io.streamsaga.StreamSagaException;
import io.streamsaga.bus.DeadLetterRedrive;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.Subscription;
import io.streamsaga.bus.TopicPattern;
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
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Predicate;

/**
 * One run of a {@link DeadLetterRedrive}: a subscription of the run's group to the dead-letter topic whose handler sends
 * each letter back, up to the end offsets taken at the start. Thread-safe.
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

    private final Transport transport;
    private final Clock clock;
    private final String deadLetterTopic;
    private final String originalTopic;
    private final String group;
    private final Predicate<Message> filter;
    private final long limit;
    /** The end offsets per partition taken at the start: the run covers the letters below them. */
    private final Map<Integer, Long> end;
    /** The next offset per partition the run passed (committed, or handled here). */
    private final Map<Integer, Long> passed = new ConcurrentHashMap<>();
    /** Letters sent back whose delivery was not withdrawn (yet): what the limit counts. */
    private final AtomicLong taken = new AtomicLong();
    private final AtomicLong redriven = new AtomicLong();
    private final AtomicLong filteredOut = new AtomicLong();
    private final AtomicLong skipped = new AtomicLong();
    private final AtomicLong failed = new AtomicLong();
    private final CompletableFuture<DeadLetterRedrive.Report> finished = new CompletableFuture<>();
    /** Set once the run takes no more letters: its end, its limit or a failure was reached, or it was closed. */
    private volatile boolean stopping;
    private boolean finishing; // guarded by this
    private Subscription subscription; // guarded by this; null until subscribed

    private RedriveRun(EventBus bus, String deadLetterTopic, String originalTopic, String group, Predicate<Message> filter,
                       long limit, Map<Integer, Long> end) {
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
            run.finishing = true;
            run.complete();
            return run;
        }
        Subscription subscription = transport.subscribe(group, TopicPattern.of(deadLetterTopic), StartPosition.EARLIEST, run);
        boolean finishedMeanwhile;
        synchronized (run) {
            run.subscription = subscription;
            finishedMeanwhile = run.finishing;
        }
        if (finishedMeanwhile) {
            run.closeThenComplete();
        }
        log.info("redrive of {} to {} by group {} started, up to {}", deadLetterTopic, originalTopic, group, end);
        return run;
    }

    @Override
    public void handle(TransportRecord record) throws Exception {
        int partition = record.partition();
        long offset = record.offset();
        long partitionEnd = end.getOrDefault(partition, 0L);
        boolean pastTheEnd = offset >= partitionEnd;
        if (stopping || pastTheEnd || taken.get() >= limit) {
            if (pastTheEnd && !stopping) {
                passed(partition, partitionEnd); // the partition has nothing more for this run
            }
            // Not acknowledged, so not committed: the letter is the next run's (a transport that redelivers per
            // partition holds it back, the others deliver it again until the run has closed its subscription).
            throw new RedeliverLater(LEFT_FOR_THE_NEXT_RUN, new IllegalStateException("the dead letter at "
                    + deadLetterTopic + "-" + partition + "@" + offset + " is left for the next redrive run of group "
                    + group + ": this one ends at " + end + (limit == Long.MAX_VALUE ? "" : " or " + limit + " letters")
                    + ", or has stopped"));
        }
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
            if (redriven.incrementAndGet() >= limit) {
                stop();
            }
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
            if (!name.startsWith(DEAD_LETTER_HEADER_PREFIX)) {
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
        stop();
        return failure instanceof Exception e ? e : new IllegalStateException(what, failure);
    }

    /** The letters of {@code partition} below {@code next} are passed; the run stops once every partition passed its end. */
    private void passed(int partition, long next) {
        Long now = passed.merge(partition, next, Math::max);
        if (now >= end.getOrDefault(partition, 0L) && reachedTheEnd()) {
            stop();
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

    /** Takes no more letters and, once, closes the subscription and completes the run. */
    private void stop() {
        stopping = true;
        boolean subscribed;
        synchronized (this) {
            if (finishing) {
                return;
            }
            finishing = true;
            subscribed = subscription != null;
        }
        if (subscribed) { // otherwise start() closes it once subscribed
            closeThenComplete();
        }
    }

    /**
     * Closes the subscription on a thread of its own, then completes: the stop is seen on the consumer thread, in the
     * handler, and a close from there would not wait for the transport to commit the letter being handled.
     */
    private void closeThenComplete() {
        Thread closer = new Thread(() -> {
            try {
                subscription().close();
            } finally {
                complete();
            }
        }, "streamsaga-redrive-" + group);
        closer.setDaemon(true);
        closer.start();
    }

    private synchronized Subscription subscription() {
        return subscription;
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
        if (!stopping) {
            // an end reached through offsets no letter showed here (transaction markers, another member's commits)
            transport.committedOffsets(group, deadLetterTopic).forEach((partition, next) -> passed(partition, next));
        }
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
            finishing = true;
            toClose = subscription;
        }
        if (toClose != null) {
            toClose.close();
        }
        finished.completeExceptionally(new CancellationException("redrive of " + deadLetterTopic + " by group " + group
                + " was closed before it finished"));
    }
}
