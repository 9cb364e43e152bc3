package io.streamsaga.jdbc.saga;

import io.streamsaga.jdbc.JdbcSchema;
import io.streamsaga.jdbc.testing.DatabaseExtension;
import io.streamsaga.saga.spi.SagaStore;
import io.streamsaga.saga.spi.SagaStoreContractTest;
import org.junit.jupiter.api.extension.RegisterExtension;

/** saga-core's saga store contract on Postgres. */
class PostgresSagaStoreContractTest extends SagaStoreContractTest {
    @RegisterExtension
    final DatabaseExtension db = DatabaseExtension.postgres();

    @Override
    protected SagaStore createStore() {
        JdbcSchema.of(db.database().dataSource()).migrate();
        return JdbcSagaStore.create(db.database().dataSource());
    }
}
