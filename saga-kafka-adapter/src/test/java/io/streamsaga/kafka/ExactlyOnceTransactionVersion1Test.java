package io.streamsaga.kafka;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.FeatureUpdate;
import org.apache.kafka.clients.admin.FinalizedVersionRange;
import org.apache.kafka.clients.admin.UpdateFeaturesOptions;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.time.Duration;
import java.util.Map;

import static org.awaitility.Awaitility.await;

/**
 * {@link ExactlyOnceTest}'s transaction timeout scenarios on a cluster at {@code transaction.version} 1 (every
 * broker before Kafka 4.0, and a 4.x cluster not upgraded), whose coordinator refuses the abort of a
 * transaction it aborted for its timeout as it refuses a fenced producer's: the member still goes on after
 * its own timeout, and still stops, leaving the id, after a restarted instance took it.
 */
class ExactlyOnceTransactionVersion1Test {
    private static final String TRANSACTION_VERSION = "transaction.version";
    private static short levelBefore;

    @BeforeAll
    static void downgradeTheSharedBroker() throws Exception {
        try (Admin admin = admin()) {
            levelBefore = level(admin);
            setLevel(admin, (short) 1, FeatureUpdate.UpgradeType.SAFE_DOWNGRADE);
        }
    }

    @AfterAll
    static void restoreTheSharedBroker() throws Exception {
        try (Admin admin = admin()) {
            setLevel(admin, levelBefore, FeatureUpdate.UpgradeType.UPGRADE);
        }
    }

    @ParameterizedTest(name = "publishesAfterTheAbort={0}")
    @ValueSource(booleans = {false, true})
    void aHandlerThatOutlivesTheTransactionTimeoutIsAbortedAndRedeliveredAndTheSubscriptionGoesOn(
            boolean publishesAfterTheAbort) throws Exception {
        new ExactlyOnceTest().aHandlerThatOutlivesTheTransactionTimeoutIsAbortedAndRedeliveredAndTheSubscriptionGoesOn(
                publishesAfterTheAbort);
    }

    @Test
    void aMemberFencedAfterItsTransactionTimedOutStopsEvenWhenTheFencingInstancesLastTransactionAborted() throws Exception {
        new ExactlyOnceTest().aMemberFencedAfterItsTransactionTimedOutStopsEvenWhenTheFencingInstancesLastTransactionAborted();
    }

    private static Admin admin() {
        return Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, SharedKafkaBroker.bootstrapServers()));
    }

    private static short level(Admin admin) throws Exception {
        FinalizedVersionRange range = admin.describeFeatures().featureMetadata().get().finalizedFeatures()
                .get(TRANSACTION_VERSION);
        return range == null ? 0 : range.maxVersionLevel();
    }

    private static void setLevel(Admin admin, short level, FeatureUpdate.UpgradeType type) throws Exception {
        admin.updateFeatures(Map.of(TRANSACTION_VERSION, new FeatureUpdate(level, type)), new UpdateFeaturesOptions())
                .all().get();
        await().atMost(Duration.ofSeconds(60)).until(() -> level(admin) == level);
    }
}
