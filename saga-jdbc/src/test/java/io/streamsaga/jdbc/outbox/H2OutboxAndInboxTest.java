package io.streamsaga.jdbc.outbox;

import io.streamsaga.jdbc.testing.TestDatabase;

class H2OutboxAndInboxTest extends OutboxAndInboxTest {
    @Override
    TestDatabase.Kind kind() {
        return TestDatabase.Kind.H2;
    }
}
