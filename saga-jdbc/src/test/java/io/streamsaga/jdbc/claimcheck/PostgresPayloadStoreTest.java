package io.streamsaga.jdbc.claimcheck;

import io.streamsaga.jdbc.testing.TestDatabase;

class PostgresPayloadStoreTest extends JdbcPayloadStoreTest {
    @Override
    TestDatabase.Kind kind() {
        return TestDatabase.Kind.POSTGRES;
    }
}
