package io.streamsaga.samples.jdbc;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import io.streamsaga.jdbc.JdbcSchema;

import java.util.UUID;

/**
 * The durable samples' database: H2 in PostgreSQL mode behind a HikariCP pool, in memory by default or in
 * a file (so that a second run sees what the first one left), with StreamSaga's schema created. Used by
 * the samples' {@code --jdbc} modes. Stateless.
 */
public final class SampleDatabase {
    private SampleDatabase() {
    }

    /** A pool on {@code jdbc:h2:file:<file>} when {@code file} is given, else on a fresh in-memory database. */
    public static HikariDataSource open(String file) {
        String where = file != null ? "file:" + file : "mem:sample-" + UUID.randomUUID();
        HikariConfig config = new HikariConfig();
        config.setJdbcUrl("jdbc:h2:" + where + ";MODE=PostgreSQL;DATABASE_TO_LOWER=TRUE;DEFAULT_NULL_ORDERING=HIGH");
        config.setUsername("sa");
        config.setPassword("");
        config.setMaximumPoolSize(4);
        config.setPoolName("sample");
        HikariDataSource dataSource = new HikariDataSource(config);
        JdbcSchema.of(dataSource).migrate();
        return dataSource;
    }

    /** The value following {@code flag} in {@code args}, or null. */
    static String option(String[] args, String flag) {
        for (int i = 0; i < args.length - 1; i++) {
            if (args[i].equals(flag)) {
                return args[i + 1];
            }
        }
        return null;
    }
}
