package io.streamsaga.jdbc;

import io.streamsaga.jdbc.testing.TestDatabase;

class H2StoredKeyColumnWidthsTest extends StoredKeyColumnWidthsTest {
    @Override
    TestDatabase.Kind kind() {
        return TestDatabase.Kind.H2;
    }
}
