package io.streamsaga.kafka.benchmarks;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.Subscription;
import io.streamsaga.bus.TopicPattern;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.kafka.KafkaTransport;
import io.streamsaga.kafka.embedded.EmbeddedKafkaBroker;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.Callback;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BiConsumer;
import java.util.function.LongConsumer;

/**
 * Throughput and latency of the Kafka adapter against plain kafka-clients, on the same broker in the same
 * run, with the same producer settings (acks=all, idempotence, linger 5 ms, 64 KiB batches) and 200-byte
 * JSON records. A benchmark program rather than JMH: each measurement moves hundreds of thousands of
 * records through a broker, and rounds of raw and adapter alternate so that machine noise hits both.
 *
 * <p>Rows: {@code raw} = KafkaProducer/KafkaConsumer; {@code adapter} = {@link KafkaTransport#send} and a
 * transport subscription (the adapter's own cost: headers, message mapping, commits); {@code bus} = an
 * EventBus on the adapter publishing and handling a typed event (adds JSON encode and decode).
 *
 * <p>Args: {@code --records N} (default 200000), {@code --rounds R} (3), {@code --bootstrap-servers h:p}
 * (default: an embedded broker), {@code --producer name=value} (a producer setting for every path),
 * {@code --kinds raw,adapter} (default: every path; fewer paths make a
 * profile easier to read; {@code relay}, a handler publishing one event per record, and {@code relay-batch}, the
 * same with the transport's {@code awaitPublishesPerBatch}, only when named), {@code --broker-pid P} (an external
 * broker's process id on this Linux host:
 * its CPU time per record is printed too). Prints Markdown tables.
 */
public final class KafkaAdapterBenchmark {
    private static final int PARTITIONS = 3;
    private static final int PAYLOAD_BYTES = 200;
    private static final String SENT_HEADER = "bench-sent-nanos";
    /** raw-json = raw plus decoding each payload into the event, the work the bus row's consumer does too. */
    private static final List<String> KINDS = List.of("raw", "raw-json", "adapter", "bus");
    /**
     * Diagnostic, only with --kinds: raw kafka-clients whose caller gets a CompletableFuture per send and
     * watches it (the shape of Transport.send), to measure what that shape costs by itself.
     */
    private static final String RAW_FUTURE = "raw-future";
    /**
     * Only with --kinds: a choreography step on the bus. The input is published as on the bus row; the handler
     * publishes one event per consumed record to a second topic without waiting for it, and a record counts once
     * that reaction is acknowledged by the broker (records handled end to end, publish included). In plain mode
     * the bus acknowledges a record only once its handler's publishes completed.
     */
    private static final String RELAY = "relay";
    /** {@link #RELAY} on a transport with {@code awaitPublishesPerBatch(true)}: publishes awaited per poll batch. */
    private static final String RELAY_BATCH = "relay-batch";
    private static final ObjectMapper MAPPER = new ObjectMapper();


    /** The event of the bus row; its JSON is about 200 bytes. */
    public record PriceChanged(String sku, long cents, String note) {
    }

    private final String bootstrap;
    private final List<String> kinds;
    private final String brokerPid;
    /** --producer name=value settings, applied to every path's producer alike. */
    private final Map<String, Object> producerExtras;
    private final int records;
    private final byte[] payload;
    private final PriceChanged event;
    /** Sends whose outcome was an error, over the whole run (each path checks every send). */
    private final AtomicInteger failedSends = new AtomicInteger();

    private KafkaAdapterBenchmark(String bootstrap, int records, List<String> kinds, String brokerPid,
                                  Map<String, Object> producerExtras) {
        this.brokerPid = brokerPid;
        this.producerExtras = Map.copyOf(producerExtras);
        for (String kind : kinds) {
            if (!KINDS.contains(kind) && !kind.equals(RAW_FUTURE) && !kind.startsWith(RELAY)) {
                throw new IllegalArgumentException("unknown kind " + kind + "; known: " + KINDS);
            }
        }
        this.kinds = List.copyOf(kinds);
        this.bootstrap = bootstrap;
        this.records = records;
        String base = "{\"sku\":\"sku-0001\",\"cents\":1999,\"note\":\"";
        String note = "x".repeat(PAYLOAD_BYTES - base.length() - 2);
        this.payload = (base + note + "\"}").getBytes(StandardCharsets.UTF_8);
        this.event = new PriceChanged("sku-0001", 1999, note);
    }

