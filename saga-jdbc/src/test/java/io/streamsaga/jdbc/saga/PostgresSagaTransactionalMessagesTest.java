package io.streamsaga.jdbc.saga;

import io.streamsaga.jdbc.testing.TestDatabase;

class PostgresSagaTransactionalMessagesTest extends SagaTransactionalMessagesTest {
    @Override
    TestDatabase.Kind kind() {
        return TestDatabase.Kind.POSTGRES;
    }

    @Override
    JdbcSagaStore.Builder configure(JdbcSagaStore.Builder builder) {
        return builder.groupCommit(16);
    }
}
