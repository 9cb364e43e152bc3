package io.streamsaga.jdbc;

import io.streamsaga.jdbc.testing.TestDatabase;

class PostgresStoredKeyColumnWidthsTest extends StoredKeyColumnWidthsTest {
    @Override
    TestDatabase.Kind kind() {
        return TestDatabase.Kind.POSTGRES;
    }
}
