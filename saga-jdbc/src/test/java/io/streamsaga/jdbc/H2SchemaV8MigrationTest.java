package io.streamsaga.jdbc;

import io.streamsaga.jdbc.testing.TestDatabase;

class H2SchemaV8MigrationTest extends SchemaV8MigrationTest {
    @Override
    TestDatabase.Kind kind() {
        return TestDatabase.Kind.H2;
    }
}
