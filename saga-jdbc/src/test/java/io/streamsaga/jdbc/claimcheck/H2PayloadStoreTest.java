package io.streamsaga.jdbc.claimcheck;

import io.streamsaga.jdbc.testing.TestDatabase;

class H2PayloadStoreTest extends JdbcPayloadStoreTest {
    @Override
    TestDatabase.Kind kind() {
        return TestDatabase.Kind.H2;
    }
}
