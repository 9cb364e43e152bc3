package io.streamsaga.jdbc;

import io.streamsaga.jdbc.testing.TestDatabase;

class H2ScheduledPurgeTest extends ScheduledPurgeTest {
    @Override
    TestDatabase.Kind kind() {
        return TestDatabase.Kind.H2;
    }
}
