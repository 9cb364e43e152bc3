package io.streamsaga.jdbc;

import io.streamsaga.jdbc.testing.TestDatabase;

class H2SchemaV9MigrationTest extends SchemaV9MigrationTest {
    @Override
    TestDatabase.Kind kind() {
        return TestDatabase.Kind.H2;
    }
}
