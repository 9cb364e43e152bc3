package io.streamsaga.jdbc.aggregator;

import io.streamsaga.ConfigurationException;
import io.streamsaga.aggregator.AggregationGroup;
import io.streamsaga.aggregator.spi.AggregationStore;
import io.streamsaga.aggregator.spi.AggregationStoreContractTest;
import io.streamsaga.jdbc.JdbcSchema;
import io.streamsaga.jdbc.testing.DatabaseExtension;
import io.streamsaga.jdbc.testing.TestDatabase;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.time.Instant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The aggregation store contract, plus durability across store instances; subclasses pick the engine. */
abstract class JdbcAggregationStoreTest extends AggregationStoreContractTest {
    @RegisterExtension
    final DatabaseExtension db = DatabaseExtension.of(kind());

    abstract TestDatabase.Kind kind();

    @Override
    protected AggregationStore createStore() {
        JdbcSchema.of(db.database().dataSource()).migrate();
        return JdbcAggregationStore.create(db.database().dataSource());
    }

    @Test
    void aGroupKeyLongerThanItsColumnIsRefusedRatherThanSavedUnderAPrefix() {
        // Both databases cut a value cast to VARCHAR(500) to its first 500 characters: the group was saved
        // under the prefix, so save returned true but find by its key found nothing (and another key sharing
        // the prefix was taken for the same group).
        Instant t0 = Instant.parse("2026-01-01T00:00:00Z");
        AggregationStore store = createStore();
        String longest = "k".repeat(500);
        assertTrue(store.save(AggregationGroup.open("agg", longest, t0, t0.plusSeconds(30)).withVersion(1)));
        assertTrue(store.find("agg", longest).isPresent());
        assertThrows(ConfigurationException.class,
                () -> store.save(AggregationGroup.open("agg", longest + "-2", t0, t0.plusSeconds(30)).withVersion(1)));
    }

    @Test
    void aRestartedProcessFindsOpenGroupsAndTheirDeadlines() {
        Instant t0 = Instant.parse("2026-01-01T00:00:00Z");
        createStore().save(AggregationGroup.open("agg", "o-9", t0, t0.plusSeconds(30)).withVersion(1));

        AggregationStore afterRestart = JdbcAggregationStore.create(db.database().dataSource());
        assertEquals(1, afterRestart.withDeadlines("agg").size());
        assertEquals(t0.plusSeconds(30), afterRestart.find("agg", "o-9").orElseThrow().deadline());
        assertTrue(afterRestart.withDeadlines("other").isEmpty());
    }
}
