package io.streamsaga.jdbc.saga;

import io.streamsaga.jdbc.JdbcSchema;
import io.streamsaga.jdbc.testing.DatabaseExtension;
import io.streamsaga.saga.spi.SagaStore;
import io.streamsaga.saga.spi.SagaStoreContractTest;
import org.junit.jupiter.api.extension.RegisterExtension;

/** saga-core's saga store contract on H2, with group commit on: batching must not change the semantics. */
class H2GroupCommitSagaStoreContractTest extends SagaStoreContractTest {
    @RegisterExtension
    final DatabaseExtension db = DatabaseExtension.h2();

    @Override
    protected SagaStore createStore() {
        JdbcSchema.of(db.database().dataSource()).migrate();
        return JdbcSagaStore.builder(db.database().dataSource()).groupCommit(32).build();
    }
}
