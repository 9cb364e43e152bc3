package io.streamsaga.jdbc;

import io.streamsaga.jdbc.testing.TestDatabase;

class PostgresScheduledPurgeTest extends ScheduledPurgeTest {
    @Override
    TestDatabase.Kind kind() {
        return TestDatabase.Kind.POSTGRES;
    }
}
