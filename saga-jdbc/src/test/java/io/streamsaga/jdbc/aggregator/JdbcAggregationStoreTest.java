package io.streamsaga.jdbc.aggregator;

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
    void aRestartedProcessFindsOpenGroupsAndTheirDeadlines() {
        Instant t0 = Instant.parse("2026-01-01T00:00:00Z");
        createStore().save(AggregationGroup.open("agg", "o-9", t0, t0.plusSeconds(30)).withVersion(1));

        AggregationStore afterRestart = JdbcAggregationStore.create(db.database().dataSource());
        assertEquals(1, afterRestart.withDeadlines("agg").size());
        assertEquals(t0.plusSeconds(30), afterRestart.find("agg", "o-9").orElseThrow().deadline());
        assertTrue(afterRestart.withDeadlines("other").isEmpty());
    }
}
