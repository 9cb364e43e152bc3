package io.streamsaga.jdbc;

import io.streamsaga.jdbc.testing.TestDatabase;

class H2SchemaV10MigrationTest extends SchemaV10MigrationTest {
    @Override
    TestDatabase.Kind kind() {
        return TestDatabase.Kind.H2;
    }
}
