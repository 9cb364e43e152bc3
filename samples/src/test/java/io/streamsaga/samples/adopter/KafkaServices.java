package io.streamsaga.samples.adopter;

import io.streamsaga.bus.EventBus;
import io.streamsaga.kafka.KafkaTransport;
import io.streamsaga.kafka.embedded.EmbeddedKafkaBroker;
import io.streamsaga.spi.Transport;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
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
 * service's name), and everything they build closed in reverse order, the broker last: each of them even when one
 * before it throws (the first failure is rethrown, the others suppressed in it), so a failing close leaves no broker
 * running. Not thread-safe: built and closed by the class's {@code @BeforeAll} and {@code @AfterAll}.
 */
final class KafkaServices implements AutoCloseable {
    private final String bootstrapServers;
    private final Deque<AutoCloseable> closeables = new ArrayDeque<>();

    /** Services on the broker at {@code bootstrapServers}, {@code broker} closed last. */
    KafkaServices(String bootstrapServers, AutoCloseable broker) {
        this.bootstrapServers = bootstrapServers;
        closeables.push(broker);
    }

    /** Starts the broker. */
    static KafkaServices start() {
        EmbeddedKafkaBroker broker = EmbeddedKafkaBroker.start();
        return new KafkaServices(broker.bootstrapServers(), broker);
    }

    String bootstrapServers() {
        return bootstrapServers;
    }

    /** A transport of the service's own, closed with the others. */
    KafkaTransport transport(String service) {
        return closeAtEnd(KafkaTransport.builder().bootstrapServers(bootstrapServers).clientIdPrefix(service)
                .build());
    }

    /** {@code closeable} closed by {@link #close()}, before everything registered earlier. */
    <T extends AutoCloseable> T closeAtEnd(T closeable) {
        closeables.push(closeable);
        return closeable;
    }

    @Override
    public void close() throws Exception {
        Exception first = null;
        while (!closeables.isEmpty()) {
            try {
                closeables.pop().close();
            } catch (Exception e) {
                if (first == null) {
                    first = e;
                } else {
                    first.addSuppressed(e);
                }
            }
        }
        if (first != null) {
            throw first;
        }
    }

    /**
     * Whether {@code group} has committed everything on {@code topic}. On Kafka a partition the group never committed
     * on (an empty one, of a topic created after the group subscribed) is absent from its committed offsets.
     */
    static boolean consumed(EventBus bus, String group, String topic) {
        Transport transport = bus.transport();
        Map<Integer, Long> committed = transport.committedOffsets(group, topic);
        return transport.endOffsets(topic).entrySet().stream()
                .allMatch(end -> committed.getOrDefault(end.getKey(), 0L).equals(end.getValue()));
    }

    /** Runs {@code sql} on a service's own tables, its {@code ?} bound to {@code values} in order. */
    static void update(Connection connection, String sql, String... values) throws Exception {
        try (PreparedStatement ps = connection.prepareStatement(sql)) {
            for (int i = 0; i < values.length; i++) {
                ps.setString(i + 1, values[i]);
            }
            ps.executeUpdate();
        }
    }

    /** The number {@code sql} (one {@code ?}, bound to {@code value}) selects from a service's own tables. */
    static long number(Connection connection, String sql, String value) throws Exception {
        try (PreparedStatement ps = connection.prepareStatement(sql)) {
            ps.setString(1, value);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getLong(1);
            }
        }
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
