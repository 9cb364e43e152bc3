package io.streamsaga.jdbc.saga;

import io.streamsaga.jdbc.testing.TestDatabase;

class H2RenamedKeysTest extends RenamedKeysTest {
    @Override
    TestDatabase.Kind kind() {
        return TestDatabase.Kind.H2;
    }
}
