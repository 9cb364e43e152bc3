package io.streamsaga.jdbc.saga;

import io.streamsaga.jdbc.testing.TestDatabase;

class H2OnCallRunbookTest extends OnCallRunbookTest {
    @Override
    TestDatabase.Kind kind() {
        return TestDatabase.Kind.H2;
    }
}
