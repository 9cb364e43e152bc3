package io.streamsaga.kafka;

import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.MessageTooLargeException;
import io.streamsaga.bus.PublishException;
import io.streamsaga.bus.RecordPosition;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.Subscription;
import io.streamsaga.bus.TopicPattern;
import io.streamsaga.bus.TransportClosedException;
import io.streamsaga.kafka.internal.ConsumerLoop;
import io.streamsaga.kafka.internal.HeaderValues;
import io.streamsaga.kafka.internal.TransactionalProducers;
import io.streamsaga.kafka.internal.WireFormat;
import io.streamsaga.message.Message;
import io.streamsaga.spi.PendingDelivery;
import io.streamsaga.spi.RecordHandler;
import io.streamsaga.spi.Transport;
import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConsumerGroupOffsetsOptions;
import org.apache.kafka.clients.admin.DescribeTopicsOptions;
import org.apache.kafka.clients.admin.GroupListing;
import org.apache.kafka.clients.admin.ListConsumerGroupOffsetsOptions;
import org.apache.kafka.clients.admin.ListConsumerGroupOffsetsSpec;
import org.apache.kafka.clients.admin.ListOffsetsOptions;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.Callback;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.config.ConfigException;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.errors.RetriableException;
import org.apache.kafka.common.errors.UnknownMemberIdException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.BitSet;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.function.BiConsumer;
import java.util.function.Function;
import java.util.function.LongSupplier;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The StreamSaga {@link Transport} on Apache Kafka.
 *
 * <p>Publishing uses one shared idempotent producer ({@code acks=all}, {@code enable.idempotence=true}):
 * the message key is the record key (so order is kept per key), the payload is the record value as plain
 * JSON bytes (the bus encodes, since {@link #carriesObjects()} is false), and the message id, event type,
 * event version and every message header travel as UTF-8 record headers; docs/kafka.md documents the wire
 * format. Each subscription is one consumer group member with its own {@code KafkaConsumer} and thread; it
 * commits offsets only for records whose handler returned, and commits on partition revoke.
 *
 * <p>In {@linkplain Builder#exactlyOnce(String) exactly-once mode} each subscription also owns a
 * transactional producer: messages that a handler publishes and the consumed offsets commit in one Kafka
 * transaction per poll batch, and consumers read with {@code isolation.level=read_committed}.
 *
 * <p>Thread-safe. {@link #close()} stops every subscription and releases all threads and connections.
 */
public final class KafkaTransport implements Transport {
    private static final Logger log = LoggerFactory.getLogger(KafkaTransport.class);

    private final Builder config;
    private final String clientPrefix;
    private final Producer<String, byte[]> producer;
    /** The transactional producers' {@code transaction.timeout.ms}. */
    private final Duration transactionTimeout;
    /** The members' {@code isolation.level}: where the end of a partition lies for them. */
    private final IsolationLevel memberIsolation;
    private final HeaderValues headerValues = new HeaderValues();
    private final ThreadLocal<ConsumerLoop.Transaction> currentTransaction = new ThreadLocal<>();
    /** With {@link Builder#awaitPublishesPerBatch}: a plain member's deferred deliveries while it delivers a record. */
    private final ThreadLocal<ConsumerLoop.DeferredDeliveries> currentDeferrals = new ThreadLocal<>();
    private final Set<KafkaSubscription> subscriptions = ConcurrentHashMap.newKeySet();
    /**
     * The group and pattern of each subscription closed here, with when its thread ended ({@code nanoTime}):
     * {@link #consumerGroups} counts it until a listing of the broker's groups started after that, which says
     * from then on whether the group still has committed offsets on a topic.
     */
    private final Map<GroupPattern, Long> closedSubscriptions = new ConcurrentHashMap<>();
    /** The member numbers in use per group, only of groups with one in use; guarded by itself. */
    private final Map<String, BitSet> membersInUse = new HashMap<>();
    private final Object adminLock = new Object();
    private volatile Admin admin;
    /** The broker's groups as {@link #consumerGroups} last listed them; null before the first listing. */
    private volatile BrokerGroups brokerGroups;
    private final Object brokerGroupsLock = new Object();
    /** The listing of the broker's groups under way, which callers finding the last one stale wait for; guarded by brokerGroupsLock. */
    private CompletableFuture<BrokerGroups> brokerGroupsListing;
    /** {@link Builder#consumerGroupsMaxAge} in nanoseconds, at most {@link Long#MAX_VALUE} (for ever). */
    private final long consumerGroupsMaxAgeNanos;
    /**
     * Set once, by the first {@link #close()}; read without a lock, but set, and checked before a member starts,
     * under {@link #lifecycle}.
     */
    private volatile boolean closed;
    /** Orders {@link #close()} against a subscribe starting its member, so that close sees every member started. */
    private final Object lifecycle = new Object();

    private KafkaTransport(Builder config) {
        this.config = config;
        this.clientPrefix = config.clientIdPrefix + "-" + UUID.randomUUID().toString().substring(0, 8);
        this.consumerGroupsMaxAgeNanos = config.consumerGroupsMaxAge.compareTo(Duration.ofNanos(Long.MAX_VALUE)) >= 0
                ? Long.MAX_VALUE : config.consumerGroupsMaxAge.toNanos();
        // Settings the Kafka clients refuse fail here, typed, rather than as Kafka exceptions (the producer's,
        // which also checks the bootstrap servers) or at the first subscribe (the consumers').
        Map<String, Object> consumerProps = consumerProperties("streamsaga-validation", 0, clientPrefix + "-validation");
        consumerProps.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class);
        consumerProps.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
        // As the consumer itself takes them (without its log of every value): its checks of settings that
        // conflict with each other, such as session.timeout.ms with group.protocol=consumer, run after the parse.
        ConsumerConfig consumerConfig = refuseInvalid("consumer", () -> new ConsumerConfig(consumerProps, false) { });
        this.memberIsolation = IsolationLevel.valueOf(
                consumerConfig.getString(ConsumerConfig.ISOLATION_LEVEL_CONFIG).toUpperCase(Locale.ROOT));
        refuseInvalid("admin", () -> AdminClientConfig.configDef().parse(adminProperties()));
        this.producer = refuseInvalid("producer", () -> config.producerFactory.apply(producerProperties(null)));
        Map<String, Object> producerProps = producerProperties("streamsaga-validation");
        producerProps.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
        producerProps.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
        this.transactionTimeout = Duration.ofMillis((Integer) ProducerConfig.configDef().parse(producerProps)
                .get(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG));
    }

    private <T> T refuseInvalid(String client, java.util.function.Supplier<T> create) {
        try {
            return create.get();
        } catch (KafkaException e) {
            Throwable cause = e;
            while (!(cause instanceof ConfigException) && cause.getCause() != null) {
                cause = cause.getCause();
            }
            throw new ConfigurationException("invalid Kafka " + client + " configuration (bootstrap servers '"
                    + config.bootstrapServers + "'): " + cause.getMessage());
        }
    }

    /** Starts a builder; {@link Builder#bootstrapServers} is required. */
    public static Builder builder() {
        return new Builder();
    }

    @Override
    public String name() {
        return "kafka";
    }

    @Override
    public boolean carriesObjects() {
        return false;
    }

    /** The consumer seeks back and pauses only the record's partition (see {@link ConsumerLoop}). */
    @Override
    public boolean redeliversPerPartition() {
        return true;
    }

    /**
     * In exactly-once mode, on a member's thread while it handles a batch: runs {@code kept} once the batch's
     * transaction committed, {@code withdrawn} once it aborted (the batch is then handled again from its first record)
     * or its outcome was left to the broker; either on that thread, before the next batch. Otherwise (plain mode, or
     * outside a handler) runs {@code kept} at once: a plain member never takes back a delivery whose handler returned.
     */
    @Override
    public void afterDelivery(Runnable kept, Runnable withdrawn) {
        Objects.requireNonNull(kept, "kept");
        Objects.requireNonNull(withdrawn, "withdrawn");
        ConsumerLoop.Transaction transaction = currentTransaction.get();
        if (transaction == null) {
            kept.run();
        } else {
            transaction.afterOutcome(kept, withdrawn);
        }
    }

    /**
     * True on a member's thread in exactly-once mode while it handles a record: what its handler publishes goes into
     * the poll batch's transaction, which a failed publish aborts, the batch then being handled again. In plain mode
     * false: the bus waits for a handler's publishes before the record counts as handled, so that its offset is
     * committed only once the broker took them.
     */
    @Override
    public boolean publishesInDeliveryTransaction() {
        return currentTransaction.get() != null;
    }

    /**
     * With {@link Builder#awaitPublishesPerBatch} (plain mode), on a member's thread while it delivers a record: takes
     * the rest of the delivery, whose handler's publishes are in flight, and finishes it (waits for them, or handles
     * their failure as the record's) once the poll batch's records were delivered, before it commits their offsets.
     * Otherwise false: the bus waits for each record's publishes before the next record is delivered.
     */
    @Override
    public boolean finishLater(PendingDelivery rest) {
        ConsumerLoop.DeferredDeliveries deferrals = currentDeferrals.get();
        return deferrals != null && deferrals.defer(rest);
    }

    /** Whether {@link Builder#awaitPublishesPerBatch} is on: only then may a member take the rest of a delivery. */
    @Override
    public boolean mayFinishLater() {
        return config.awaitPublishesPerBatch;
    }

    /** Whether subscriptions run their handlers in Kafka transactions (exactly-once consume-transform-publish). */
    public boolean exactlyOnce() {
        return config.transactionalIdPrefix != null;
    }

    /**
     * Hands the message to the producer and returns a stage that completes with the record's position once the
     * broker has it (acks=all), or fails with a {@link PublishException} naming the topic, retriable when Kafka
     * says so. Blocks the caller while the producer cannot take the record yet: while it has no metadata for
     * the topic (its first send to the topic, or no broker reachable) or its {@code buffer.memory} is full, for
     * up to the producer's {@code max.block.ms} (60 s by default; bound it with
     * {@link Builder#producerProperty}); the stage then fails with a retriable {@code PublishException} caused
     * by Kafka's {@code TimeoutException}. A record taken fails once the producer's {@code delivery.timeout.ms}
     * (120 s by default) passed without an acknowledgement. Inside an exactly-once handler the record goes to
     * the handler's transactional producer, which blocks the same way ({@code max.block.ms} also bounds its
     * {@code initTransactions} and each batch's commit, retried when it times out: docs/kafka.md).
     */
    @Override
    public CompletionStage<RecordPosition> send(Message message) {
        SendResult result = new SendResult(message.topic());
        Throwable refused = produce(message, result);
        if (refused != null) {
            // What send threw is the outcome, even when the producer's thread already failed the record it had
            // taken (produce): nobody holds the stage yet, so it can still be replaced.
            result.obtrudeException(refused);
        }
        return result;
    }

    /**
     * The callback form: the producer's callback reports to {@code onOutcome}; no stage is built. Blocks the
     * caller as {@link #send(Message)} does, up to the producer's {@code max.block.ms}.
     */
    @Override
    public void send(Message message, BiConsumer<? super RecordPosition, ? super Throwable> onOutcome) {
        OutcomeOnce outcome = new OutcomeOnce(message.topic(), onOutcome);
        outcome.handedOver(produce(message, outcome));
    }

    /**
     * Hands the message's record to the producer (inside an exactly-once handler: to the handler's
     * transaction) with {@code callback}; returns the error when the producer's {@code send} threw, which is then
     * the send's outcome, whatever {@code callback} gets. Kafka's producer may have taken the record before it
     * threw: in a transaction an earlier send left in an error state (a record over {@code max.request.size}), it
     * appends the record and then refuses it, and its I/O thread aborts the appended record, before or after that
     * refusal, calling {@code callback} with the transaction's last error, the earlier send's (which, a
     * {@code RecordTooLargeException}, made a small dead letter look too large to the bus).
     */
    private Throwable produce(Message message, Callback callback) {
        if (closed) {
            return new TransportClosedException(message.topic(), "the Kafka transport is closed");
        }
        ProducerRecord<String, byte[]> record;
        try {
            record = WireFormat.toRecord(message, headerValues);
        } catch (PublishException e) {
            return e;
        } catch (RuntimeException e) {
            // what a record cannot carry: a timestamp before the epoch (Kafka's ProducerRecord refuses it) or
            // beyond a long of milliseconds
            return failure(message.topic(), e);
        }
        ConsumerLoop.Transaction transaction = currentTransaction.get();
        try {
            if (transaction == null) {
                producer.send(record, callback);
            } else {
                transaction.producerForSend().send(record, transaction.reporting(callback));
            }
            return null;
        } catch (RuntimeException e) {
            // closed between the check and the send: the producer refuses it for that reason only
            return closed ? new TransportClosedException(message.topic(), "the Kafka transport is closed")
                    : failure(message.topic(), transaction == null ? e : transaction.thrownBySend(e));
        }
    }

    /**
     * Retriable when Kafka says so (also for a record the producer aborted with its transaction, or refused, because
     * another record of it failed: ConsumerLoop.Transaction#reporting), and for a send into a transaction the
     * broker aborted for its timeout ({@link InvalidProducerEpochException}): the bus's retry runs in the member's next
     * transaction. A record too
     * large for Kafka is a {@link MessageTooLargeException}, to which the bus's dead-lettering reacts.
     */
    private static PublishException failure(String topic, Exception error) {
        if (error instanceof RecordTooLargeException) { // over max.request.size, buffer.memory or message.max.bytes
            return new MessageTooLargeException(topic, error.toString(), error);
        }
        return new PublishException(topic, error.toString(), error,
                error instanceof RetriableException || error instanceof InvalidProducerEpochException);
    }

    /**
     * The producer's callback of the callback form of {@link #send(Message, BiConsumer)}, which reports to
     * {@code onOutcome} once: what the producer's {@code send} threw (see {@link #produce}), or else what the
     * callback got, held until {@code send} returned when it came before (from the producer's thread, or from
     * {@code send} itself for a record it refused at once).
     */
    private static final class OutcomeOnce implements Callback {
        private final String topic;
        private final BiConsumer<? super RecordPosition, ? super Throwable> onOutcome;
        /** Whether the producer's send returned or threw, and whether it threw; guarded by this. */
        private boolean handedOver;
        private boolean refused;
        /** Whether the callback came before send returned, with what; guarded by this. */
        private boolean early;
        private RecordMetadata earlyMetadata;
        private Exception earlyError;

        OutcomeOnce(String topic, BiConsumer<? super RecordPosition, ? super Throwable> onOutcome) {
            this.topic = topic;
            this.onOutcome = onOutcome;
        }

        @Override
        public void onCompletion(RecordMetadata metadata, Exception error) {
            synchronized (this) {
                if (refused) {
                    return; // reported: what send threw
                }
                if (!handedOver) {
                    early = true;
                    earlyMetadata = metadata;
                    earlyError = error;
                    return;
                }
            }
            report(metadata, error);
        }

        /** The producer's send returned ({@code refusal} null) or threw {@code refusal}, the outcome then. */
        void handedOver(Throwable refusal) {
            boolean reportEarly;
            synchronized (this) {
                handedOver = true;
                refused = refusal != null;
                reportEarly = early && !refused;
            }
            if (refusal != null) {
                onOutcome.accept(null, refusal);
            } else if (reportEarly) {
                report(earlyMetadata, earlyError);
            }
        }

        private void report(RecordMetadata metadata, Exception error) {
            if (error != null) {
                onOutcome.accept(null, failure(topic, error));
            } else {
                onOutcome.accept(new RecordPosition(metadata.topic(), metadata.partition(), metadata.offset()), null);
            }
        }
    }

    /**
     * The stage {@link #send} returns, and at the same time the producer's callback for that record.
     *
     * <p>Why not a lambda over the message: the producer keeps each callback until the broker acknowledges
     * the record, which under load means tens of thousands of records in its buffer at once. A lambda that
     * captured the message kept every in-flight message (id, headers, timestamp) reachable too, and young
     * collections copied all of them; this keeps one future and the topic name per in-flight record, about
     * what a plain kafka-clients callback costs.
     */
    private static final class SendResult extends CompletableFuture<RecordPosition> implements Callback {
        private final String topic;

        SendResult(String topic) {
            this.topic = topic;
        }

        @Override
        public void onCompletion(RecordMetadata metadata, Exception error) {
            if (error != null) {
                completeExceptionally(failure(topic, error));
            } else {
                complete(new RecordPosition(metadata.topic(), metadata.partition(), metadata.offset()));
            }
        }
    }

    /**
     * Starts a member of {@code group} on its own thread and waits up to {@link Builder#assignmentTimeout} for
     * its first partition assignment; from inside a handler of a subscription of the same group (through this
     * transport or another {@code KafkaTransport} in this JVM) it returns without waiting, since the group's
     * rebalance waits for that handler to return. At {@link StartPosition#LATEST} it reads the end offsets of
     * the topics the pattern matches before the member starts, and the member starts there on the partitions
     * its group has no committed offset for (for a {@code read_committed} member the last stable offset, before
     * a transaction still open), so what is published after it returned is delivered also when the assignment
     * comes later. A partition added since, or added before while the group had no member on a topic it has
     * committed offsets on, is read from its beginning, as a topic created after the subscription is. A group
     * with no member commits those starts here, before its member joins; otherwise each member commits the starts
     * of the partitions assigned to it.
     *
     * @throws ConfigurationException when the transport is closed, also when {@link #close()} was called while
     *                                this subscribe was under way (no member is left running then)
     * @throws KafkaTransportException at {@link StartPosition#LATEST}, when listing the topics or reading the
     *                                 end offsets or the group's committed offsets, or committing its start,
     *                                 fails or takes longer than
     *                                 {@link Builder#requestTimeout}, or Kafka cannot create the admin client
     *                                 for it; when Kafka cannot create the member's
     *                                 consumer (settings that parse but that it cannot use, such as a keystore
     *                                 it cannot load); when Kafka ends the member while this waits for its
     *                                 assignment (credentials the broker refuses), with Kafka's error as the
     *                                 cause; in exactly-once mode, when the member's producer cannot
     *                                 initialise its transactions. Retriable on a timeout or when Kafka says
     *                                 so; no member is left running then
     */
    @Override
    public Subscription subscribe(String group, TopicPattern pattern, StartPosition start, RecordHandler handler) {
        ConfigurationException.require(!closed, "the Kafka transport is closed (group '%s')", group);
        ConfigurationException.require(group != null && !group.isBlank(), "consumer group must not be blank, but was '%s'", group);
        ConfigurationException.require(pattern != null && start != null && handler != null,
                "pattern, start position and handler are required (group '%s')", group);
        // The lowest number free in the group, so that a subscription re-created after a close gets the
        // transactional id (and group.instance.id) that a restarted instance uses and fences, not a new one.
        // From a handler of a member of this group (open, or closed and ending after this record; of this
        // transport or another one in this JVM) the first assignment cannot come before the handler returns:
        // the group's rebalance waits for that member to poll again or leave, and its thread is this one.
        boolean fromTheGroupsHandler = ConsumerLoop.runsAMemberOf(group);
        int member = takeMember(group);
        String clientId = clientPrefix + "-" + group + "-" + member;
        Set<String> existingTopics;
        Map<TopicPartition, Long> latestStarts;
        KafkaConsumer<String, byte[]> consumer;
        try {
            existingTopics = start == StartPosition.LATEST ? topicNames() : Set.of();
            // "Published after subscribe returned" starts at the end now, not at the end as of the assignment,
            // which may come after subscribe returned: its wait timed out, was zero, or was skipped from a handler
            // of the group. At the end as the member reads it (a read_committed member: before a transaction
            // still open, whose records it gets once that commits), where its own seek to the end would land.
            latestStarts = latestStarts(group,
                    endOffsets(existingTopics.stream().filter(pattern::matches).toList(), memberIsolation));
            consumer = newConsumer(group, member, clientId);
        } catch (RuntimeException e) {
            releaseMember(group, member);
            throw e;
        }
        Producer<String, byte[]> transactional = null;
        MemberProducers producers = null;
        if (exactlyOnce()) {
            // Stable per group and member: a restarted instance fences its predecessor and aborts its open
            // transaction, so a crash between consume and publish cannot leave a second output behind.
            producers = new MemberProducers(config.transactionalIdPrefix + "." + group + "." + member);
            try {
                transactional = producers.create();
            } catch (RuntimeException e) {
                consumer.close(Duration.ZERO);
                releaseMember(group, member);
                throw e;
            }
        }
        ConsumerLoop loop = new ConsumerLoop(group, pattern, start, handler, consumer, transactional, producers,
                currentTransaction, config.pollTimeout, config.redeliveryBackoff, config.closeTimeout,
                config.requestTimeout, existingTopics, latestStarts, config.nanoClock,
                config.awaitPublishesPerBatch ? currentDeferrals : null);
        KafkaSubscription[] holder = new KafkaSubscription[1];
        KafkaSubscription subscription = new KafkaSubscription(group, pattern, loop,
                () -> {
                    // Once closed and its thread ended (its producer closed), not before: a subscription
                    // closed from its handler still commits its last batch with the member's transactional id.
                    // Noted as closed before it leaves the open ones, so consumerGroups never misses it.
                    // The later close time wins: two members of the group ending together may get here in any order.
                    closedSubscriptions.merge(new GroupPattern(group, pattern), System.nanoTime(),
                            (noted, now) -> now - noted > 0 ? now : noted);
                    if (subscriptions.remove(holder[0])) {
                        releaseMember(group, member);
                    }
                });
        holder[0] = subscription;
        boolean started;
        synchronized (lifecycle) {
            // close() may have run since the check above: once it has, it no longer sees new subscriptions
            started = !closed;
            if (started) {
                subscriptions.add(subscription);
                loop.start("streamsaga-kafka-" + group + "-" + member);
            }
        }
        if (!started) {
            consumer.close(Duration.ZERO);
            if (transactional != null) {
                transactional.close(Duration.ZERO);
            }
            releaseMember(group, member);
            throw new ConfigurationException("the Kafka transport is closed (group '" + group + "')");
        }
        if (fromTheGroupsHandler) {
            log.debug("group {} on {} subscribed from a handler of the group: its assignment comes once that handler"
                    + " returned, so subscribe does not wait for it", group, pattern);
        } else if (!config.assignmentTimeout.isZero() && !subscription.awaitAssignment(config.assignmentTimeout)) {
            log.warn("group {} on {} got no partition assignment within {}; it will start when it does",
                    group, pattern, config.assignmentTimeout);
        }
        Throwable failure = loop.failure();
        if (failure != null) {
            // Ended by Kafka before subscribe returned (credentials the broker refuses, say): the caller gets the
            // error rather than a member that is already gone.
            subscription.close();
            throw new KafkaTransportException("the member of group '" + group + "' on " + pattern
                    + " failed before subscribe returned: " + failure, failure, failure instanceof RetriableException);
        }
        return subscription;
    }

    /**
     * The member's consumer. Settings that parse but that the consumer cannot use (a keystore it cannot load, an
     * interceptor whose constructor fails) pass {@code build()} and fail here:
     * a {@link KafkaTransportException}, as subscribe's other failures, retriable when Kafka says so.
     */
    private KafkaConsumer<String, byte[]> newConsumer(String group, int member, String clientId) {
        try {
            return new KafkaConsumer<>(consumerProperties(group, member, clientId), new StringDeserializer(),
                    new ByteArrayDeserializer());
        } catch (KafkaException e) {
            throw cannotCreate("the consumer of group '" + group + "'", e);
        }
    }

    /** Kafka could not create a client from settings that parse: retriable when Kafka says so. */
    private static KafkaTransportException cannotCreate(String client, KafkaException e) {
        return new KafkaTransportException("cannot create " + client + ": " + e
                + (e.getCause() != null ? " (" + e.getCause() + ")" : ""), e, e instanceof RetriableException);
    }

    /** The transactional producers of one exactly-once member, all with its transactional id. */
    private final class MemberProducers implements TransactionalProducers {
        private final String transactionalId;
        /** The id's producer id and epoch once the last producer created initialised, or null if unknown. */
        private TransactionDescription created;

        MemberProducers(String transactionalId) {
            this.transactionalId = transactionalId;
        }

        @Override
        public Producer<String, byte[]> create() {
            Producer<String, byte[]> transactional = null;
            try {
                transactional = config.producerFactory.apply(producerProperties(transactionalId));
                transactional.initTransactions();
            } catch (RuntimeException e) {
                if (transactional != null) {
                    transactional.close(Duration.ZERO);
                }
                throw new KafkaTransportException("cannot initialise transactions for '" + transactionalId + "'", e,
                        e instanceof RetriableException);
            }
            created = describe();
            return transactional;
        }

        @Override
        public Duration transactionTimeout() {
            return transactionTimeout;
        }

        @Override
        public boolean abortedForTimeout() {
            TransactionDescription now = created == null ? null : describe();
            return now != null && now.producerId() == created.producerId()
                    && now.producerEpoch() == created.producerEpoch() + 1
                    && (now.state() == TransactionState.PREPARE_ABORT || now.state() == TransactionState.COMPLETE_ABORT);
        }

        private TransactionDescription describe() {
            try {
                return await(admin().describeTransactions(List.of(transactionalId)).description(transactionalId),
                        "the transaction of " + transactionalId);
            } catch (RuntimeException e) {
                log.warn("cannot read the transaction state of {}; on a cluster at transaction.version 1 a batch"
                        + " outliving transaction.timeout.ms then stops its member as if fenced: {}", transactionalId,
                        e.toString());
                return null;
            }
        }
    }

    private int takeMember(String group) {
        synchronized (membersInUse) {
            BitSet inUse = membersInUse.computeIfAbsent(group, g -> new BitSet());
            int member = inUse.nextClearBit(0);
            inUse.set(member);
            return member;
        }
    }

    private void releaseMember(String group, int member) {
        synchronized (membersInUse) {
            BitSet inUse = membersInUse.get(group);
            if (inUse != null) {
                inUse.clear(member);
                if (inUse.isEmpty()) {
                    membersInUse.remove(group); // or every group ever subscribed would keep an entry
                }
            }
        }
    }

    /**
     * The subscriptions of this transport not closed yet (the bus hands out wrappers of these); one closed
     * from inside its handler stays until its thread has ended.
     */
    public Set<KafkaSubscription> subscriptions() {
        return Set.copyOf(subscriptions);
    }

    /**
     * The end of each partition of {@code topic} as this transport's members read it, so the offset a group of
     * this transport reaches once it handled everything there is (its lag, a replay's target): for a
     * {@code read_committed} member (the default) the last stable offset, the first offset of a transaction still
     * open (the high watermark when none is), for {@code read_uncommitted} the high watermark.
     */
    @Override
    public Map<Integer, Long> endOffsets(String topic) {
        Map<Integer, Long> result = new TreeMap<>();
        endOffsets(List.of(topic), memberIsolation).forEach((partition, end) ->
                result.put(partition.partition(), end));
        return result;
    }

    /**
     * Where a {@link StartPosition#LATEST} member of {@code group} starts on the partitions of {@code ends} the
     * group has no committed offset for: {@code ends} without those on a topic it has committed offsets on (the
     * group started on that topic before, so such a partition was added to it since, while the group had no
     * member, and is read from its beginning, as one added after the subscription is, rather than from the end
     * now, which skipped what was published to it meanwhile).
     *
     * <p>When the group has no member, the starts at the end are committed now, all at once (the group's first
     * subscribe, or one after all its members closed): otherwise each member commits the starts of the
     * partitions assigned to it, and when a member of the group's first generation did not (it crashed first),
     * a member subscribing next found a partition that existed when the group started without an offset on a
     * topic with offsets, took it for one added while the group was away and read its history. The broker
     * refuses an admin commit while the group has members, in the same step as the commit; when it refuses, the
     * members commit their starts on assignment. (Listing the offsets and committing are two requests: a member
     * of another process that joins, commits and leaves between them has those offsets replaced by the starts.) A subscribe
     * that fails after this (creating its consumer, say) leaves them: the group's next one resumes there. Two
     * admin requests, when there is an end.
     */
    private Map<TopicPartition, Long> latestStarts(String group, Map<TopicPartition, Long> ends) {
        if (ends.isEmpty()) {
            return ends;
        }
        Map<TopicPartition, OffsetAndMetadata> committed =
                await(admin().listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata(), "offsets of group " + group);
        Set<String> resumed = new HashSet<>();
        committed.forEach((partition, offset) -> {
            if (offset != null) {
                resumed.add(partition.topic());
            }
        });
        Map<TopicPartition, Long> result = new HashMap<>(ends);
        result.keySet().removeIf(partition -> resumed.contains(partition.topic()) && committed.get(partition) == null);
        Map<TopicPartition, OffsetAndMetadata> starts = new HashMap<>();
        result.forEach((partition, end) -> {
            if (committed.get(partition) == null) {
                starts.put(partition, new OffsetAndMetadata(end));
            }
        });
        if (!starts.isEmpty()) {
            commitStartsOfAGroupWithoutMembers(group, starts);
        }
        return result;
    }

    /** Commits {@code starts} for {@code group} unless it has members (then the broker refuses, and they stay fresh). */
    private void commitStartsOfAGroupWithoutMembers(String group, Map<TopicPartition, OffsetAndMetadata> starts) {
        String what = "the start of group " + group;
        try {
            // The admin client's own timeout too: past ours it would otherwise go on retrying (up to its
            // default.api.timeout.ms) and could still commit these starts after subscribe failed.
            int timeoutMs = (int) Math.min(Integer.MAX_VALUE, config.requestTimeout.toMillis());
            admin().alterConsumerGroupOffsets(group, starts, new AlterConsumerGroupOffsetsOptions().timeoutMs(timeoutMs)).all()
                    .get(config.requestTimeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            if (!(e.getCause() instanceof UnknownMemberIdException)) {
                throw commitFailure(what, e.getCause());
            }
            log.debug("group {} has members: each commits its start on the partitions assigned to it", group);
        } catch (TimeoutException e) {
            throw commitFailure(what, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw commitFailure(what, e);
        }
    }

    private static KafkaTransportException commitFailure(String what, Throwable cause) {
        return new KafkaTransportException("cannot commit " + what + " to Kafka: " + cause, cause,
                cause instanceof RetriableException || cause instanceof TimeoutException);
    }

    /**
     * The end offset of each partition of {@code topics} (one that does not exist has none), in two admin
     * requests however many topics: at {@code READ_UNCOMMITTED} the high watermark, at {@code READ_COMMITTED}
     * the last stable offset, the first offset of a transaction still open (where a read_committed consumer's
     * {@code seekToEnd} lands).
     */
    private Map<TopicPartition, Long> endOffsets(List<String> topics, IsolationLevel isolation) {
        if (topics.isEmpty()) {
            return Map.of();
        }
        Map<TopicPartition, OffsetSpec> request = new HashMap<>();
        Map<String, org.apache.kafka.common.KafkaFuture<TopicDescription>> descriptions =
                admin().describeTopics(topics).topicNameValues();
        for (String topic : topics) {
            for (int partition : partitions(topic, descriptions.get(topic),
                    config.nanoClock.getAsLong() + config.requestTimeout.toNanos())) {
                request.put(new TopicPartition(topic, partition), OffsetSpec.latest());
            }
        }
        if (request.isEmpty()) {
            return Map.of();
        }
        String what = "end offsets of " + (topics.size() == 1 ? topics.get(0) : topics);
        Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> offsets =
                await(admin().listOffsets(request, new ListOffsetsOptions(isolation)).all(), what);
        Map<TopicPartition, Long> result = new HashMap<>();
        offsets.forEach((partition, info) -> result.put(partition, info.offset()));
        return result;
    }

    /**
     * The offsets {@code group} committed on {@code topic}. When the broker lists none, the offsets are read
     * again, stable: an offset sent in a transaction not complete yet (an exactly-once member's batch, between
     * its offsets and the transaction's markers) is left out of a plain listing, so a group whose only commits
     * are pending would look as if it had none (a {@code Reprocessor} would take its replay group for unused
     * and join a replay running elsewhere). The stable read waits until the transaction completes; the whole
     * call, every request in it included, takes at most {@link Builder#requestTimeout}, then throws a retriable
     * {@link KafkaTransportException}. Kafka's admin client logs a warning for each pending partition of a
     * stable read; while waiting, the offsets are read plain and only now and then stable, so a transaction
     * that commits costs one such warning per pending partition.
     */
    @Override
    public Map<Integer, Long> committedOffsets(String group, String topic) {
        long deadline = config.nanoClock.getAsLong() + config.requestTimeout.toNanos();
        Map<Integer, Long> result = offsetsOn(topic, offsetsOf(group, null, false, "offsets of group " + group, deadline));
        return result.isEmpty() ? stableCommittedOffsets(group, topic, deadline) : result;
    }

    private static Map<Integer, Long> offsetsOn(String topic, Map<TopicPartition, OffsetAndMetadata> offsets) {
        Map<Integer, Long> result = new TreeMap<>();
        offsets.forEach((partition, offset) -> {
            if (offset != null && partition.topic().equals(topic)) {
                result.put(partition.partition(), offset.offset());
            }
        });
        return result;
    }

    /**
     * {@code group}'s offsets on each partition of {@code topic}, read stable (as a {@code read_committed}
     * consumer's {@code committed} does): the broker answers a partition whose offset is pending in a transaction
     * with an error, which the admin client leaves out of its answer, logging a warning for it ("Skipping return
     * offset for ... due to error UNSTABLE_OFFSET_COMMIT"). While some are pending, the offsets are read plain
     * (no warning) until every one of them is listed, committed with its transaction; read stable only again
     * after {@link #FIRST_STABLE_RECHECK}, then twice as long each time, to notice a transaction that aborted
     * (which a plain read cannot tell from one still open), rather than at every read: Kafka then logs that
     * warning once per pending partition when the transaction commits, not twenty times a second while it is open.
     * Once no more than {@link #lastStableRead} is left before {@code deadline}, they are read stable once more
     * and the read fails if they are still pending, so a transaction that aborted after the last of those reads
     * is not reported as still pending. Every request gets only what is left before {@code deadline}, as its
     * wait and as the admin client's own timeout.
     */
    private Map<Integer, Long> stableCommittedOffsets(String group, String topic, long deadline) {
        String what = "offsets of group " + group + " on " + topic;
        List<TopicPartition> partitions = partitions(topic, admin().describeTopics(List.of(topic),
                new DescribeTopicsOptions().timeoutMs(timeoutMsUntil(deadline))).topicNameValues().get(topic), deadline)
                .stream().map(partition -> new TopicPartition(topic, partition)).toList();
        if (partitions.isEmpty()) {
            return Map.of();
        }
        long lastRead = deadline - lastStableRead().toNanos();
        long now = config.nanoClock.getAsLong();
        long nextStableRead = now;
        Duration recheck = FIRST_STABLE_RECHECK;
        Set<TopicPartition> pending = Set.of();
        while (true) {
            // near the deadline a last stable read: a transaction that aborted since the previous one completed
            boolean last = now - lastRead >= 0;
            if (last || now - nextStableRead >= 0) {
                Map<TopicPartition, OffsetAndMetadata> offsets = offsetsOf(group, partitions, true, what, deadline);
                if (offsets.keySet().containsAll(partitions)) {
                    return offsetsOn(topic, offsets);
                }
                if (last) {
                    throw new KafkaTransportException("cannot read " + what + " from Kafka: offsets pending in a"
                            + " transaction not complete within " + config.requestTimeout, null, true);
                }
                pending = new HashSet<>(partitions);
                pending.removeAll(offsets.keySet());
                nextStableRead = now + recheck.toNanos();
                recheck = recheck.multipliedBy(2);
            } else {
                Map<TopicPartition, OffsetAndMetadata> offsets = offsetsOf(group, partitions, false, what, deadline);
                if (pending.stream().allMatch(partition -> offsets.get(partition) != null)) {
                    return offsetsOn(topic, offsets); // their transaction committed
                }
            }
            long left = lastRead - config.nanoClock.getAsLong();
            try {
                TimeUnit.NANOSECONDS.sleep(Math.max(0, Math.min(left, PENDING_OFFSETS_BACKOFF.toNanos())));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw readFailure(what, e);
            }
            now = config.nanoClock.getAsLong();
        }
    }

    /**
     * How long before the deadline of {@link #stableCommittedOffsets} its last stable read is made:
     * {@link #LAST_STABLE_READ}, or half the request timeout when that is shorter.
     */
    private Duration lastStableRead() {
        Duration half = config.requestTimeout.dividedBy(2);
        return half.compareTo(LAST_STABLE_READ) < 0 ? half : LAST_STABLE_READ;
    }

    /**
     * {@code group}'s offsets on {@code partitions} (all of them when null): stable, without those pending in a
     * transaction; or plain. Waits until {@code deadline} at the latest, as does the admin client.
     */
    private Map<TopicPartition, OffsetAndMetadata> offsetsOf(String group, List<TopicPartition> partitions,
                                                            boolean stable, String what, long deadline) {
        ListConsumerGroupOffsetsSpec spec = new ListConsumerGroupOffsetsSpec();
        if (partitions != null) {
            spec.topicPartitions(partitions);
        }
        return awaitUntil(admin().listConsumerGroupOffsets(Map.of(group, spec), new ListConsumerGroupOffsetsOptions()
                .requireStable(stable).timeoutMs(timeoutMsUntil(deadline))).partitionsToOffsetAndMetadata(group),
                what, deadline);
    }

    /** The admin client's own timeout for a request to be answered by {@code deadline}: at least 1 ms. */
    private int timeoutMsUntil(long deadline) {
        long left = TimeUnit.NANOSECONDS.toMillis(deadline - config.nanoClock.getAsLong());
        return (int) Math.max(1, Math.min(Integer.MAX_VALUE, left));
    }

    /** How long a read of a group's offsets waits before asking again while some are pending. */
    private static final Duration PENDING_OFFSETS_BACKOFF = Duration.ofMillis(50);

    /** How long after a stable read that met pending offsets the next one is made (twice as long after that). */
    private static final Duration FIRST_STABLE_RECHECK = Duration.ofSeconds(1);

    /** How long before the request timeout a read of pending offsets makes its last stable read. */
    private static final Duration LAST_STABLE_READ = Duration.ofSeconds(1);

    /**
     * The groups of this transport's subscriptions to {@code topic} not closed yet (always current), and every
     * group with committed offsets on it as the broker listed them (listing every group and its offsets takes
     * two admin requests, so the listing is reused for {@link Builder#consumerGroupsMaxAge}, for every topic): a
     * group that first commits on the topic elsewhere (another instance or application) shows up at most that
     * much later. A group whose subscriptions here are closed counts as long as the broker keeps its committed
     * offsets on the topic, where it resumes when it subscribes again (until it is deleted, or its offsets
     * expire after the broker's {@code offsets.retention.minutes}); until a listing made after the close says
     * so, it counts all the same. (In exactly-once mode a member's thread ends once the broker lists the
     * offsets of its last transaction, which it does only after that transaction's markers are written, or
     * when they are not written within the {@linkplain Builder#closeTimeout close timeout}: it waits no longer,
     * and logs a warning, since a listing made before they are may then miss a group whose only commits were
     * that transaction.)
     */
    @Override
    public Set<String> consumerGroups(String topic) {
        // In this order: the open subscriptions, the closed ones, then the listing. A subscription closing
        // meanwhile is noted as closed before it leaves the open ones, so one of the first two reads sees it;
        // an entry another caller dropped in between was answered for by a listing made after its close, and
        // the listing below is at least as recent (listings are shared and replace each other in order, or
        // made per call), so it has the group's final commit. Taken first, the listing could predate a close
        // whose entry a caller with a newer listing dropped before this one read it, and the group was missed.
        Set<String> groups = new TreeSet<>();
        for (KafkaSubscription subscription : subscriptions) {
            if (subscription.pattern().matches(topic)) {
                groups.add(subscription.group());
            }
        }
        Map<GroupPattern, Long> closed = new HashMap<>(closedSubscriptions);
        config.consumerGroupsStep.run();
        BrokerGroups listed = brokerGroups();
        groups.addAll(listed.groupsByTopic().getOrDefault(topic, Set.of()));
        closed.forEach((subscription, closedAtNanos) -> {
            if (listed.listedAtNanos() - closedAtNanos > 0) {
                // what the broker listed since (its final commit included) answers for its group from now on;
                // only this close's entry: the group may have closed again since
                closedSubscriptions.remove(subscription, closedAtNanos);
            } else if (subscription.pattern().matches(topic)) {
                groups.add(subscription.group());
            }
        });
        return groups;
    }

    private record GroupPattern(String group, TopicPattern pattern) {
    }

    /**
     * The broker's last listing of groups, listed again when older than the maximum age. The callers that find
     * it stale together (every acknowledgement under load) wait for one listing rather than each sending their
     * own, and share its outcome: a failure is not kept, the next call lists again. The wait can be interrupted
     * (closing a subscription whose handler waits here stops it), and no lock is held while the broker answers.
     */
    private BrokerGroups brokerGroups() {
        if (consumerGroupsMaxAgeNanos == 0) {
            return awaitListing(listBrokerGroups());
        }
        BrokerGroups current = brokerGroups;
        if (current != null && current.youngerThan(consumerGroupsMaxAgeNanos)) {
            return current;
        }
        CompletableFuture<BrokerGroups> listing;
        synchronized (brokerGroupsLock) {
            current = brokerGroups;
            if (current != null && current.youngerThan(consumerGroupsMaxAgeNanos)) {
                return current;
            }
            listing = brokerGroupsListing;
            if (listing == null) {
                CompletableFuture<BrokerGroups> started = listBrokerGroups();
                brokerGroupsListing = started;
                started.whenComplete((listed, error) -> {
                    synchronized (brokerGroupsLock) {
                        if (listed != null) {
                            brokerGroups = listed;
                        }
                        brokerGroupsListing = null;
                    }
                });
                listing = started;
            }
        }
        return awaitListing(listing);
    }

    private BrokerGroups awaitListing(CompletableFuture<BrokerGroups> listing) {
        try {
            return listing.get(); // completes within two request timeouts (see listBrokerGroups)
        } catch (ExecutionException e) {
            throw readFailure("consumer groups", e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw readFailure("consumer groups", e);
        }
    }

    /** Lists every group and its committed offsets (two admin requests, each bounded by the request timeout). */
    private CompletableFuture<BrokerGroups> listBrokerGroups() {
        long started = System.nanoTime(); // its age counts from before the requests, to err on the young side
        Admin client = admin();
        return answer(client.listGroups().all()).thenCompose(listings -> {
            Map<String, ListConsumerGroupOffsetsSpec> all = new HashMap<>();
            for (GroupListing listing : listings) {
                all.put(listing.groupId(), new ListConsumerGroupOffsetsSpec());
            }
            // one request for every group rather than one per group
            return all.isEmpty() ? CompletableFuture.completedFuture(Map.<String, Map<TopicPartition, OffsetAndMetadata>>of())
                    : answer(client.listConsumerGroupOffsets(all).all());
        }).thenApply(offsets -> {
            Map<String, Set<String>> groupsByTopic = new HashMap<>();
            offsets.forEach((group, partitions) -> partitions.forEach((partition, offset) -> {
                if (offset != null) {
                    groupsByTopic.computeIfAbsent(partition.topic(), t -> new HashSet<>()).add(group);
                }
            }));
            groupsByTopic.replaceAll((topic, groups) -> Set.copyOf(groups));
            return new BrokerGroups(started, Map.copyOf(groupsByTopic));
        });
    }

    /** The admin client's answer as a future that fails after the request timeout at the latest. */
    private <T> CompletableFuture<T> answer(org.apache.kafka.common.KafkaFuture<T> request) {
        CompletableFuture<T> answer = new CompletableFuture<>();
        request.whenComplete((value, error) -> {
            if (error != null) {
                answer.completeExceptionally(error);
            } else {
                answer.complete(value);
            }
        });
        return answer.orTimeout(config.requestTimeout.toMillis(), TimeUnit.MILLISECONDS);
    }

    /** The groups with committed offsets per topic, as the broker listed them at {@code listedAtNanos}. */
    private record BrokerGroups(long listedAtNanos, Map<String, Set<String>> groupsByTopic) {
        boolean youngerThan(long maxAgeNanos) {
            return System.nanoTime() - listedAtNanos < maxAgeNanos;
        }
    }

    @Override
    public Optional<Duration> retentionHorizon() {
        return Optional.ofNullable(config.retentionHorizon);
    }

    /**
     * Closes every subscription as {@link KafkaSubscription#close()} does, all together: each member is told
     * to stop (commits what its handlers finished, leaves the group, releases its member number) before any is
     * waited for, and close waits up to the {@linkplain Builder#closeTimeout close timeout} for all their threads,
     * interrupts those still running and waits up to the close timeout again, however many there are (a
     * subscription closed from inside its own handler, when close is called there, ends after that record);
     * then the shared producer with
     * {@code close(closeTimeout)}: buffered records get that long to be sent, the rest fail (their stages
     * complete exceptionally); then the admin client, with the same timeout. The Kafka producer can outlast
     * its timeout: it then forces the close but waits for its I/O thread without a bound, and that thread first
     * finishes waiting for a broker it has a request for, such as the idempotent producer's id from a broker
     * that never answered, for up to the producer's {@code request.timeout.ms} (30 s by default). Idempotent:
     * only the first call closes, a later or concurrent one returns at once. A {@link #subscribe} under way
     * when it is called either started its member before, and that member is closed with the others, or
     * fails with a {@link ConfigurationException} as after the close.
     */
    @Override
    public void close() {
        synchronized (lifecycle) {
            if (closed) {
                return;
            }
            closed = true;
        }
        KafkaSubscription.closeAll(List.copyOf(subscriptions), config.closeTimeout);
        producer.close(config.closeTimeout);
        synchronized (adminLock) {
            if (admin != null) {
                admin.close(config.closeTimeout);
            }
        }
    }

    private List<Integer> partitions(String topic, org.apache.kafka.common.KafkaFuture<TopicDescription> described,
                                     long deadline) {
        try {
            TopicDescription description = described.get(
                    Math.max(0, deadline - config.nanoClock.getAsLong()), TimeUnit.NANOSECONDS);
            return description.partitions().stream().map(TopicPartitionInfo::partition).toList();
        } catch (ExecutionException e) {
            if (e.getCause() instanceof UnknownTopicOrPartitionException) {
                return List.of();
            }
            throw readFailure("partitions of " + topic, e.getCause());
        } catch (TimeoutException e) {
            throw readFailure("partitions of " + topic, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw readFailure("partitions of " + topic, e);
        }
    }

    private Set<String> topicNames() {
        return await(admin().listTopics().names(), "topic names");
    }

    private <T> T await(org.apache.kafka.common.KafkaFuture<T> future, String what) {
        return awaitUntil(future, what, config.nanoClock.getAsLong() + config.requestTimeout.toNanos());
    }

    /** The answer of an admin request, waited for until {@code deadline} ({@code nanoClock}) at the latest. */
    private <T> T awaitUntil(org.apache.kafka.common.KafkaFuture<T> future, String what, long deadline) {
        try {
            return future.get(Math.max(0, deadline - config.nanoClock.getAsLong()), TimeUnit.NANOSECONDS);
        } catch (ExecutionException e) {
            throw readFailure(what, e.getCause());
        } catch (TimeoutException e) {
            throw readFailure(what, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw readFailure(what, e);
        }
    }

    /**
     * An admin query's failure, retriable when Kafka says so or on a timeout. Not named {@code failure}: an
     * overload of the publish failure, it lost to it for every {@code Exception} (a timeout, an interrupt).
     */
    private static KafkaTransportException readFailure(String what, Throwable cause) {
        return new KafkaTransportException("cannot read " + what + " from Kafka: " + cause, cause,
                cause instanceof RetriableException || cause instanceof TimeoutException);
    }

    /**
     * The admin client, created at the first admin query; Kafka refusing to create it (settings that parse but
     * that it cannot use) is a {@link KafkaTransportException}, as the query's other failures.
     */
    private Admin admin() {
        Admin current = admin;
        if (current != null) {
            return current;
        }
        synchronized (adminLock) {
            ConfigurationException.require(!closed, "the Kafka transport is closed");
            if (admin == null) {
                // Created at the first admin query: settings that parse but that it cannot use (a keystore it
                // cannot load) fail that query, typed as its other failures, and the next one tries again.
                try {
                    admin = config.adminFactory.apply(adminProperties());
                } catch (KafkaException e) {
                    throw cannotCreate("the admin client", e);
                }
            }
            return admin;
        }
    }

    private Map<String, Object> adminProperties() {
        Map<String, Object> props = new HashMap<>();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, config.bootstrapServers);
        props.put(AdminClientConfig.CLIENT_ID_CONFIG, clientPrefix + "-admin");
        props.putAll(config.adminOverrides);
        return props;
    }

    /** The properties of a producer (transactional with {@code transactionalId}); package-private for tests. */
    Map<String, Object> producerProperties(String transactionalId) {
        Map<String, Object> props = new HashMap<>();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, config.bootstrapServers);
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        props.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        props.put(ProducerConfig.CLIENT_ID_CONFIG, clientPrefix + (transactionalId == null ? "-producer" : "-tx-" + transactionalId));
        props.putAll(config.producerOverrides);
        if (transactionalId != null) {
            props.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, transactionalId);
        }
        return props;
    }

    /** The properties of a member's consumer; package-private for tests. */
    Map<String, Object> consumerProperties(String group, int member, String clientId) {
        Map<String, Object> props = new HashMap<>();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, config.bootstrapServers);
        props.put(ConsumerConfig.CLIENT_ID_CONFIG, clientId);
        // Start positions of new groups are set explicitly on assignment; this covers offsets out of range
        // (deleted by retention): resume at the oldest record still there rather than skip to the end.
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        // Wildcard subscriptions see new topics at the next metadata refresh.
        props.put(ConsumerConfig.METADATA_MAX_AGE_CONFIG, 5000);
        props.putAll(config.consumerOverrides);
        Object instanceId = config.consumerOverrides.get(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG);
        if (instanceId != null) {
            // static membership per member: one id for every member of a group would have them fence each other
            props.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, instanceId + "-" + member);
        }
        props.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        return props;
    }

    /**
     * Configures a {@link KafkaTransport}. Validates each setting as it is given and quotes the bad value.
     * Not thread-safe; the transport copies what it needs.
     */
    public static final class Builder {
        private static final Set<String> OWNED_CONSUMER_KEYS = Set.of(ConsumerConfig.GROUP_ID_CONFIG,
                ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG,
                ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG);
        private static final Set<String> OWNED_PRODUCER_KEYS = Set.of(ProducerConfig.TRANSACTIONAL_ID_CONFIG,
                ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG);

        private String bootstrapServers;
        private final Map<String, Object> producerOverrides = new LinkedHashMap<>();
        private final Map<String, Object> consumerOverrides = new LinkedHashMap<>();
        private final Map<String, Object> adminOverrides = new LinkedHashMap<>();
        private Duration pollTimeout = Duration.ofMillis(100);
        private Duration redeliveryBackoff = Duration.ofSeconds(1);
        private Duration assignmentTimeout = Duration.ofSeconds(30);
        private Duration closeTimeout = Duration.ofSeconds(10);
        private Duration requestTimeout = Duration.ofSeconds(30);
        private Duration consumerGroupsMaxAge = Duration.ofSeconds(5);
        private Duration retentionHorizon;
        private String transactionalIdPrefix;
        private boolean awaitPublishesPerBatch;
        private String clientIdPrefix = "streamsaga";
        private Runnable consumerGroupsStep = () -> { };
        private Function<Map<String, Object>, Admin> adminFactory = Admin::create;
        private Function<Map<String, Object>, Producer<String, byte[]>> producerFactory =
                properties -> new KafkaProducer<>(properties, new StringSerializer(), new ByteArraySerializer());
        private LongSupplier nanoClock = System::nanoTime;

        private Builder() {
        }

        /** The Kafka {@code bootstrap.servers}, such as {@code localhost:9092}. Required. */
        public Builder bootstrapServers(String servers) {
            ConfigurationException.require(servers != null && !servers.isBlank(),
                    "bootstrap servers must not be blank, but was '%s'", servers);
            this.bootstrapServers = servers;
            return this;
        }

        /**
         * A producer property over the defaults ({@code acks=all}, idempotence on, {@code linger.ms=5}); a blank or
         * null name is refused, as by every client's setter.
         */
        public Builder producerProperty(String name, Object value) {
            requireProducerProperty(name);
            producerOverrides.put(name, value);
            return this;
        }

        private static void requireProducerProperty(String name) {
            requirePropertyName("producer", name);
            ConfigurationException.require(!OWNED_PRODUCER_KEYS.contains(name),
                    "producer property '%s' is set by the transport; use exactlyOnce(..) for transactions", name);
        }

        /**
         * A consumer property over the defaults; group id, auto commit and deserializers belong to the transport.
         * A {@code group.instance.id} (static membership) is the instance's: each subscription's member uses
         * {@code <value>-<member>} (member = the lowest number, from 0, not used by another open subscription of
         * the group within the transport, as for transactional ids),
         * so that two members of one group do not fence each other and a restarted instance keeps its ids.
         * {@code auto.offset.reset=none} is refused: the consumer's poll then throws for an assigned partition
         * without a position or committed offset (one whose assignment waits to be positioned again) and for an
         * offset retention deleted, and either ended the member; {@code earliest} (the default) or {@code latest}
         * decide where such an offset resumes.
         */
        public Builder consumerProperty(String name, Object value) {
            requireConsumerProperty(name, value);
            consumerOverrides.put(name, value);
            return this;
        }

        private static void requireConsumerProperty(String name, Object value) {
            requirePropertyName("consumer", name);
            ConfigurationException.require(!OWNED_CONSUMER_KEYS.contains(name),
                    "consumer property '%s' is set by the transport and cannot be overridden", name);
            ConfigurationException.require(!ConsumerConfig.AUTO_OFFSET_RESET_CONFIG.equals(name)
                            || !"none".equalsIgnoreCase(String.valueOf(value).trim()),
                    "consumer property 'auto.offset.reset' = '%s' is not supported: the consumer's poll would throw for a"
                            + " partition waiting to be positioned again or an offset deleted by retention, ending the"
                            + " member; use 'earliest' (the default) or 'latest'", value);
        }

        /** A property for the admin client used by offset and group queries (security settings, for example). */
        public Builder adminProperty(String name, Object value) {
            requireAdminProperty(name);
            adminOverrides.put(name, value);
            return this;
        }

        private static void requireAdminProperty(String name) {
            requirePropertyName("admin", name);
        }

        /**
         * No client knows a blank name: Kafka would drop it with a warning, so it is refused for every client alike. Nor
         * is {@code bootstrap.servers} taken here: a client's override replaced {@link #bootstrapServers} for that client
         * without a word, so one transport could reach two clusters.
         */
        private static void requirePropertyName(String client, String name) {
            ConfigurationException.require(name != null && !name.isBlank(), "%s property name must not be blank, but was"
                    + " '%s'", client, name);
            ConfigurationException.require(!CommonClientConfigs.BOOTSTRAP_SERVERS_CONFIG.equals(name.trim()), "%s property"
                    + " '%s' is refused: the transport's clients share one cluster, set with bootstrapServers(..)",
                    client, name);
        }

        /**
         * A property for every client (producers, consumers, admin), such as {@code security.protocol}. One that
         * any of them refuses (see {@link #producerProperty}, {@link #consumerProperty}, {@link #adminProperty}) is
         * set for none.
         */
        public Builder clientProperty(String name, Object value) {
            requireProducerProperty(name);
            requireConsumerProperty(name, value);
            requireAdminProperty(name);
            producerOverrides.put(name, value);
            consumerOverrides.put(name, value);
            adminOverrides.put(name, value);
            return this;
        }

        /**
         * How long one poll waits for records (default 100 ms; at least 1 ms, as Kafka counts in whole milliseconds);
         * bounds how fast close and resume react.
         */
        public Builder pollTimeout(Duration timeout) {
            this.pollTimeout = requireKafkaWait(timeout, "poll timeout");
            return this;
        }

        /**
         * How long a partition is paused before a record whose handling threw is delivered again (default 1 s).
         * The bus retries handlers itself; this applies only when even dead-lettering failed, and to an
         * {@link Error} the bus passes on (any but {@code AssertionError} and {@code StackOverflowError}), and
         * in exactly-once mode to a batch whose transaction failed to commit.
         */
        public Builder redeliveryBackoff(Duration backoff) {
            this.redeliveryBackoff = ConfigurationException.requirePositive(backoff, "redelivery backoff");
            return this;
        }

        /**
         * How long {@code subscribe} waits for the group's first partition assignment (default 30 s); when it
         * times out, subscribe logs a warning and returns, and the member starts once it is assigned.
         * {@link Duration#ZERO} returns at once. A subscribe from inside a handler of a subscription of the same
         * group (say one that closed its own subscription and subscribes again), made through this transport or
         * another {@code KafkaTransport} in the same JVM, returns at once too, since that assignment waits for
         * the handler to return. (The group is told by name: a handler of a namesake group on another cluster
         * does not wait either, which changes nothing but when subscribe returns.) Either way a group starting
         * at the latest position starts at the end offsets subscribe read before the member started, so the
         * messages published after subscribe returned are delivered also when the assignment comes later.
         */
        public Builder assignmentTimeout(Duration timeout) {
            this.assignmentTimeout = ConfigurationException.requireNonNegative(timeout, "assignment timeout");
            return this;
        }

        /**
         * How long closing waits (default 10 s; at least 1 ms, as Kafka counts in whole milliseconds): for a consumer thread before interrupting it, and as long again
         * after that (closing the transport: for all its consumer threads at once); and what the Kafka clients'
         * own {@code close(timeout)} get: each member's consumer (which leaves the group then) and transactional
         * producer, the shared producer and the admin client; also how long a member's final commit of the records
         * it handled waits. The Kafka
         * producer can take longer, up to its {@code request.timeout.ms}, against a broker that never answered
         * (see {@link KafkaTransport#close()}).
         */
        public Builder closeTimeout(Duration timeout) {
            this.closeTimeout = requireKafkaWait(timeout, "close timeout");
            return this;
        }

        /**
         * Timeout of admin queries (offsets, groups, topics), per request; {@link KafkaTransport#committedOffsets}
         * in all, its wait for offsets pending in a transaction included. Default 30 s; at least 1 ms, as Kafka counts
         * in whole milliseconds. Also how long a member's
         * synchronous offset commits wait: on revoke, and of a {@code LATEST} start at its assignment (one made
         * again waits up to {@link #pollTimeout}); a start not committed in time is committed again before its
         * partitions are consumed.
         */
        public Builder requestTimeout(Duration timeout) {
            this.requestTimeout = requireKafkaWait(timeout, "request timeout");
            return this;
        }

        /**
         * How long {@link KafkaTransport#consumerGroups} reuses its listing of the broker's groups and their
         * committed offsets (default 5 s, like the consumers' {@code metadata.max.age.ms}, after which a wildcard
         * subscription sees a new topic); {@link Duration#ZERO} lists on every call. The claim check asks on
         * every acknowledgement of a claim-checked record, which without reuse is two admin requests each.
         * The groups of this transport's open subscriptions are always included at once (a closed one's as long
         * as the broker keeps its committed offsets: see {@link KafkaTransport#consumerGroups}); a group that
         * first commits on a topic elsewhere (another instance or application) shows up at most this much later, so the
         * claim check may release a payload before such a group reads the record, as for a group that
         * subscribes later (see {@code ClaimCheckInterceptor.Builder.keepUntilExpiry}).
         */
        public Builder consumerGroupsMaxAge(Duration maxAge) {
            this.consumerGroupsMaxAge = ConfigurationException.requireNonNegative(maxAge, "consumer groups max age");
            return this;
        }

        /**
         * The topics' retention, reported by {@link KafkaTransport#retentionHorizon()}; unknown by default. Positive; an
         * age, not a delay, so one longer than {@link ConfigurationException#MAX_DURATION} ({@code
         * ChronoUnit.FOREVER.getDuration()}, for topics with {@code retention.ms=-1}) is taken as that
         * ({@link ConfigurationException#requirePositiveAge}).
         */
        public Builder retentionHorizon(Duration retention) {
            this.retentionHorizon = ConfigurationException.requirePositiveAge(retention, "retention horizon");
            return this;
        }

        /**
         * Exactly-once consume-transform-publish: each subscription gets a transactional producer with id
         * {@code <prefix>.<group>.<member>} (member = the lowest number, from 0, not used by another open
         * subscription of the group, so a subscription re-created after a close gets the id a restarted instance
         * would use; a closed subscription's number is free once its thread has ended, so one closed from its
         * handler keeps it until its last batch is committed); what a handler publishes and the consumed offsets commit in one
         * transaction. A publish refused for good (over {@code max.request.size} or the topic's
         * {@code max.message.bytes}, awaited or not) is the failure of the record whose handler made it: the transaction
         * aborts, and the batch's next handling, after {@link #redeliveryBackoff}, dead-letters that record and commits
         * the others. A transaction that cannot commit for another reason although every handler returned (a publish
         * failed retriably, or one made outside a handler was refused) is aborted and its batch redelivered after the
         * backoff, again and again until it commits. A batch open longer than the producer's
         * {@code transaction.timeout.ms} (a {@link #producerProperty}) is aborted (by the broker, and by the member
         * instead of a commit): a publish after the broker's abort fails, retriable, and the member logs it and
         * handles the batch again (with a new producer with the same id on a cluster at {@code transaction.version}
         * 1), unless a restarted instance has fenced it meanwhile (docs/kafka.md).
         * The prefix must be stable per application instance (such as {@code payment-service-1})
         * and unique across instances, so that a restarted instance fences its crashed predecessor. Consumers
         * then read with {@code isolation.level=read_committed}; {@link #build()} refuses another level.
         */
        public Builder exactlyOnce(String transactionalIdPrefix) {
            ConfigurationException.require(transactionalIdPrefix != null && !transactionalIdPrefix.isBlank(),
                    "transactional id prefix must not be blank, but was '%s'", transactionalIdPrefix);
            this.transactionalIdPrefix = transactionalIdPrefix;
            return this;
        }

        /**
         * Plain mode: whether a member waits for its handlers' publishes once per poll batch rather than once per record
         * (default false). By default the bus acknowledges a record only once the broker took what its handler
         * published, so a handler that publishes one event per record costs one broker round trip (with the
         * producer's {@code linger.ms}) per record and partition. With this on, the member delivers every record of a
         * poll batch while their publishes are in flight, then waits for them in offset order per partition and
         * commits each partition's offset only past records whose publishes completed: nothing is lost, and the
         * producer sends the batch's publishes together.
         *
         * <p>The trade-off, when a publish fails: the record is handled as failed as by default (retried per the bus's
         * policy, then dead-lettered with {@code handler-failed} naming the publish's topic), but the records after it
         * in its partition were handled already. When the policy retries, the member seeks back to the failed record,
         * so those records are delivered and handled again (at-least-once): their reactions are published twice, and
         * their first copies come before the failed record's retried reaction, so the order of reactions per key is
         * no longer that of the records. When the record is dead-lettered instead, the reactions of the records after it
         * may be on their topics before its dead letter. A handler that waits for its publishes itself (or an
         * {@code IdempotentConsumer}, which does) keeps the per-record wait. Refused with {@link #exactlyOnce}, whose
         * transactions commit a batch's publishes and offsets together already.
         */
        public Builder awaitPublishesPerBatch(boolean enabled) {
            this.awaitPublishesPerBatch = enabled;
            return this;
        }

        /** Prefix of the Kafka client ids (default {@code streamsaga}), visible in broker logs and metrics. */
        public Builder clientIdPrefix(String prefix) {
            ConfigurationException.require(prefix != null && !prefix.isBlank(), "client id prefix must not be blank, but was '%s'", prefix);
            this.clientIdPrefix = prefix;
            return this;
        }

        /**
         * Test seam: runs in the middle of every {@link KafkaTransport#consumerGroups} call, after it read this
         * transport's open and closed subscriptions and before it takes the broker's listing, so that a test can
         * hold one caller there.
         */
        Builder consumerGroupsStep(Runnable step) {
            this.consumerGroupsStep = step;
            return this;
        }

        /** Test seam: creates the admin client from its properties (a fake one in a test). */
        Builder adminFactory(Function<Map<String, Object>, Admin> factory) {
            this.adminFactory = factory;
            return this;
        }

        /** Test seam: creates the plain and the transactional producers from their properties (a fake one in a test). */
        Builder producerFactory(Function<Map<String, Object>, Producer<String, byte[]>> factory) {
            this.producerFactory = factory;
            return this;
        }

        /**
         * Test seam: the clock ({@code nanoTime}) the deadlines of admin requests, and the members' waits for a
         * redelivery, are measured on, so that a test can move it with a fake admin client's answers, or end a wait.
         */
        Builder nanoClock(LongSupplier clock) {
            this.nanoClock = clock;
            return this;
        }

        /**
         * Creates the transport and its producer (the connection itself opens lazily). A setting the Kafka
         * clients refuse (a bootstrap server that does not parse or resolve, a bad or conflicting producer,
         * consumer or admin property, such as {@code acks=1} with the transport's idempotent producer, or
         * {@code session.timeout.ms} with the consumer's {@code group.protocol=consumer}) is a
         * {@link ConfigurationException} quoting Kafka's reason; so is exactly-once mode with consumers that
         * read uncommitted records.
         */
        public KafkaTransport build() {
            ConfigurationException.require(bootstrapServers != null, "bootstrap servers are required");
            // Read as Kafka reads them, trimmed: a properties file keeps a value's trailing spaces.
            Object acks = producerOverrides.get(ProducerConfig.ACKS_CONFIG);
            Object idempotence = producerOverrides.get(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG);
            ConfigurationException.require(transactionalIdPrefix == null
                            || ((acks == null || "all".equals(trimmed(acks)) || "-1".equals(trimmed(acks)))
                            && (idempotence == null || Boolean.parseBoolean(trimmed(idempotence)))),
                    "exactly-once mode needs acks=all and idempotence, but acks was '%s' and enable.idempotence '%s'",
                    acks, idempotence);
            ConfigurationException.require(transactionalIdPrefix == null || !awaitPublishesPerBatch,
                    "awaitPublishesPerBatch(true) is for plain mode, but exactlyOnce('%s') is set: its transactions commit"
                            + " a poll batch's publishes with its offsets already", transactionalIdPrefix);
            Object isolation = consumerOverrides.get(ConsumerConfig.ISOLATION_LEVEL_CONFIG);
            ConfigurationException.require(transactionalIdPrefix == null || isolation == null
                            || "read_committed".equalsIgnoreCase(trimmed(isolation)),
                    "exactly-once mode needs consumers with isolation.level=read_committed, but it was '%s'", isolation);
            return new KafkaTransport(copy());
        }

        /**
         * A wait given to Kafka's clients, which count in whole milliseconds: one under 1 ms would be none (a poll
         * that does not wait, an idle member spinning; a commit given no time), so it is refused.
         */
        private static Duration requireKafkaWait(Duration timeout, String what) {
            ConfigurationException.requirePositive(timeout, what);
            ConfigurationException.require(timeout.compareTo(Duration.ofMillis(1)) >= 0, "%s must be at least 1 ms"
                    + " (Kafka's clients wait in whole milliseconds, so a shorter wait is none), but was %s", what, timeout);
            return timeout;
        }

        private static String trimmed(Object value) {
            return String.valueOf(value).trim();
        }

        /** A snapshot, so that changing this builder later does not change a built transport. */
        private Builder copy() {
            Builder copy = new Builder();
            copy.bootstrapServers = bootstrapServers;
            copy.producerOverrides.putAll(producerOverrides);
            copy.consumerOverrides.putAll(consumerOverrides);
            copy.adminOverrides.putAll(adminOverrides);
            copy.pollTimeout = pollTimeout;
            copy.redeliveryBackoff = redeliveryBackoff;
            copy.assignmentTimeout = assignmentTimeout;
            copy.closeTimeout = closeTimeout;
            copy.requestTimeout = requestTimeout;
            copy.consumerGroupsMaxAge = consumerGroupsMaxAge;
            copy.retentionHorizon = retentionHorizon;
            copy.transactionalIdPrefix = transactionalIdPrefix;
            copy.awaitPublishesPerBatch = awaitPublishesPerBatch;
            copy.clientIdPrefix = clientIdPrefix;
            copy.consumerGroupsStep = consumerGroupsStep;
            copy.adminFactory = adminFactory;
            copy.producerFactory = producerFactory;
            copy.nanoClock = nanoClock;
            return copy;
        }
    }
}
