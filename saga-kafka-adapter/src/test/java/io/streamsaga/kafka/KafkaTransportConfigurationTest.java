package io.streamsaga.kafka;

import io.streamsaga.ConfigurationException;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link KafkaTransport.Builder}: "validates each setting as it is given and quotes the bad value". A
 * setting Kafka's clients refuse is a {@link ConfigurationException} from {@code build()}, not a Kafka
 * exception, and not a failure deferred to the first {@code subscribe}. No broker is needed.
 */
class KafkaTransportConfigurationTest {

    @Test
    void aBootstrapServerWithoutAPortIsAConfigurationExceptionQuotingIt() {
        ConfigurationException e = assertThrows(ConfigurationException.class,
                () -> KafkaTransport.builder().bootstrapServers("localhost").build());
        assertTrue(e.getMessage().contains("localhost"), e.getMessage());
    }

    @Test
    void aProducerPropertyKafkaRefusesIsAConfigurationExceptionQuotingIt() {
        ConfigurationException bad = assertThrows(ConfigurationException.class, () -> KafkaTransport.builder()
                .bootstrapServers("localhost:9092").producerProperty(ProducerConfig.LINGER_MS_CONFIG, "soon").build());
        assertTrue(bad.getMessage().contains("soon"), bad.getMessage());
        // conflicts with the transport's idempotent producer
        ConfigurationException conflict = assertThrows(ConfigurationException.class, () -> KafkaTransport.builder()
                .bootstrapServers("localhost:9092").producerProperty(ProducerConfig.ACKS_CONFIG, "1").build());
        assertTrue(conflict.getMessage().contains("acks"), conflict.getMessage());
    }

    @Test
    void aConsumerPropertyKafkaRefusesFailsTheBuildNotTheFirstSubscribe() {
        ConfigurationException e = assertThrows(ConfigurationException.class, () -> KafkaTransport.builder()
                .bootstrapServers("localhost:9092").consumerProperty(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "many").build());
        assertTrue(e.getMessage().contains("many"), e.getMessage());
    }

