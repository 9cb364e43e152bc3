package io.streamsaga.jdbc;

import io.streamsaga.jdbc.testing.Around;
import io.streamsaga.jdbc.testing.DatabaseExtension;
import io.streamsaga.jdbc.testing.TestDatabase;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import javax.sql.DataSource;
import java.sql.Connection;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * {@link JdbcTransactions#withIsolation} on a pool that does not hand every connection out alike (one that does not reset
 * a level its last user set; a data source routing to databases of other defaults): each connection is given back at
 * its own level; subclasses pick PostgreSQL or H2.
 */
abstract class JdbcTransactionsIsolationTest {
    @RegisterExtension
    final DatabaseExtension db = DatabaseExtension.of(kind());

    abstract TestDatabase.Kind kind();

    @Test
    void aConnectionHandedOutAtAnotherLevelThanTheFirstIsGivenBackAtItsOwnNotAtTheFirstOnes() throws Exception {
        // The level asked of the first connection was the one every later connection was "restored" to after a
        // transaction of another level: a pool's connection handed out at READ COMMITTED went back SERIALIZABLE, the
        // first one's, for every later user of the pool.
        List<Integer> givenBackAt = new ArrayList<>();
        AtomicInteger handedOut = new AtomicInteger();
        DataSource pool = Around.wrap(DataSource.class, db.database().dataSource(), (method, proceed) -> {
            Object result = proceed.call();
            if (!(result instanceof Connection connection)) {
                return result;
            }
            if (handedOut.incrementAndGet() == 1) {
                connection.setTransactionIsolation(Connection.TRANSACTION_SERIALIZABLE); // left so by its last user
            }
            return Around.wrap(Connection.class, connection, (m, call) -> {
                if (m.equals("close")) { // the level the pool takes it back at
                    givenBackAt.add(connection.getTransactionIsolation());
                }
                return call.call();
            });
        });
        JdbcTransactions readCommitted = new JdbcTransactions(pool).withIsolation(Connection.TRANSACTION_READ_COMMITTED);

        assertEquals(Connection.TRANSACTION_READ_COMMITTED, readCommitted.inTransaction(Connection::getTransactionIsolation));
        assertEquals(Connection.TRANSACTION_READ_COMMITTED, readCommitted.inTransaction(Connection::getTransactionIsolation));
        assertEquals(List.of(Connection.TRANSACTION_SERIALIZABLE, Connection.TRANSACTION_READ_COMMITTED), givenBackAt,
                "each connection given back at its own level, the second not at the first one's");
    }
}
