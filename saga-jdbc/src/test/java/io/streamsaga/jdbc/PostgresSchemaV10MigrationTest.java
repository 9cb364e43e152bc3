package io.streamsaga.jdbc;

import io.streamsaga.jdbc.testing.TestDatabase;

class PostgresSchemaV10MigrationTest extends SchemaV10MigrationTest {
    @Override
    TestDatabase.Kind kind() {
        return TestDatabase.Kind.POSTGRES;
    }
}