    @Test
    void consumerPropertiesThatConflictWithEachOtherFailTheBuildNotTheFirstSubscribe() {
        // Each parsed alone, so build() took them and every subscribe failed creating its consumer; Kafka's consumer
        // refuses them together without connecting (ConfigException), as the producer's acks=1 beside idempotence is.
        java.util.Map<String, KafkaTransport.Builder> conflicts = new java.util.LinkedHashMap<>();
        conflicts.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, KafkaTransport.builder().bootstrapServers("localhost:9092")
                .consumerProperty(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer")
                .consumerProperty(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 10_000));
        conflicts.put(ConsumerConfig.GROUP_REMOTE_ASSIGNOR_CONFIG, KafkaTransport.builder().bootstrapServers("localhost:9092")
                .consumerProperty(ConsumerConfig.GROUP_REMOTE_ASSIGNOR_CONFIG, "uniform"));
        conflicts.forEach((property, builder) -> {
            ConfigurationException e = assertThrows(ConfigurationException.class, builder::build, property);
            assertTrue(e.getMessage().contains(property) && e.getMessage().contains("group.protocol"), e.getMessage());
        });
        KafkaTransport.builder().bootstrapServers("localhost:9092").closeTimeout(Duration.ofSeconds(1))
                .consumerProperty(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer")
                .consumerProperty(ConsumerConfig.GROUP_REMOTE_ASSIGNOR_CONFIG, "uniform").build().close(); // together they go
    }

    @Test
    void autoOffsetResetNoneIsRefusedWhereItIsGiven() {
        // Kafka's consumer accepts it, but its poll then throws NoOffsetForPartitionException for an assigned
        // partition that has no position and no committed offset, paused or not: one whose assignment could not
        // read the committed offsets and waits to be positioned again, and so the member ended. It also throws
        // for an offset retention deleted (a LATEST start or committed offset past it), ending the member too.
        for (String none : new String[] {"none", " NONE "}) {
            ConfigurationException e = assertThrows(ConfigurationException.class, () -> KafkaTransport.builder()
                    .bootstrapServers("localhost:9092").consumerProperty(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, none));
            assertTrue(e.getMessage().contains("auto.offset.reset") && e.getMessage().contains(none), e.getMessage());
        }
        ConfigurationException viaClient = assertThrows(ConfigurationException.class, () -> KafkaTransport.builder()
                .bootstrapServers("localhost:9092").clientProperty(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "none"));
        assertTrue(viaClient.getMessage().contains("auto.offset.reset"), viaClient.getMessage());
        KafkaTransport.builder().bootstrapServers("localhost:9092")
                .consumerProperty(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "latest"); // still the user's to choose
    }

    @Test
    void bootstrapServersGivenAsAClientsPropertyAreRefusedNamingTheBuilderCallThatSetsThem() {
        // a client's override was applied after bootstrapServers(..), so it replaced them for that client without a word
        KafkaTransport.Builder builder = KafkaTransport.builder().bootstrapServers("localhost:9092");
        Map<String, Executable> calls = new LinkedHashMap<>();
        calls.put("producer", () -> builder.producerProperty("bootstrap.servers", "other:9092"));
        calls.put("consumer", () -> builder.consumerProperty("bootstrap.servers", "other:9092"));
        calls.put("admin", () -> builder.adminProperty("bootstrap.servers", "other:9092"));
        calls.put("client", () -> builder.clientProperty("bootstrap.servers", "other:9092"));
        calls.forEach((client, call) -> {
            ConfigurationException e = assertThrows(ConfigurationException.class, call, client);
            assertTrue(e.getMessage().contains("bootstrapServers("), client + ": " + e.getMessage());
        });
    }

    @Test
    void aBlankOrNullPropertyNameIsRefusedForEveryClientAlike() {
        // Only adminProperty refused a blank name; producerProperty and consumerProperty took it (a property no
        // client knows, dropped with a warning by Kafka), and refused a null one as "set by the transport".
        KafkaTransport.Builder builder = KafkaTransport.builder();
        java.util.Map<String, org.junit.jupiter.api.function.Executable> calls = new java.util.LinkedHashMap<>();
        for (String name : new String[] {"", " ", null}) {
            calls.put("producer property '" + name + "'", () -> builder.producerProperty(name, "x"));
            calls.put("consumer property '" + name + "'", () -> builder.consumerProperty(name, "x"));
            calls.put("admin property '" + name + "'", () -> builder.adminProperty(name, "x"));
            calls.put("client property '" + name + "'", () -> builder.clientProperty(name, "x"));
        }
        calls.forEach((call, executable) -> {
            ConfigurationException e = assertThrows(ConfigurationException.class, executable, call);
            assertTrue(e.getMessage().contains("property name must not be blank"), call + ": " + e.getMessage());
        });
    }

    @Test
    void aClientPropertyOneClientRefusesIsSetForNoClient() {
        // clientProperty set the producer's property, then the consumer's refused it (auto.offset.reset=none, a
        // name the transport owns), or the consumer's too, then the admin client's (a blank name): the refused
        // call left the builder with the setting half made, and a transport built from it gave it to those clients.
        KafkaTransport.Builder builder = KafkaTransport.builder().bootstrapServers("localhost:9092")
                .closeTimeout(Duration.ofSeconds(1));
        assertThrows(ConfigurationException.class,
                () -> builder.clientProperty(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "none"));
        assertThrows(ConfigurationException.class,
                () -> builder.clientProperty(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, true));
        assertThrows(ConfigurationException.class, () -> builder.clientProperty(" ", "refused"));
        try (KafkaTransport transport = builder.build()) {
            java.util.Map<String, Object> producer = transport.producerProperties(null);
            java.util.Map<String, Object> consumer = transport.consumerProperties("billing", 0, "billing-0");
            assertFalse(producer.containsKey(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), producer.toString());
            assertFalse(producer.containsKey(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG), producer.toString());
            assertFalse(producer.containsKey(" "), producer.toString());
            assertFalse(consumer.containsKey(" "), consumer.toString());
            assertEquals("earliest", consumer.get(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG));
        }
    }

    @Test
    void exactlyOnceRefusesConsumersThatReadUncommittedRecords() {
        // docs/kafka.md: in exactly-once mode consumers read with isolation.level=read_committed
        ConfigurationException e = assertThrows(ConfigurationException.class, () -> KafkaTransport.builder()
                .bootstrapServers("localhost:9092").exactlyOnce("payment-service-1")
                .consumerProperty(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_uncommitted").build());
        assertTrue(e.getMessage().contains("read_uncommitted"), e.getMessage());
    }

    @Test
    void awaitingPublishesPerBatchIsRefusedWithExactlyOnceWhoseTransactionsAlreadyDoIt() {
        ConfigurationException e = assertThrows(ConfigurationException.class, () -> KafkaTransport.builder()
                .bootstrapServers("localhost:9092").exactlyOnce("payment-service-1").awaitPublishesPerBatch(true).build());
        assertTrue(e.getMessage().contains("awaitPublishesPerBatch") && e.getMessage().contains("payment-service-1"),
                e.getMessage());
        KafkaTransport.builder().bootstrapServers("localhost:9092").exactlyOnce("payment-service-1")
                .awaitPublishesPerBatch(false).build().close();
    }

    @Test
    void exactlyOnceTakesTheSettingsItNeedsAsKafkaReadsThemWithTheSpacesAPropertiesFileLeaves() {
        // Properties.load keeps a value's trailing spaces, and Kafka trims them: "all " is acks=all to the producer.
        // The exactly-once checks compared the raw values and refused these, saying acks=all and idempotence, or
        // read_committed, were needed, though that is what they are.
        try (KafkaTransport transport = KafkaTransport.builder().bootstrapServers("localhost:9092")
                .exactlyOnce("payment-service-1")
                .producerProperty(ProducerConfig.ACKS_CONFIG, "all ")
                .producerProperty(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, " true ")
                .consumerProperty(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed ")
                .closeTimeout(Duration.ofSeconds(1)).build()) {
            assertTrue(transport.exactlyOnce());
        }
        ConfigurationException e = assertThrows(ConfigurationException.class, () -> KafkaTransport.builder()
                .bootstrapServers("localhost:9092").exactlyOnce("payment-service-1")
                .producerProperty(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "false ").build());
        assertTrue(e.getMessage().contains("exactly-once mode needs acks=all and idempotence"), e.getMessage());
    }

    @Test
    void aDurationLongerThanTheMaximumIsRefusedWhereItIsGivenNotWhenFirstUsed() {
        Duration forever = java.time.temporal.ChronoUnit.FOREVER.getDuration();
        java.util.Map<String, org.junit.jupiter.api.function.Executable> settings = new java.util.LinkedHashMap<>();
        settings.put("poll timeout", () -> KafkaTransport.builder().pollTimeout(forever));
        settings.put("redelivery backoff", () -> KafkaTransport.builder().redeliveryBackoff(forever));
        settings.put("assignment timeout", () -> KafkaTransport.builder().assignmentTimeout(forever));
        settings.put("close timeout", () -> KafkaTransport.builder().closeTimeout(forever));
        settings.put("request timeout", () -> KafkaTransport.builder().requestTimeout(forever));
        settings.put("consumer groups max age", () -> KafkaTransport.builder().consumerGroupsMaxAge(forever));
        settings.forEach((name, setting) -> {
            ConfigurationException e = assertThrows(ConfigurationException.class, setting, name);
            assertTrue(e.getMessage().startsWith(name + " must be at most PT2562047H47M16.854775807S"), e.getMessage());
        });
        KafkaTransport.builder().requestTimeout(ConfigurationException.MAX_DURATION); // the maximum itself is taken
    }

    @Test
    void aWaitShorterThanTheMillisecondKafkasClientsCountInIsRefusedWhereItIsGiven() {
        // Kafka's clients take a Duration in whole milliseconds: a poll timeout under 1 ms polled without waiting,
        // so an idle member spun a core, and a close or request timeout under 1 ms gave the final, revoke and start
        // commits no wait at all; each was taken as given.
        Duration underAMillisecond = Duration.ofNanos(999_999);
        java.util.Map<String, org.junit.jupiter.api.function.Executable> settings = new java.util.LinkedHashMap<>();
        settings.put("poll timeout", () -> KafkaTransport.builder().pollTimeout(underAMillisecond));
        settings.put("close timeout", () -> KafkaTransport.builder().closeTimeout(underAMillisecond));
        settings.put("request timeout", () -> KafkaTransport.builder().requestTimeout(underAMillisecond));
        settings.forEach((name, setting) -> {
            ConfigurationException e = assertThrows(ConfigurationException.class, setting, name);
            assertTrue(e.getMessage().startsWith(name + " must be at least 1 ms") && e.getMessage().contains("PT0.000999999S"),
                    e.getMessage());
        });
        Duration oneMillisecond = Duration.ofMillis(1);
        KafkaTransport.builder().pollTimeout(oneMillisecond).closeTimeout(oneMillisecond).requestTimeout(oneMillisecond);
    }

    @Test
    void aRetentionHorizonLongerThanTheMaximumIsTakenAsTheMaximumAsATopicKeepingEveryRecordHasNoHorizon() {
        // The horizon is an age (how old a record the topics still hold), like the in-memory transport's retention and
        // every age threshold (ConfigurationException.requireAge), not a delay: FOREVER, for topics with
        // retention.ms=-1, was refused as if the library were to wait that long.
        Duration forever = java.time.temporal.ChronoUnit.FOREVER.getDuration();
        try (KafkaTransport transport = KafkaTransport.builder().bootstrapServers("localhost:9092")
                .retentionHorizon(forever).build()) {
            assertEquals(java.util.Optional.of(ConfigurationException.MAX_DURATION), transport.retentionHorizon());
        }
        for (Duration refused : new Duration[] {Duration.ZERO, Duration.ofSeconds(-1), null}) {
            assertTrue(assertThrows(ConfigurationException.class, () -> KafkaTransport.builder().retentionHorizon(refused))
                    .getMessage().startsWith("retention horizon must be positive"), String.valueOf(refused));
        }
    }

    @Test
    void aNegativeConsumerGroupsMaxAgeIsAConfigurationExceptionQuotingIt() {
        ConfigurationException e = assertThrows(ConfigurationException.class,
                () -> KafkaTransport.builder().consumerGroupsMaxAge(Duration.ofSeconds(-1)));
        assertTrue(e.getMessage().contains("PT-1S"), e.getMessage());
        assertThrows(ConfigurationException.class, () -> KafkaTransport.builder().consumerGroupsMaxAge(null));
    }

    @Test
    void aConsumerKafkaCannotCreateInSubscribeIsANonRetriableKafkaTransportExceptionAndStartsNoMember() {
        // Settings that parse but that the consumer cannot use (here a keystore file that does not exist) pass
        // build() and fail in subscribe's new KafkaConsumer: that threw Kafka's own KafkaException, neither the
        // adapter's KafkaTransportException nor documented, unlike subscribe's other failures.
        try (KafkaTransport transport = withAMissingKeystore(KafkaTransport.Builder::consumerProperty)) {
            KafkaTransportException e = assertThrows(KafkaTransportException.class, () -> transport.subscribe(
                    "g", io.streamsaga.bus.TopicPattern.of("orders"), io.streamsaga.bus.StartPosition.EARLIEST,
                    record -> { }));
            assertTrue(e.getMessage().contains("'g'"), e.getMessage());
            assertFalse(e.isRetriable(), e.toString());
            assertEquals(java.util.Set.of(), transport.subscriptions(), "no member is started");
        }
    }

    @Test
    void anAdminClientKafkaCannotCreateFailsEveryAdminQueryWithANonRetriableKafkaTransportException() {
        // The admin client is created at the first admin query; settings that parse but that it cannot use (here a
        // keystore file that does not exist) threw Kafka's own KafkaException out of endOffsets, committedOffsets,
        // consumerGroups and a LATEST subscribe, where docs/kafka.md promises a KafkaTransportException for an admin
        // query that fails, as the consumer's creation in subscribe is one.
        try (KafkaTransport transport = withAMissingKeystore(KafkaTransport.Builder::adminProperty)) {
            java.util.Map<String, org.junit.jupiter.api.function.Executable> queries = new java.util.LinkedHashMap<>();
            queries.put("endOffsets", () -> transport.endOffsets("orders"));
            queries.put("committedOffsets", () -> transport.committedOffsets("billing", "orders"));
            queries.put("consumerGroups", () -> transport.consumerGroups("orders"));
            queries.put("LATEST subscribe", () -> transport.subscribe("billing", io.streamsaga.bus.TopicPattern.of("orders"),
                    io.streamsaga.bus.StartPosition.LATEST, record -> { }));
            queries.forEach((query, call) -> {
                KafkaTransportException e = assertThrows(KafkaTransportException.class, call, query);
                assertTrue(e.getMessage().contains("admin client"), query + ": " + e.getMessage());
                assertFalse(e.isRetriable(), query + ": " + e);
            });
            assertEquals(java.util.Set.of(), transport.subscriptions(), "no member is started");
        }
    }

    /**
     * A transport whose settings for one client, given through {@code property} (its setter), name a keystore file
     * that does not exist: settings that parse, so build() takes them, but that Kafka cannot create that client with.
     */
    private static KafkaTransport withAMissingKeystore(PropertySetter property) {
        KafkaTransport.Builder builder = KafkaTransport.builder().bootstrapServers("localhost:9092")
                .closeTimeout(Duration.ofSeconds(1));
        property.set(builder, "security.protocol", "SSL");
        property.set(builder, "ssl.keystore.location", "/nonexistent/streamsaga-test.jks");
        property.set(builder, "ssl.keystore.password", "secret");
        return builder.build();
    }

    /** One client's property setter of the builder, such as {@code consumerProperty}. */
    private interface PropertySetter {
        void set(KafkaTransport.Builder builder, String name, Object value);
    }
}
