package io.streamsaga.jdbc.outbox;

import io.streamsaga.jdbc.testing.TestDatabase;

class H2OutboxToConsumerEndToEndTest extends OutboxToConsumerEndToEndTest {
    @Override
    TestDatabase.Kind kind() {
        return TestDatabase.Kind.H2;
    }
}
