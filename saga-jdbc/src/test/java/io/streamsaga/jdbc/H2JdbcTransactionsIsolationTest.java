package io.streamsaga.jdbc;

import io.streamsaga.jdbc.testing.TestDatabase;

class H2JdbcTransactionsIsolationTest extends JdbcTransactionsIsolationTest {
    @Override
    TestDatabase.Kind kind() {
        return TestDatabase.Kind.H2;
    }
}
