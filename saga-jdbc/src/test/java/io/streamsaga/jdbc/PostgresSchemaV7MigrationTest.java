package io.streamsaga.jdbc;

import io.streamsaga.jdbc.testing.TestDatabase;

class PostgresSchemaV7MigrationTest extends SchemaV7MigrationTest {
    @Override
    TestDatabase.Kind kind() {
        return TestDatabase.Kind.POSTGRES;
    }
}
