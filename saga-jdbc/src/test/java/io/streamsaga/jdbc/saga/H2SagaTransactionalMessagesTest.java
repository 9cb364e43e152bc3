package io.streamsaga.jdbc.saga;

import io.streamsaga.jdbc.testing.TestDatabase;

class H2SagaTransactionalMessagesTest extends SagaTransactionalMessagesTest {
    @Override
    TestDatabase.Kind kind() {
        return TestDatabase.Kind.H2;
    }

    @Override
    JdbcSagaStore.Builder configure(JdbcSagaStore.Builder builder) {
        return builder;
    }
}
