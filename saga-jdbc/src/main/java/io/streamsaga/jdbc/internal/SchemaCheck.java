package io.streamsaga.jdbc.internal;

import io.streamsaga.ConfigurationException;
import io.streamsaga.jdbc.JdbcSchema;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import javax.sql.DataSource;

/**
 * The schema check each component over the StreamSaga tables runs once, when built: one query of
 * {@code ss_schema_version}. A database behind the library's {@link JdbcSchema#latestVersion()} is refused, as
 * its writes would fail later and obscurely (a column still too narrow); a newer one is taken with a warning,
 * as a node of the earlier release meets it during a rolling upgrade (versions only add tables and columns or
 * widen them); a database without the version table is not checked, its schema being managed by the
 * application's own tool from the copied files.
 */
public final class SchemaCheck {
    private static final Logger log = LoggerFactory.getLogger(SchemaCheck.class);

    private SchemaCheck() {
    }

    /**
     * Checks the schema behind {@code dataSource} for {@code component}.
     *
     * @throws ConfigurationException when the database is at an older schema version than the library's latest
     * @throws io.streamsaga.jdbc.JdbcException when the version cannot be read
     */
    public static void requireMigrated(DataSource dataSource, String component) {
        int current = JdbcSchema.of(dataSource).currentVersion();
        int latest = JdbcSchema.latestVersion();
        if (current == 0) {
            log.debug("no StreamSaga schema version recorded (ss_schema_version): {} does not check the schema,"
                    + " the application's own tool manages it", component);
        } else if (current < latest) {
            throw new ConfigurationException(component + " needs StreamSaga schema version " + latest
                    + ", but the database is at version " + current
                    + ": run JdbcSchema.of(dataSource).migrate() before building it");
        } else if (current > latest) {
            log.warn("the database is at StreamSaga schema version {}, newer than the {} this library knows: {} works"
                    + " on it (schema versions only add), but upgrade this node to the release that migrated it",
                    current, latest, component);
        }
    }
}
