package io.streamsaga.jdbc.idempotency;

import io.streamsaga.jdbc.testing.TestDatabase;

class H2DeduplicationStoreTest extends JdbcDeduplicationStoreTest {
    @Override
    TestDatabase.Kind kind() {
        return TestDatabase.Kind.H2;
    }
}
