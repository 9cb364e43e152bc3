package io.streamsaga.jdbc.aggregator;

import io.streamsaga.jdbc.testing.TestDatabase;

class PostgresAggregationStoreTest extends JdbcAggregationStoreTest {
    @Override
    TestDatabase.Kind kind() {
        return TestDatabase.Kind.POSTGRES;
    }
}
