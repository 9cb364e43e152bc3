package io.streamsaga.jdbc.saga;

import io.streamsaga.jdbc.testing.TestDatabase;

class PostgresSagaLifecycleOutboxTest extends SagaLifecycleOutboxTest {
    @Override
    TestDatabase.Kind kind() {
        return TestDatabase.Kind.POSTGRES;
    }

    @Override
    JdbcSagaStore.Builder configure(JdbcSagaStore.Builder builder) {
        return builder.groupCommit(16);
    }
}
