package io.streamsaga.jdbc;

import io.streamsaga.jdbc.testing.DatabaseExtension;
import io.streamsaga.jdbc.testing.TestDatabase;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import javax.sql.DataSource;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.sql.Connection;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A migration the process died in, then run again by the next start: on PostgreSQL the version's transaction rolled
 * back, on H2 its DDL had committed statement by statement; subclasses pick the engine.
 */
abstract class SchemaMigrationCrashTest {
    /** Stands for the process dying at that point of the migration. */
    static final class ProcessDied extends RuntimeException {
        private static final long serialVersionUID = 1L;

        ProcessDied() {
            super("the process died", null, false, false);
        }
    }

    @RegisterExtension
    final DatabaseExtension db = DatabaseExtension.of(kind());

    abstract TestDatabase.Kind kind();

    @Test
    void aMigrationThatDiedAfterAVersionsStatementsBeforeRecordingItIsCompletedByTheNextMigrate() {
        // JdbcSchema.migrate(): "each version in one transaction" holds on PostgreSQL only; H2 commits each DDL
        // statement. A process that died after some statements of a version on H2 left them applied and the version
        // unrecorded, and every later migrate() failed on the first of them ("table already exists"), for good.
        for (int version = 1; version <= JdbcSchema.latestVersion(); version++) {
            reset();
            DataSource dying = diesRecording(db.database().dataSource(), version);
            assertThrows(ProcessDied.class, () -> JdbcSchema.of(dying).migrate(), "dies recording version");
            assertTrue(JdbcSchema.of(db.database().dataSource()).currentVersion() < version, "version not recorded");

            assertEquals(JdbcSchema.latestVersion(), JdbcSchema.of(db.database().dataSource()).migrate(),
                    "the next start completes version " + version);
            assertEquals(JdbcSchema.latestVersion(), db.database().queryLong("SELECT COUNT(*) FROM ss_schema_version"));
        }
    }

    private void reset() {
        if (kind() == TestDatabase.Kind.H2) {
            db.database().execute("DROP ALL OBJECTS");
        } else {
            db.database().execute("DO $$ DECLARE t record; BEGIN FOR t IN SELECT tablename FROM pg_tables"
                    + " WHERE schemaname = current_schema() LOOP EXECUTE 'DROP TABLE ' || quote_ident(t.tablename)"
                    + " || ' CASCADE'; END LOOP; END $$");
        }
    }

    /** {@code target}, whose connections die when the migration records {@code version}, after its statements. */
    private static DataSource diesRecording(DataSource target, int version) {
        int[] recorded = {0};
        return (DataSource) Proxy.newProxyInstance(DataSource.class.getClassLoader(), new Class<?>[] {DataSource.class},
                (p, method, args) -> {
                    Object result = invoke(method, target, args);
                    if (!(result instanceof Connection connection)) {
                        return result;
                    }
                    return Proxy.newProxyInstance(Connection.class.getClassLoader(), new Class<?>[] {Connection.class},
                            (pc, m, a) -> {
                                if (m.getName().equals("prepareStatement")
                                        && ((String) a[0]).startsWith("INSERT INTO ss_schema_version")
                                        && ++recorded[0] == version) {
                                    throw new ProcessDied();
                                }
                                return invoke(m, connection, a);
                            });
                });
    }

    private static Object invoke(Method method, Object target, Object[] args) throws Throwable {
        try {
            return method.invoke(target, args);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
    }
}
