package io.streamsaga.jdbc.idempotency;

import io.streamsaga.jdbc.testing.TestDatabase;

class PostgresDeduplicationStoreTest extends JdbcDeduplicationStoreTest {
    @Override
    TestDatabase.Kind kind() {
        return TestDatabase.Kind.POSTGRES;
    }
}
