package io.streamsaga.jdbc.outbox;

import io.streamsaga.jdbc.testing.TestDatabase;

class PostgresOutboxToConsumerEndToEndTest extends OutboxToConsumerEndToEndTest {
    @Override
    TestDatabase.Kind kind() {
        return TestDatabase.Kind.POSTGRES;
    }
}
