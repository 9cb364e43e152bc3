package io.streamsaga.jdbc.internal;

import io.streamsaga.ConfigurationException;
import io.streamsaga.jdbc.JdbcException;

import java.sql.Connection;
import java.sql.SQLException;
import java.util.Locale;

/**
 * The databases the JDBC module supports. Only the DDL differs per database (schema files live under
 * {@code io/streamsaga/jdbc/schema/<folder>/}); every statement the stores run is written once in SQL
 * that PostgreSQL 15+ and H2 2.x (PostgreSQL mode) both accept: {@code MERGE ... USING (VALUES ...)},
 * version-checked updates, {@code SELECT ... FOR UPDATE}, no {@code ON CONFLICT}, no {@code RETURNING}.
 * One exception: the saga store's group commit updates a batch with one {@code UPDATE ... FROM (VALUES ...)
 * RETURNING} on PostgreSQL (a JDBC batch of plain updates on H2).
 */
public enum Dialect {
    POSTGRESQL("postgresql"),
    H2("h2");

    private final String folder;

    Dialect(String folder) {
        this.folder = folder;
    }

    /** The resource folder of this database's schema files. */
    public String folder() {
        return folder;
    }

    /** The dialect of the database {@code connection} is connected to. */
    public static Dialect of(Connection connection) {
        String product;
        try {
            product = connection.getMetaData().getDatabaseProductName();
        } catch (SQLException e) {
            throw JdbcException.of("cannot read the database product name", e);
        }
        String p = product.toLowerCase(Locale.ROOT);
        if (p.contains("postgres")) {
            return POSTGRESQL;
        }
        if (p.equals("h2")) {
            return H2;
        }
        throw new ConfigurationException("unsupported database '" + product
                + "': StreamSaga's JDBC module supports PostgreSQL 15+ and H2 2.x");
    }
}