    public static void main(String[] args) throws Exception {
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "error");
        String bootstrap = null;
        int records = 200_000;
        int rounds = 3;
        List<String> kinds = KINDS;
        String brokerPid = null;
        Map<String, Object> producerExtras = new java.util.LinkedHashMap<>();
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--records" -> records = Integer.parseInt(args[++i]);
                case "--rounds" -> rounds = Integer.parseInt(args[++i]);
                case "--bootstrap-servers" -> bootstrap = args[++i];
                case "--kinds" -> kinds = List.of(args[++i].split(","));
                case "--broker-pid" -> brokerPid = args[++i];
                case "--producer" -> {
                    String[] pair = args[++i].split("=", 2);
                    producerExtras.put(pair[0], pair[1]);
                }
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        if (bootstrap != null) {
            new KafkaAdapterBenchmark(bootstrap, records, kinds, brokerPid, producerExtras).run(rounds);
            return;
        }
        try (EmbeddedKafkaBroker broker = EmbeddedKafkaBroker.start(Map.of("num.partitions", Integer.toString(PARTITIONS)))) {
            new KafkaAdapterBenchmark(broker.bootstrapServers(), records, kinds, null, producerExtras).run(rounds);
        }
    }

    private void run(int rounds) throws Exception {
        System.out.printf("records=%d payload=%d B partitions=%d rounds=%d cores=%d producer extras=%s%n", records,
                payload.length, PARTITIONS, rounds, Runtime.getRuntime().availableProcessors(), producerExtras);
        Map<String, List<Double>> results = new HashMap<>();
        for (int round = 0; round < rounds + 1; round++) {
            boolean warmUp = round == 0; // the first round warms the JIT and the broker
            // Every other round runs the paths in reverse order, so that no path always follows the same one
            // (a measurement inherits the broker's and the heap's state from the one before).
            List<String> order = new ArrayList<>(kinds);
            if (round % 2 == 1) {
                java.util.Collections.reverse(order);
            }
            for (String kind : order) {
                // raw-json publishes exactly like raw; only its consumer does more (JSON decoding)
                double publish = Double.NaN;
                if (!kind.equals("raw-json") && !kind.startsWith(RELAY)) {
                    String publishTopic = newTopic(kind);
                    settle();
                    publish = publish(kind, publishTopic);
                }
                String topic = newTopic(kind);
                settle();
                long cpu = processCpuNanos();
                long brokerCpu = brokerCpuNanos();
                long allocated = allocatedBytes();
                long gcMillis = gcMillis();
                double endToEnd = publishToHandle(kind, topic);
                double cpuPerRecord = (processCpuNanos() - cpu) / 1e3 / records;
                double bytesPerRecord = (allocatedBytes() - allocated) / (double) records;
                long gcSpent = gcMillis() - gcMillis;
                double brokerPerRecord = brokerPid == null ? Double.NaN : (brokerCpuNanos() - brokerCpu) / 1e3 / records;
                if (!warmUp) {
                    results.computeIfAbsent(kind + " publish", k -> new ArrayList<>()).add(publish);
                    results.computeIfAbsent(kind + " publish-to-handle", k -> new ArrayList<>()).add(endToEnd);
                    results.computeIfAbsent(kind + " cpu", k -> new ArrayList<>()).add(cpuPerRecord);
                    results.computeIfAbsent(kind + " broker cpu", k -> new ArrayList<>()).add(brokerPerRecord);
                }
                System.out.printf(Locale.ROOT, "%s round %d %s: publish %.0f rec/s, publish-to-handle %.0f rec/s"
                                + " (publish-to-handle per record: CPU of this JVM %.2f us, of the broker %.2f us,"
                                + " allocated %.0f B; GC pauses %d ms)%n",
                        warmUp ? "warm-up" : "measured", round, kind, publish, endToEnd, cpuPerRecord, brokerPerRecord,
                        bytesPerRecord, gcSpent);
            }
        }
        System.out.println();
        System.out.println("failed sends in the whole run: " + failedSends.get());
        System.out.println("| Path | publish rec/s (median) | publish-to-handle rec/s (median) | publish vs raw | publish-to-handle vs its baseline |");
        System.out.println("| --- | ---: | ---: | ---: | ---: |");
        double rawPublish = median(results.get("raw publish"));
        for (String kind : kinds) {
            double p = median(results.get(kind + " publish"));
            double e = median(results.get(kind + " publish-to-handle"));
            // the adapter hands over headers as strings (= raw); the bus also decodes the JSON (= raw-json)
            String baseline = baselineOf(kind);
            double base = median(results.get(baseline + " publish-to-handle"));
            String publishRate = Double.isNaN(p) ? "(as raw)" : String.format(Locale.ROOT, "%,.0f", p);
            String publishRatio = Double.isNaN(p) ? "-" : String.format(Locale.ROOT, "%.2fx", p / rawPublish);
            System.out.printf(Locale.ROOT, "| %s | %s | %,.0f | %s | %.2fx (vs %s) |%n", kind, publishRate, e,
                    publishRatio, e / base, baseline);
        }
        System.out.println();
        // Rounds alternate the paths, so a ratio within one round is less exposed to slow swings of the
        // machine's load than a ratio of medians; both are printed.
        System.out.println("| Path | publish vs raw, median of per-round ratios | publish-to-handle vs baseline, median of per-round ratios | CPU per record in publish-to-handle, this JVM (us, median) | broker (us, median) |");
        System.out.println("| --- | ---: | ---: | ---: | ---: |");
        for (String kind : kinds) {
            String baseline = baselineOf(kind);
            System.out.printf(Locale.ROOT, "| %s | %.2fx | %.2fx | %.2f | %.2f |%n", kind,
                    medianRatio(results.get(kind + " publish"), results.get("raw publish")),
                    medianRatio(results.get(kind + " publish-to-handle"), results.get(baseline + " publish-to-handle")),
                    median(results.get(kind + " cpu")), median(results.get(kind + " broker cpu")));
        }
        System.out.println();
        System.out.println("| Path | latency p50 (ms) | p99 (ms) | max (ms) |");
        System.out.println("| --- | ---: | ---: | ---: |");
        for (String kind : kinds) {
            if (kind.startsWith(RELAY)) {
                continue; // a throughput measurement only
            }
            long[] latencies = latencies(kind, newTopic(kind), 5_000);
            System.out.printf(Locale.ROOT, "| %s | %.2f | %.2f | %.2f |%n", kind, percentile(latencies, 50) / 1e6,
                    percentile(latencies, 99) / 1e6, latencies[latencies.length - 1] / 1e6);
        }
    }

    /** What a path's publish-to-handle is compared with: the raw consumer doing the same decoding work. */
    private static String baselineOf(String kind) {
        if (kind.equals(RELAY_BATCH)) {
            return RELAY;
        }
        return kind.equals("bus") || kind.equals("raw-json") || kind.equals(RELAY) ? "raw-json" : "raw";
    }

    // ---- publish only --------------------------------------------------------------------------------

    private double publish(String kind, String topic) throws Exception {
        switch (kind) {
            case "raw", RAW_FUTURE -> {
                try (KafkaProducer<String, byte[]> producer = rawProducer()) {
                    Callback onSent = rawOutcome(null);
                    BiConsumer<Object, Throwable> onFuture = outcome(null);
                    boolean future = kind.equals(RAW_FUTURE);
                    long start = System.nanoTime();
                    for (int i = 0; i < records; i++) {
                        if (future) {
                            sendAsFuture(producer, rawRecord(topic, i, null)).whenComplete(onFuture);
                        } else {
                            producer.send(rawRecord(topic, i, null), onSent);
                        }
                    }
                    producer.flush();
                    return rate(start);
                }
            }
            case "adapter" -> {
                try (KafkaTransport transport = transport()) {
                    long start = System.nanoTime();
                    sendAll(transport, topic, records, null, null);
                    return rate(start);
                }
            }
            default -> {
                try (KafkaTransport transport = transport(); EventBus bus = bus(transport)) {
                    long start = System.nanoTime();
                    publishAll(bus, topic, records, null, null);
                    return rate(start);
                }
            }
        }
    }

    // ---- publish to handle: the consumer is ready before the first record is sent --------------------

    private double publishToHandle(String kind, String topic) throws Exception {
        CountDownLatch done = new CountDownLatch(records);
        switch (kind) {
            case "raw", "raw-json", RAW_FUTURE -> {
                RawConsumer consumer = new RawConsumer(topic, kind.equals("raw-json"), nanos -> done.countDown());
                try (KafkaProducer<String, byte[]> producer = rawProducer()) {
                    consumer.start();
                    Callback onSent = rawOutcome(done);
                    BiConsumer<Object, Throwable> onFuture = outcome(done);
                    boolean future = kind.equals(RAW_FUTURE);
                    long start = System.nanoTime();
                    for (int i = 0; i < records; i++) {
                        if (future) {
                            sendAsFuture(producer, rawRecord(topic, i, null)).whenComplete(onFuture);
                        } else {
                            producer.send(rawRecord(topic, i, null), onSent);
                        }
                    }
                    producer.flush();
                    await(done);
                    return rate(start);
                } finally {
                    consumer.stop();
                }
            }
            case "adapter" -> {
                try (KafkaTransport transport = transport();
                     Subscription ignored = transport.subscribe(unique("g"), TopicPattern.of(topic), StartPosition.EARLIEST,
                             record -> done.countDown())) {
                    long start = System.nanoTime();
                    sendAll(transport, topic, records, null, done);
                    await(done);
                    return rate(start);
                }
            }
            case RELAY, RELAY_BATCH -> {
                String reactions = newTopic(kind + "-out");
                try (KafkaTransport transport = transport(kind.equals(RELAY_BATCH)); EventBus bus = bus(transport)) {
                    // one callback object per measurement: counts each reaction once the broker has it
                    BiConsumer<Object, Throwable> onReaction = (position, error) -> {
                        if (error != null) {
                            failed(null, error);
                        }
                        done.countDown();
                    };
                    bus.subscribe(unique("g"), topic, PriceChanged.class, io.streamsaga.bus.SubscriptionOptions.fromEarliest(),
                            (e, ctx) -> bus.publish(reactions, ctx.message().key(), e).whenComplete(onReaction));
                    long start = System.nanoTime();
                    publishAll(bus, topic, records, null, null);
                    await(done);
                    return rate(start);
                }
            }
            default -> {
                try (KafkaTransport transport = transport(); EventBus bus = bus(transport)) {
                    bus.subscribe(unique("g"), topic, PriceChanged.class,
                            io.streamsaga.bus.SubscriptionOptions.fromEarliest(), (e, ctx) -> done.countDown());
                    long start = System.nanoTime();
                    publishAll(bus, topic, records, null, done);
                    await(done);
                    return rate(start);
                }
            }
        }
    }

    // ---- end-to-end latency at a moderate rate (1 record per 0.2 ms), sent time in a header ------------

    private long[] latencies(String kind, String topic, int count) throws Exception {
        long[] latencies = new long[count];
        AtomicInteger seen = new AtomicInteger();
        CountDownLatch done = new CountDownLatch(count);
        LongConsumer onReceive = sent -> {
            int index = seen.getAndIncrement();
            if (index < count) {
                latencies[index] = System.nanoTime() - sent;
            }
            done.countDown();
        };
        switch (kind) {
            case "raw", "raw-json", RAW_FUTURE -> {
                RawConsumer consumer = new RawConsumer(topic, kind.equals("raw-json"), onReceive);
                try (KafkaProducer<String, byte[]> producer = rawProducer()) {
                    consumer.start();
                    Callback onSent = rawOutcome(done);
                    BiConsumer<Object, Throwable> onFuture = outcome(done);
                    boolean future = kind.equals(RAW_FUTURE);
                    for (int i = 0; i < count; i++) {
                        ProducerRecord<String, byte[]> record = rawRecord(topic, i, Long.toString(System.nanoTime()));
                        if (future) {
                            sendAsFuture(producer, record).whenComplete(onFuture);
                        } else {
                            producer.send(record, onSent);
                        }
                        pace();
                    }
                    await(done);
                } finally {
                    consumer.stop();
                }
            }
            case "adapter" -> {
                try (KafkaTransport transport = transport();
                     Subscription ignored = transport.subscribe(unique("g"), TopicPattern.of(topic), StartPosition.EARLIEST,
                             record -> onReceive.accept(Long.parseLong(record.message().headers().get(SENT_HEADER))))) {
                    for (int i = 0; i < count; i++) {
                        sendAll(transport, topic, 1, Long.toString(System.nanoTime()), done);
                        pace();
                    }
                    await(done);
                }
            }
            default -> {
                try (KafkaTransport transport = transport(); EventBus bus = bus(transport)) {
                    bus.subscribe(unique("g"), topic, PriceChanged.class, io.streamsaga.bus.SubscriptionOptions.fromEarliest(),
                            (e, ctx) -> onReceive.accept(Long.parseLong(ctx.message().headers().get(SENT_HEADER))));
                    for (int i = 0; i < count; i++) {
                        publishAll(bus, topic, 1, Long.toString(System.nanoTime()), done);
                        pace();
                    }
                    await(done);
                }
            }
        }
        Arrays.sort(latencies);
        return latencies;
    }

    /**
     * A full collection before each timed measurement, so that none pays for the garbage the previous one
     * left in the old generation (up to 100,000 in-flight records' objects get promoted while the producer's
     * buffer is full).
     */
    private static void settle() {
        System.gc();
    }

    private static void pace() {
        long until = System.nanoTime() + 200_000;
        while (System.nanoTime() < until) {
            Thread.onSpinWait();
        }
    }

    // ---- helpers ---------------------------------------------------------------------------------------

    /**
     * The adapter's callback form ({@code Transport.send(message, onOutcome)}) with one callback object per
     * measurement, as the raw producer's; waits until every outcome arrived (raw: {@code flush()}).
     */
    private void sendAll(KafkaTransport transport, String topic, int count, String sentNanos, CountDownLatch done) {
        BiConsumer<Object, Throwable> checked = outcome(done);
        CountDownLatch acknowledged = new CountDownLatch(count);
        BiConsumer<Object, Throwable> onSent = (position, error) -> {
            checked.accept(position, error);
            acknowledged.countDown();
        };
        for (int i = 0; i < count; i++) {
            Message.Builder builder = Message.builder(topic).key(key(i)).type("price-changed").payload(payload);
            if (sentNanos != null) {
                builder.header(SENT_HEADER, sentNanos);
            }
            transport.send(builder.build(), onSent);
        }
        if (count == 1) {
            return; // the latency probe sends one record at a time and does not wait for it
        }
        try {
            await(acknowledged);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while sends were in flight", e);
        }
    }

    private void publishAll(EventBus bus, String topic, int count, String sentNanos, CountDownLatch done) {
        java.util.concurrent.CompletableFuture<?> last = null;
        Map<String, String> headers = sentNanos == null ? Map.of() : Map.of(SENT_HEADER, sentNanos);
        BiConsumer<Object, Throwable> onSent = outcome(done);
        for (int i = 0; i < count; i++) {
            last = bus.publish(topic, key(i), event, headers).toCompletableFuture();
            last.whenComplete(onSent);
        }
        if (count > 1) {
            last.exceptionally(e -> null).join();
        }
    }

    /*
     * Every path checks the outcome of every send, through one callback object per measurement: the raw
     * producer's Callback, or a stage attached to the adapter's and the bus's returned stage (their only way
     * to report an outcome). A failed send will never be handled: it counts down and is reported, so that
     * the run finishes.
     */
    private Callback rawOutcome(CountDownLatch done) {
        return (metadata, error) -> {
            if (error != null) {
                failed(done, error);
            }
        };
    }

    private static java.util.concurrent.CompletableFuture<org.apache.kafka.clients.producer.RecordMetadata> sendAsFuture(
            KafkaProducer<String, byte[]> producer, ProducerRecord<String, byte[]> record) {
        var result = new java.util.concurrent.CompletableFuture<org.apache.kafka.clients.producer.RecordMetadata>();
        producer.send(record, (metadata, error) -> {
            if (error != null) {
                result.completeExceptionally(error);
            } else {
                result.complete(metadata);
            }
        });
        return result;
    }

    private BiConsumer<Object, Throwable> outcome(CountDownLatch done) {
        return (ok, error) -> {
            if (error != null) {
                failed(done, error);
            }
        };
    }

    private void failed(CountDownLatch done, Throwable error) {
        if (failedSends.getAndIncrement() == 0) {
            System.out.println("first failed send: " + error);
        }
        if (done != null) {
            done.countDown();
        }
    }

    /**
     * A plain record with the headers the adapter writes (message id, event type, event version) as UTF-8
     * strings, so that raw and adapter move and read the same bytes.
     */
    private ProducerRecord<String, byte[]> rawRecord(String topic, int i, String sentNanos) {
        ProducerRecord<String, byte[]> record = new ProducerRecord<>(topic, key(i), payload);
        record.headers().add(MessageHeaders.MESSAGE_ID, Message.newId().getBytes(StandardCharsets.UTF_8));
        record.headers().add(MessageHeaders.EVENT_TYPE, PRICE_CHANGED);
        record.headers().add(MessageHeaders.EVENT_VERSION, VERSION_1);
        if (sentNanos != null) {
            record.headers().add(SENT_HEADER, sentNanos.getBytes(StandardCharsets.UTF_8));
        }
        return record;
    }

    private static final byte[] PRICE_CHANGED = "price-changed".getBytes(StandardCharsets.UTF_8);
    private static final byte[] VERSION_1 = "1".getBytes(StandardCharsets.UTF_8);

    private static String key(int i) {
        return "key-" + (i & 63);
    }

    private double rate(long startNanos) {
        return records / ((System.nanoTime() - startNanos) / 1e9);
    }

    private static void await(CountDownLatch latch) throws InterruptedException {
        if (!latch.await(5, TimeUnit.MINUTES)) {
            throw new IllegalStateException("timed out with " + latch.getCount() + " records missing");
        }
    }

    private Map<String, Object> producerSettings() {
        Map<String, Object> props = new HashMap<>();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        props.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        props.put(ProducerConfig.BATCH_SIZE_CONFIG, 65536);
        props.putAll(producerExtras);
        return props;
    }

    private KafkaProducer<String, byte[]> rawProducer() {
        return new KafkaProducer<>(producerSettings(), new StringSerializer(), new ByteArraySerializer());
    }

    private KafkaTransport transport() {
        return transport(false);
    }

    private KafkaTransport transport(boolean awaitPublishesPerBatch) {
        KafkaTransport.Builder builder = KafkaTransport.builder().bootstrapServers(bootstrap)
                .awaitPublishesPerBatch(awaitPublishesPerBatch);
        producerSettings().forEach((name, value) -> {
            if (!name.equals(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG)) {
                builder.producerProperty(name, value);
            }
        });
        return builder.build();
    }

    private EventBus bus(KafkaTransport transport) {
        return EventBus.builder(transport).types(TypeRegistry.builder().register("price-changed", 1, PriceChanged.class).build())
                .build();
    }

    private String newTopic(String kind) throws Exception {
        String topic = unique("bench-" + kind);
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap))) {
            admin.createTopics(List.of(new NewTopic(topic, PARTITIONS, (short) 1))).all().get();
            // Sending into a partition whose leader is still being set up can fail the first batch while
            // later in-flight batches succeed, which an idempotent producer cannot repair
            // (OutOfOrderSequenceException): start only once every partition has a leader, plus a margin.
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (System.nanoTime() < deadline) {
                try {
                    var description = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
                    if (description.partitions().stream().allMatch(p -> p.leader() != null && !p.leader().isEmpty())) {
                        break;
                    }
                } catch (java.util.concurrent.ExecutionException e) {
                    if (!(e.getCause() instanceof org.apache.kafka.common.errors.UnknownTopicOrPartitionException)) {
                        throw e;
                    }
                    // just created: the broker's metadata does not list it yet; ask again
                }
                Thread.sleep(50);
            }
            Thread.sleep(500);
        }
        return topic;
    }

    private static String unique(String prefix) {
        return prefix + "-" + UUID.randomUUID().toString().substring(0, 8);
    }

    private static double medianRatio(List<Double> values, List<Double> baselines) {
        if (values == null || baselines == null) {
            return Double.NaN;
        }
        List<Double> ratios = new ArrayList<>();
        for (int i = 0; i < values.size(); i++) {
            ratios.add(values.get(i) / baselines.get(i));
        }
        return median(ratios);
    }

    /** CPU time of this JVM (every thread, JIT and GC included). */
    private static long processCpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory
                .getOperatingSystemMXBean()).getProcessCpuTime();
    }

    /** Bytes allocated by every thread of this JVM so far. */
    private static long allocatedBytes() {
        return ((com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean())
                .getTotalThreadAllocatedBytes();
    }

    /** Time the collectors report as spent collecting, summed. */
    private static long gcMillis() {
        long total = 0;
        for (var gc : java.lang.management.ManagementFactory.getGarbageCollectorMXBeans()) {
            total += Math.max(0, gc.getCollectionTime());
        }
        return total;
    }

    /** CPU time of the broker process given by --broker-pid (utime + stime from /proc), or 0. */
    private long brokerCpuNanos() {
        if (brokerPid == null) {
            return 0;
        }
        try {
            String stat = java.nio.file.Files.readString(java.nio.file.Path.of("/proc", brokerPid, "stat"));
            String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            long ticks = Long.parseLong(fields[11]) + Long.parseLong(fields[12]); // utime, stime
            return ticks * 10_000_000L; // USER_HZ = 100 on Linux
        } catch (java.io.IOException | RuntimeException e) {
            throw new IllegalStateException("cannot read the CPU time of broker process " + brokerPid, e);
        }
    }

    private static double median(List<Double> values) {
        if (values == null) {
            return Double.NaN; // that path was not selected with --kinds
        }
        List<Double> sorted = new ArrayList<>(values);
        sorted.sort(null);
        int n = sorted.size();
        return n % 2 == 1 ? sorted.get(n / 2) : (sorted.get(n / 2 - 1) + sorted.get(n / 2)) / 2;
    }

    private static long percentile(long[] sorted, int p) {
        int index = (int) Math.ceil(p / 100.0 * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, index))];
    }

    /** A plain kafka-clients consumer on its own thread, with the adapter consumer's settings. */
    private final class RawConsumer {
        private final String topic;
        private final boolean decodeJson;
        private final LongConsumer onRecord;
        private final CountDownLatch assigned = new CountDownLatch(1);
        private volatile boolean running = true;
        private Thread thread;

        /** Checksum of what was decoded, so the JIT cannot drop the decoding. */
        private long sink;

        RawConsumer(String topic, boolean decodeJson, LongConsumer onRecord) {
            this.topic = topic;
            this.decodeJson = decodeJson;
            this.onRecord = onRecord;
        }

        void start() throws InterruptedException {
            Map<String, Object> props = new HashMap<>();
            props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            props.put(ConsumerConfig.GROUP_ID_CONFIG, unique("raw"));
            props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
            props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
            props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
            thread = new Thread(() -> {
                try (KafkaConsumer<String, byte[]> consumer = new KafkaConsumer<>(props, new StringDeserializer(), new ByteArrayDeserializer())) {
                    consumer.subscribe(List.of(topic), new org.apache.kafka.clients.consumer.ConsumerRebalanceListener() {
                        @Override
                        public void onPartitionsRevoked(java.util.Collection<org.apache.kafka.common.TopicPartition> partitions) {
                        }

                        @Override
                        public void onPartitionsAssigned(java.util.Collection<org.apache.kafka.common.TopicPartition> partitions) {
                            // as the adapter does before its subscribe returns: positions resolved before the clock starts
                            for (org.apache.kafka.common.TopicPartition partition : partitions) {
                                consumer.position(partition);
                            }
                            assigned.countDown();
                        }
                    });
                    while (running) {
                        var batch = consumer.poll(Duration.ofMillis(100));
                        for (ConsumerRecord<String, byte[]> record : batch) {
                            onRecord.accept(read(record));
                        }
                        if (!batch.isEmpty()) {
                            consumer.commitAsync(); // the adapter commits after each batch too
                        }
                    }
                }
            }, "raw-consumer");
            thread.start();
            assigned.await(30, TimeUnit.SECONDS);
        }

        /**
         * What the adapter does for its handler, with plain code: every header value as a string, the
         * field headers taken out, the version parsed; raw-json also decodes the payload into the event.
         * Returns the sent time carried by the latency runs (0 otherwise).
         */
        private long read(ConsumerRecord<String, byte[]> record) {
            Map<String, String> headers = new HashMap<>();
            for (Header header : record.headers()) {
                headers.put(header.key(), header.value() == null ? "" : new String(header.value(), StandardCharsets.UTF_8));
            }
            String id = headers.remove(MessageHeaders.MESSAGE_ID);
            String type = headers.remove(MessageHeaders.EVENT_TYPE);
            int version = Integer.parseInt(headers.remove(MessageHeaders.EVENT_VERSION));
            sink += id.length() + type.length() + version + record.timestamp() + record.key().length();
            if (decodeJson) {
                try {
                    sink += MAPPER.readValue(record.value(), PriceChanged.class).cents();
                } catch (java.io.IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            }
            String sent = headers.get(SENT_HEADER);
            return sent == null ? 0 : Long.parseLong(sent);
        }

        void stop() throws InterruptedException {
            running = false;
            thread.join();
            if (sink == 42) {
                System.out.println("(checksum " + sink + ")");
            }
        }
    }
}
