package io.streamsaga.jdbc;

import io.streamsaga.jdbc.testing.DatabaseExtension;
import io.streamsaga.jdbc.testing.TestDatabase;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import javax.sql.DataSource;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.sql.Connection;
import java.util.ArrayList;
import java.util.List;

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
        List<Connection> handedOut = new ArrayList<>();
        DataSource pool = proxy(DataSource.class, db.database().dataSource(), (method, result) -> {
            if (!(result instanceof Connection connection)) {
                return result;
            }
            if (handedOut.isEmpty()) { // left so by its last user
                connection.setTransactionIsolation(Connection.TRANSACTION_SERIALIZABLE);
            }
            handedOut.add(connection);
            return proxy(Connection.class, connection, (m, r) -> r); // close() given back: the test closes them after
        });
        JdbcTransactions readCommitted = new JdbcTransactions(pool).withIsolation(Connection.TRANSACTION_READ_COMMITTED);
        try {
            assertEquals(Connection.TRANSACTION_READ_COMMITTED,
                    readCommitted.inTransaction(Connection::getTransactionIsolation));
            assertEquals(Connection.TRANSACTION_READ_COMMITTED,
                    readCommitted.inTransaction(Connection::getTransactionIsolation));

            assertEquals(Connection.TRANSACTION_SERIALIZABLE, handedOut.get(0).getTransactionIsolation(),
                    "the first connection given back at its own level");
            assertEquals(Connection.TRANSACTION_READ_COMMITTED, handedOut.get(1).getTransactionIsolation(),
                    "the second given back at its own level, not at the first one's");
        } finally {
            for (Connection c : handedOut) {
                c.close();
            }
        }
    }

    private interface After {
        Object apply(String method, Object result) throws Exception;
    }

    /** {@code target} behind a proxy; {@code close} is not passed on to a connection. */
    private static <T> T proxy(Class<T> type, T target, After after) {
        return type.cast(Proxy.newProxyInstance(type.getClassLoader(), new Class<?>[]{type}, (p, method, args) -> {
            if (type == Connection.class && method.getName().equals("close")) {
                return null;
            }
            Object result;
            try {
                result = method.invoke(target, args);
            } catch (InvocationTargetException e) {
                throw e.getCause();
            }
            return after.apply(method.getName(), result);
        }));
    }
}
