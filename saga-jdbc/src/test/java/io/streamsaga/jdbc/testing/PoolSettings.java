package io.streamsaga.jdbc.testing;

import javax.sql.DataSource;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.sql.Connection;

/**
 * A data source handing out another's connections set up as a production pool configured so hands them out:
 * HikariCP's {@code autoCommit} (false with Spring Boot and Hibernate's advice) and {@code transactionIsolation}
 * (or PostgreSQL's {@code default_transaction_isolation}). The library must keep its promises on such connections,
 * not only on a driver's defaults. Stateless; thread-safe.
 *
 * @param autoCommit the auto-commit mode of each connection handed out
 * @param isolation  its transaction isolation ({@link Connection#TRANSACTION_READ_COMMITTED} and so on)
 */
public record PoolSettings(boolean autoCommit, int isolation) {

    /** Connections with auto-commit off, at the driver's default isolation (read committed on both databases). */
    public static PoolSettings autoCommitOff() {
        return new PoolSettings(false, Connection.TRANSACTION_READ_COMMITTED);
    }

    /** Connections in auto-commit mode, whose transactions are {@code REPEATABLE READ}. */
    public static PoolSettings repeatableRead() {
        return new PoolSettings(true, Connection.TRANSACTION_REPEATABLE_READ);
    }

    /** {@code target}'s connections, each set up with these settings when handed out. */
    public DataSource applyTo(DataSource target) {
        return (DataSource) Proxy.newProxyInstance(DataSource.class.getClassLoader(), new Class<?>[] {DataSource.class},
                (proxy, method, args) -> {
                    Object result;
                    try {
                        result = method.invoke(target, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                    if (result instanceof Connection connection) {
                        connection.setTransactionIsolation(isolation);
                        connection.setAutoCommit(autoCommit);
                    }
                    return result;
                });
    }
}
