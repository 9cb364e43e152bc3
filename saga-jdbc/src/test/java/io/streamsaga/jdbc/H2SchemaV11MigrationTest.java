package io.streamsaga.jdbc;

import io.streamsaga.jdbc.testing.TestDatabase;

class H2SchemaV11MigrationTest extends SchemaV11MigrationTest {
    @Override
    TestDatabase.Kind kind() {
        return TestDatabase.Kind.H2;
    }
}
