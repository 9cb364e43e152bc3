package io.streamsaga.jdbc;

import io.streamsaga.jdbc.testing.TestDatabase;

class PostgresSchemaV11MigrationTest extends SchemaV11MigrationTest {
    @Override
    TestDatabase.Kind kind() {
        return TestDatabase.Kind.POSTGRES;
    }
}
