package io.streamsaga.samples.adopter;

import io.streamsaga.kafka.KafkaTransport;
import io.streamsaga.kafka.embedded.EmbeddedKafkaBroker;

import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * The adopter probes' services on the real Kafka broker of saga-kafka-embedded, as an adopter runs several services in
 * one test JVM: one broker for the test class, a {@link KafkaTransport} per service (its client ids prefixed with the
 * service's name), and everything they build closed in reverse order, the broker last. Not thread-safe: built and
 * closed by the class's {@code @BeforeAll} and {@code @AfterAll}.
 */
final class KafkaServices implements AutoCloseable {
    private final EmbeddedKafkaBroker broker;
    private final Deque<AutoCloseable> closeables = new ArrayDeque<>();

    private KafkaServices(EmbeddedKafkaBroker broker) {
        this.broker = broker;
    }

    /** Starts the broker. */
    static KafkaServices start() {
        return new KafkaServices(EmbeddedKafkaBroker.start());
    }

    String bootstrapServers() {
        return broker.bootstrapServers();
    }

    /** A transport of the service's own, closed with the others. */
    KafkaTransport transport(String service) {
        return closeAtEnd(KafkaTransport.builder().bootstrapServers(broker.bootstrapServers()).clientIdPrefix(service)
                .build());
    }

    /** {@code closeable} closed by {@link #close()}, before everything registered earlier. */
    <T extends AutoCloseable> T closeAtEnd(T closeable) {
        closeables.push(closeable);
        return closeable;
    }

    @Override
    public void close() throws Exception {
        while (!closeables.isEmpty()) {
            closeables.pop().close();
        }
        broker.close();
    }

    /** Futures completed by the services, so that a test waits for what happens, never for time. */
    static final class Signals {
        private final Map<String, CompletableFuture<Object>> futures = new ConcurrentHashMap<>();
        private final Duration wait;

        Signals(Duration wait) {
            this.wait = wait;
        }

        CompletableFuture<Object> of(String what) {
            return futures.computeIfAbsent(what, w -> new CompletableFuture<>());
        }

        void fire(String what, Object value) {
            of(what).complete(value);
        }

        Object await(String what) throws Exception {
            return of(what).get(wait.toMillis(), TimeUnit.MILLISECONDS);
        }
    }
}
