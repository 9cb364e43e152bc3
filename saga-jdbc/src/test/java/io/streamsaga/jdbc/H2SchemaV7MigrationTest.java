package io.streamsaga.jdbc;

import io.streamsaga.jdbc.testing.TestDatabase;

class H2SchemaV7MigrationTest extends SchemaV7MigrationTest {
    @Override
    TestDatabase.Kind kind() {
        return TestDatabase.Kind.H2;
    }
}
