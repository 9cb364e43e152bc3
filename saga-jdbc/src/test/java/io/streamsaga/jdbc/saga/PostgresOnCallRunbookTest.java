package io.streamsaga.jdbc.saga;

import io.streamsaga.jdbc.testing.TestDatabase;

class PostgresOnCallRunbookTest extends OnCallRunbookTest {
    @Override
    TestDatabase.Kind kind() {
        return TestDatabase.Kind.POSTGRES;
    }
}
