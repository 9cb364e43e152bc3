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

/** JdbcSchema is documented thread-safe: threads of one process migrating one H2 database at once. */
class H2JdbcSchemaTest {
    @RegisterExtension
    final DatabaseExtension db = DatabaseExtension.h2();

    @Test
    void threadsMigratingAtTheSameMomentApplyEachVersionOnce() throws Exception {
        int nodes = 4;
        ExecutorService pool = Executors.newFixedThreadPool(nodes);
        try {
            for (int round = 0; round < 20; round++) {
                db.database().execute("DROP ALL OBJECTS");
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
            }
        } finally {
            pool.shutdownNow();
        }
    }
}
