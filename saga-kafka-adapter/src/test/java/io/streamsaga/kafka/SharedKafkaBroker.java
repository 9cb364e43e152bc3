package io.streamsaga.kafka;

import io.streamsaga.kafka.embedded.EmbeddedKafkaBroker;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;

import java.util.Arrays;
import java.util.Map;
import java.util.UUID;

/**
 * One embedded broker for every test class of this module's test JVM: starting one takes seconds, so it is
 * started on first use and stopped when the JVM exits. Tests keep apart through unique topic and group names.
 */
final class SharedKafkaBroker {
    private static EmbeddedKafkaBroker broker;

    private SharedKafkaBroker() {
    }

    static synchronized String bootstrapServers() {
        if (broker == null) {
            // The coordinator checks for transactions past their transaction.timeout.ms every 10 s by default;
            // a test whose handler outlives a short timeout waits for that abort, so it checks often.
            EmbeddedKafkaBroker started = EmbeddedKafkaBroker.start(Map.of(
                    "transaction.abort.timed.out.transaction.cleanup.interval.ms", "200"));
            Runtime.getRuntime().addShutdownHook(new Thread(started::close, "embedded-kafka-shutdown"));
            broker = started;
        }
        return broker.bootstrapServers();
    }

    /** Creates {@code topics} with {@code partitions} partitions each (the broker's default is one). */
    static void createTopics(int partitions, String... topics) throws Exception {
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers()))) {
            admin.createTopics(Arrays.stream(topics).map(t -> new NewTopic(t, partitions, (short) 1)).toList()).all().get();
        }
    }

    /** A name unique in this broker, such as {@code orders-3f2a9c1b}. */
    static String unique(String prefix) {
        return prefix + "-" + UUID.randomUUID().toString().substring(0, 8);
    }
}
