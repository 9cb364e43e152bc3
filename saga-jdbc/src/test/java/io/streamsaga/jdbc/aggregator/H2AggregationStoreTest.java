package io.streamsaga.jdbc.aggregator;

import io.streamsaga.jdbc.testing.TestDatabase;

class H2AggregationStoreTest extends JdbcAggregationStoreTest {
    @Override
    TestDatabase.Kind kind() {
        return TestDatabase.Kind.H2;
    }
}
