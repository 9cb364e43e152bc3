package io.streamsaga.jdbc;

import io.streamsaga.jdbc.testing.DatabaseExtension;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Schema creation on PostgreSQL when several nodes start at once. */
class JdbcSchemaTest {
    @RegisterExtension
    final DatabaseExtension db = DatabaseExtension.postgres();

    /**
     * Several rounds on an empty database each: the nodes' concurrent {@code CREATE TABLE IF NOT EXISTS} of
     * the version table meet at different points of PostgreSQL's catalog from round to round, and every
     * way of losing that race must leave the node migrating normally.
     */
    @Test
    void nodesMigratingAtTheSameMomentApplyEachVersionOnce() throws Exception {
        int nodes = 4;
        ExecutorService pool = Executors.newFixedThreadPool(nodes);
        try {
            for (int round = 0; round < 20; round++) {
                db.database().execute("DROP SCHEMA public CASCADE");
                db.database().execute("CREATE SCHEMA public");
                CountDownLatch start = new CountDownLatch(1);
                List<Future<Integer>> versions = new ArrayList<>();
                for (int i = 0; i < nodes; i++) {
                    versions.add(pool.submit(() -> {
                        start.await();
                        return JdbcSchema.of(db.database().dataSource()).migrate();
                    }));
                }
                start.countDown();
                for (Future<Integer> version : versions) {
                    assertEquals(JdbcSchema.latestVersion(), version.get(60, TimeUnit.SECONDS));
                }
                assertEquals(JdbcSchema.latestVersion(), db.database().queryLong("SELECT COUNT(*) FROM ss_schema_version"));
                assertEquals(JdbcSchema.latestVersion(), JdbcSchema.of(db.database().dataSource()).currentVersion());
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void aDatabaseWithoutTheVersionTableIsAtVersionZero() {
        // only "no such table" (42P01 here) means version 0; any other error of the probe is thrown (SchemaVersionCheckTest)
        assertEquals(0, JdbcSchema.of(db.database().dataSource()).currentVersion());
    }
}
