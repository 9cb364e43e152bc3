package io.streamsaga.jdbc.outbox;

import io.streamsaga.jdbc.testing.TestDatabase;

class PostgresOutboxAndInboxTest extends OutboxAndInboxTest {
    @Override
    TestDatabase.Kind kind() {
        return TestDatabase.Kind.POSTGRES;
    }
}
