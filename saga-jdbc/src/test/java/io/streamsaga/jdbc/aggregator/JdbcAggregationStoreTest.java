package io.streamsaga.jdbc.aggregator;

import io.streamsaga.ConfigurationException;
import io.streamsaga.aggregator.AggregatedPart;
import io.streamsaga.aggregator.AggregationGroup;
import io.streamsaga.aggregator.spi.AggregationStore;
import io.streamsaga.aggregator.spi.AggregationStoreContractTest;
import io.streamsaga.jdbc.JdbcSchema;
import io.streamsaga.jdbc.testing.DatabaseExtension;
import io.streamsaga.jdbc.testing.TestDatabase;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.time.Instant;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The aggregation store contract, plus durability across store instances; subclasses pick the engine. */
abstract class JdbcAggregationStoreTest extends AggregationStoreContractTest {
    @RegisterExtension
    final DatabaseExtension db = DatabaseExtension.of(kind());

    abstract TestDatabase.Kind kind();

    @Override
    protected AggregationStore createStore() {
        JdbcSchema.of(db.database().dataSource()).migrate();
        return JdbcAggregationStore.create(db.database().dataSource());
    }

    @Test
    void aGroupKeyLongerThanItsColumnIsRefusedRatherThanSavedUnderAPrefix() {
        // Both databases cut a value cast to VARCHAR(500) to its first 500 characters: the group was saved
        // under the prefix, so save returned true but find by its key found nothing (and another key sharing
        // the prefix was taken for the same group).
        Instant t0 = Instant.parse("2026-01-01T00:00:00Z");
        AggregationStore store = createStore();
        String longest = "k".repeat(500);
        assertTrue(store.save(AggregationGroup.open("agg", longest, t0, t0.plusSeconds(30)).withVersion(1)));
        assertTrue(store.find("agg", longest).isPresent());
        assertThrows(ConfigurationException.class,
                () -> store.save(AggregationGroup.open("agg", longest + "-2", t0, t0.plusSeconds(30)).withVersion(1)));
    }

    @Test
    void anAggregatorNameOrGroupKeyWithANulCharacterIsRefusedBeforeAnySqlOnBothDatabases() {
        // PostgreSQL's text types cannot hold U+0000 (SQL state 22021) and H2's can: a group key with one (taken from
        // a message) was stored on H2 and failed in SQL on PostgreSQL, in find as in save. Both now refuse it with a
        // ConfigurationException before any SQL (the aggregator's delivery is then dead-lettered, not retried).
        Instant t0 = Instant.parse("2026-01-01T00:00:00Z");
        AggregationStore store = createStore();
        for (String[] nameAndKey : new String[][] {{"agg", "k\0-1"}, {"a\0g", "k-1"}}) {
            assertThrows(ConfigurationException.class, () -> store.find(nameAndKey[0], nameAndKey[1]));
            assertThrows(ConfigurationException.class, () -> store.save(
                    AggregationGroup.open(nameAndKey[0], nameAndKey[1], t0, t0.plusSeconds(30)).withVersion(1)));
        }
        assertEquals(0, db.database().queryLong("SELECT COUNT(*) FROM ss_aggregation_group"));
    }

    @Test
    void withDeadlinesAndDeleteRefuseANulCharacterAsFindAndSaveDoOnBothDatabases() {
        // find and save refused an aggregator name or group key with U+0000 before any SQL, but withDeadlines (which
        // an aggregator's build runs) and delete sent it: a JdbcException on PostgreSQL (22021), nothing found on H2.
        AggregationStore store = createStore();
        assertThrows(ConfigurationException.class, () -> store.withDeadlines("a\0g"));
        assertThrows(ConfigurationException.class, () -> store.delete("a\0g", "k-1", 1));
        assertThrows(ConfigurationException.class, () -> store.delete("agg", "k\0-1", 1));
    }

    record Scanned(String parcel, Instant at) {
    }


    @Test
    void groupKeysDifferingOnlyInALoneSurrogateAreRefusedBeforeAnySqlOnBothDatabasesNotMadeOneGroupOnPostgres() {
        // PostgreSQL's driver writes a lone surrogate (a UTF-16 surrogate that is not half of a pair) as '?', and H2
        // keeps it: on PostgreSQL the groups "g-\uD800" and "g-\uDC00" (keys taken from messages) were one row "g-?",
        // the second's save refused as a concurrent one and its find answered with the first. Both now refuse such a
        // name or key before any SQL, as they refuse U+0000 (the aggregator's delivery is then dead-lettered).
        Instant t0 = Instant.parse("2026-01-01T00:00:00Z");
        AggregationStore store = createStore();
        assertTrue(store.save(AggregationGroup.open("agg", "g-?", t0, t0.plusSeconds(30)).withVersion(1)));
        for (String[] nameAndKey : new String[][] {{"agg", "g-\uD800"}, {"agg", "g-\uDC00"}, {"a\uD800g", "g-1"}}) {
            ConfigurationException e = assertThrows(ConfigurationException.class,
                    () -> store.find(nameAndKey[0], nameAndKey[1]));
            assertTrue(e.getMessage().contains("lone surrogate"), e.getMessage());
            assertThrows(ConfigurationException.class, () -> store.save(
                    AggregationGroup.open(nameAndKey[0], nameAndKey[1], t0, t0.plusSeconds(30)).withVersion(1)));
            assertThrows(ConfigurationException.class, () -> store.delete(nameAndKey[0], nameAndKey[1], 1));
        }
        assertThrows(ConfigurationException.class, () -> store.withDeadlines("a\uDC00g"));
        assertEquals(1, db.database().queryLong("SELECT COUNT(*) FROM ss_aggregation_group"));
        assertTrue(store.find("agg", "g-?").isPresent(), "the stored group is untouched");
    }

    @Test
    void aPartWhoseHeaderNameHoldsALoneSurrogateIsRefusedBeforeAnySqlNotSavedAsAGroupNoReadCanParse() {
        // Parts are stored as JSON bytes, in which Jackson escapes every surrogate (\uD800): it reads such an escape
        // back in a value but refuses it in a field name ("Broken surrogate pair in field name"). A part whose header
        // name held a lone surrogate was saved, and every later read of its group failed (find for its next part,
        // withDeadlines at the aggregator's build: the aggregator could not be built again), on both databases. Such
        // a part is now refused before any SQL (the aggregator's delivery is dead-lettered); a value with one and a
        // well-formed pair in a name are kept.
        Instant t0 = Instant.parse("2026-01-01T00:00:00Z");
        AggregationStore store = createStore();
        AggregationGroup open = AggregationGroup.open("agg", "g-1", t0, t0.plusSeconds(30));
        for (String name : List.of("x-\uD800", "\uDC00")) {
            AggregationGroup bad = open.withPart(new AggregatedPart("m-1", "scans", "scanned", 1, Map.of(name, "v"),
                    new byte[]{1}, t0)).withVersion(1);
            ConfigurationException e = assertThrows(ConfigurationException.class, () -> store.save(bad));
            assertTrue(e.getMessage().startsWith("header name ") && e.getMessage().contains("lone surrogate"),
                    e.getMessage());
        }
        assertEquals(0, db.database().queryLong("SELECT COUNT(*) FROM ss_aggregation_group"));

        Map<String, String> kept = Map.of("x-\uD83D\uDE00", "v-\uD800", "n", "a\0b");
        assertTrue(store.save(open.withPart(new AggregatedPart("m-2", "scans", "scanned", 1, kept, new byte[]{2}, t0))
                .withVersion(1)));
        assertEquals(kept, store.find("agg", "g-1").orElseThrow().parts().get(0).headers());
        assertEquals(1, store.withDeadlines("agg").size());
    }

    @Test
    void aGroupWhosePartsNoReadCanParseIsSkippedByWithDeadlinesSoTheAggregatorBuildsAndReArmsTheOtherGroups()
            throws Exception {
        // A group whose parts do not parse (stored by an earlier version with a lone surrogate in a header name, or
        // corrupted by hand) failed withDeadlines, which an aggregator's build runs: the aggregator could not be built,
        // so no group's timeout was re-armed. It is now logged and skipped; the others are re-armed and time out.
        var scheduler = new io.streamsaga.inmemory.VirtualScheduler();
        var transport = io.streamsaga.inmemory.InMemoryTransport.builder()
                .deliveryMode(io.streamsaga.inmemory.DeliveryMode.MANUAL).build();
        var bus = io.streamsaga.bus.EventBus.builder(transport).scheduler(scheduler).types(io.streamsaga.codec.TypeRegistry
                .builder().register("parcel-scanned", 1, Scanned.class).build()).build();
        try (transport; bus) {
            AggregationStore store = createStore();
            var before = io.streamsaga.aggregator.EventAggregator.builder(bus, store).name("scans")
                    .correlateByField("parcel").completeOnSize(3)
                    .timeout(java.time.Duration.ofMinutes(5), io.streamsaga.aggregator.TimeoutPolicy.RELEASE_PARTIAL)
                    .onRelease(aggregate -> { }).build();
            before.subscribe("aggregator", "parcel-scanned");
            for (String parcel : List.of("p-1", "p-2", "p-3")) {
                bus.publish("parcel-scanned", parcel, new Scanned(parcel, Instant.parse("2026-03-01T10:00:00Z")))
                        .toCompletableFuture().join();
            }
            transport.drainAll();
            before.close();
            // as an earlier version stored a part whose header name held a lone surrogate
            corruptParts("scans", "p-2", parts -> parts.replaceFirst("\"headers\":\\{", "\"headers\":{\"x-\\\\uD800\":\"v\","));
            corruptParts("scans", "p-3", parts -> parts.substring(0, parts.length() / 2));

            assertEquals(List.of("p-1"), store.withDeadlines("scans").stream().map(AggregationGroup::key).toList());
            List<String> released = new java.util.concurrent.CopyOnWriteArrayList<>();
            var after = io.streamsaga.aggregator.EventAggregator.builder(bus, store).name("scans")
                    .correlateByField("parcel").completeOnSize(3)
                    .timeout(java.time.Duration.ofMinutes(5), io.streamsaga.aggregator.TimeoutPolicy.RELEASE_PARTIAL)
                    .onRelease(aggregate -> released.add(aggregate.key())).build();
            scheduler.advance(java.time.Duration.ofMinutes(5));
            assertEquals(List.of("p-1"), released, "the readable group's deadline was re-armed and fired");
            // the unreadable groups stay for an operator; asked for by key, they still fail clearly
            assertEquals(3, db.database().queryLong("SELECT COUNT(*) FROM ss_aggregation_group"));
            io.streamsaga.jdbc.JdbcException e = assertThrows(io.streamsaga.jdbc.JdbcException.class,
                    () -> store.find("scans", "p-2"));
            assertTrue(e.getMessage().contains("unreadable parts of aggregation group 'p-2'"), e.getMessage());
            after.close();
        }
    }

    @Test
    void aGroupCompleteOnItsFirstPartAtAClockWithNanosecondsIsReleasedOnceAndRecordedCompleted() {
        // The aggregator saves a group complete on its first part COMPLETED from the group it opened at the clock's
        // instant; created_at keeps microseconds, and H2 compared that instant's nanoseconds with it unrounded: the
        // COMPLETED save was refused ("outlived its lease"), the group stayed RELEASING, and once its lease passed the
        // group was taken over and released a second time.
        var scheduler = new io.streamsaga.inmemory.VirtualScheduler(Instant.parse("2026-03-01T10:00:00.123456789Z"));
        var transport = io.streamsaga.inmemory.InMemoryTransport.builder()
                .deliveryMode(io.streamsaga.inmemory.DeliveryMode.MANUAL).build();
        var bus = io.streamsaga.bus.EventBus.builder(transport).scheduler(scheduler).types(io.streamsaga.codec.TypeRegistry
                .builder().register("parcel-scanned", 1, Scanned.class).build()).build();
        try (transport; bus) {
            AggregationStore store = createStore();
            List<String> released = new java.util.concurrent.CopyOnWriteArrayList<>();
            var aggregator = io.streamsaga.aggregator.EventAggregator.builder(bus, store).name("scans")
                    .correlateByField("parcel").completeOnSize(1).releaseLease(java.time.Duration.ofMinutes(1))
                    .keepClosed(java.time.Duration.ofHours(1)).onRelease(aggregate -> released.add(aggregate.key())).build();
            aggregator.subscribe("aggregator", "parcel-scanned");
            bus.publish("parcel-scanned", "p-1", new Scanned("p-1", Instant.parse("2026-03-01T10:00:00Z")))
                    .toCompletableFuture().join();
            transport.drainAll();
            assertEquals(io.streamsaga.aggregator.GroupState.COMPLETED,
                    store.find("scans", "p-1").orElseThrow().state());
            scheduler.advance(java.time.Duration.ofMinutes(2));
            transport.drainAll();
            assertEquals(List.of("p-1"), released, "released once");
            aggregator.close();
        }
    }

    @Test
    void aPartForAGroupNoReadCanParseIsDeadLetteredAtItsFirstAttemptAndTheGroupIsLeftUntouched() throws Exception {
        // The find of such a group fails with a JdbcException that is not retriable (a row no read can parse, not a
        // transient database failure): the bus does not retry the part, it dead-letters it at once (kept there for a
        // replay once the row is repaired or deleted), and nothing is written over the stored group.
        var scheduler = new io.streamsaga.inmemory.VirtualScheduler();
        var transport = io.streamsaga.inmemory.InMemoryTransport.builder()
                .deliveryMode(io.streamsaga.inmemory.DeliveryMode.MANUAL).build();
        var bus = io.streamsaga.bus.EventBus.builder(transport).scheduler(scheduler).types(io.streamsaga.codec.TypeRegistry
                .builder().register("parcel-scanned", 1, Scanned.class).build()).build();
        try (transport; bus) {
            AggregationStore store = createStore();
            var aggregator = io.streamsaga.aggregator.EventAggregator.builder(bus, store).name("scans")
                    .correlateByField("parcel").completeOnSize(3).onRelease(aggregate -> { }).build();
            aggregator.subscribe("aggregator", "parcel-scanned");
            bus.publish("parcel-scanned", "p-1", new Scanned("p-1", Instant.EPOCH)).toCompletableFuture().join();
            transport.drainAll();
            corruptParts("scans", "p-1", parts -> parts.substring(0, parts.length() / 2));
            String stored = partsOf("scans", "p-1");

            bus.publish("parcel-scanned", "p-1", new Scanned("p-1", Instant.EPOCH.plusSeconds(1))).toCompletableFuture()
                    .join();
            transport.drainAll();
            scheduler.advance(java.time.Duration.ofHours(1)); // any retry the bus scheduled

            var dead = transport.messages("parcel-scanned.DLT");
            assertEquals(1, dead.size());
            assertEquals("1", dead.get(0).header(io.streamsaga.message.MessageHeaders.DLT_ATTEMPTS).orElseThrow());
            assertEquals(stored, partsOf("scans", "p-1"), "the unreadable group is left as it was");
            aggregator.close();
        }
    }

    /** The stored parts of a group, each part's row in order (schema version 8). */
    private String partsOf(String aggregator, String key) throws java.sql.SQLException {
        try (java.sql.Connection c = db.database().dataSource().getConnection();
             java.sql.PreparedStatement ps = c.prepareStatement("SELECT part FROM ss_aggregation_part"
                     + " WHERE aggregator = ? AND group_key = ? ORDER BY seq")) {
            ps.setString(1, aggregator);
            ps.setString(2, key);
            StringBuilder parts = new StringBuilder();
            try (java.sql.ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    parts.append(new String(rs.getBytes(1), java.nio.charset.StandardCharsets.UTF_8)).append('\n');
                }
            }
            return parts.toString();
        }
    }

    /** Rewrites the first stored part of a group, by SQL, past the store's own checks. */
    private void corruptParts(String aggregator, String key, java.util.function.UnaryOperator<String> change)
            throws java.sql.SQLException {
        try (java.sql.Connection c = db.database().dataSource().getConnection()) {
            byte[] parts;
            try (java.sql.PreparedStatement ps = c.prepareStatement("SELECT part FROM ss_aggregation_part"
                    + " WHERE aggregator = ? AND group_key = ? AND seq = 0")) {
                ps.setString(1, aggregator);
                ps.setString(2, key);
                try (java.sql.ResultSet rs = ps.executeQuery()) {
                    assertTrue(rs.next());
                    parts = rs.getBytes(1);
                }
            }
            String changed = change.apply(new String(parts, java.nio.charset.StandardCharsets.UTF_8));
            assertTrue(!changed.equals(new String(parts, java.nio.charset.StandardCharsets.UTF_8)), changed);
            try (java.sql.PreparedStatement ps = c.prepareStatement("UPDATE ss_aggregation_part SET part = ?"
                    + " WHERE aggregator = ? AND group_key = ? AND seq = 0")) {
                ps.setBytes(1, changed.getBytes(java.nio.charset.StandardCharsets.UTF_8));
                ps.setString(2, aggregator);
                ps.setString(3, key);
                assertEquals(1, ps.executeUpdate());
            }
        }
    }

    @Test
    void aGroupRepairedByDeletingAnUnreadablePartRowTakesNewPartsAgain() throws Exception {
        // The docs have an unreadable group repaired through its rows of ss_aggregation_part; deleting the row of the
        // part that does not parse left a gap in the numbers (0, 2), and the next part was numbered by the group's
        // size (2): its insert hit the primary key, taken for a lost race, so every part for the group lost all its
        // races (contended, then dead-lettered) although no other writer was there. A part is numbered after the
        // highest number stored.
        Instant t0 = Instant.parse("2026-01-01T00:00:00Z");
        AggregationStore store = createStore();
        AggregationGroup group = AggregationGroup.open("agg", "g-1", t0, null);
        for (int i = 0; i < 3; i++) {
            group = group.withPart(new AggregatedPart("m" + i, "t", "t", 1, Map.of(), new byte[] {(byte) i}, t0))
                    .withVersion(group.version() + 1);
            assertTrue(store.append(group));
        }
        try (java.sql.Connection c = db.database().dataSource().getConnection();
             java.sql.PreparedStatement ps = c.prepareStatement("DELETE FROM ss_aggregation_part"
                     + " WHERE aggregator = 'agg' AND group_key = 'g-1' AND seq = 1")) {
            assertEquals(1, ps.executeUpdate());
        }
        AggregationGroup repaired = store.find("agg", "g-1").orElseThrow();
        assertEquals(List.of("m0", "m2"), repaired.parts().stream().map(AggregatedPart::messageId).toList());
        AggregationGroup more = repaired.withPart(new AggregatedPart("m3", "t", "t", 1, Map.of(), new byte[0], t0))
                .withVersion(repaired.version() + 1);
        assertTrue(store.append(more), "no other writer changed the group");
        AggregationGroup evenMore = more.withPart(new AggregatedPart("m4", "t", "t", 1, Map.of(), new byte[0], t0))
                .withVersion(more.version() + 1);
        assertTrue(store.save(evenMore), "a whole save adding a part");
        assertEquals(List.of("m0", "m2", "m3", "m4"),
                store.find("agg", "g-1").orElseThrow().parts().stream().map(AggregatedPart::messageId).toList());
    }

    @Test
    void addingAPartToAGroupWritesThatPartNotTheWholeGroup() throws Exception {
        // Each arriving part was saved with the whole group: its row's parts (one JSON document) rewritten, so the
        // n-th part of a group wrote n parts (a group of n parts O(n^2) bytes in all). A part is now appended: the
        // group's row (its version) and the part's own row, whatever the group's size.
        var written = new java.util.concurrent.atomic.AtomicLong();
        javax.sql.DataSource counting = countingWrites(db.database().dataSource(), written);
        JdbcSchema.of(db.database().dataSource()).migrate();
        AggregationStore store = JdbcAggregationStore.create(counting);
        var scheduler = new io.streamsaga.inmemory.VirtualScheduler();
        var transport = io.streamsaga.inmemory.InMemoryTransport.builder()
                .deliveryMode(io.streamsaga.inmemory.DeliveryMode.MANUAL).build();
        var bus = io.streamsaga.bus.EventBus.builder(transport).scheduler(scheduler).types(io.streamsaga.codec.TypeRegistry
                .builder().register("parcel-scanned", 1, Scanned.class).build()).build();
        try (transport; bus) {
            List<String> released = new java.util.concurrent.CopyOnWriteArrayList<>();
            var aggregator = io.streamsaga.aggregator.EventAggregator.builder(bus, store).name("scans")
                    .correlateByField("parcel").completeOnSize(60)
                    .timeout(java.time.Duration.ofMinutes(5), io.streamsaga.aggregator.TimeoutPolicy.RELEASE_PARTIAL)
                    .onRelease(aggregate -> released.add(aggregate.key() + ":" + aggregate.group().size())).build();
            aggregator.subscribe("aggregator", "parcel-scanned");
            List<Long> perPart = new java.util.ArrayList<>();
            for (int i = 0; i < 60; i++) {
                written.set(0);
                bus.publish("parcel-scanned", "p-1", new Scanned("p-1", Instant.parse("2026-03-01T10:00:00Z")
                        .plusSeconds(i))).toCompletableFuture().join();
                transport.drainAll();
                perPart.add(written.get());
            }
            assertEquals(List.of("p-1:60"), released);
            long second = perPart.get(1);
            long fiftieth = perPart.get(49);
            assertTrue(fiftieth <= second + 16, "bytes written for the 2nd part " + second + ", for the 50th " + fiftieth
                    + " (per part: " + perPart + ")");
            aggregator.close();
        }
    }

    /**
     * A data source adding to {@code written} the length of every string and byte array set on a statement that
     * writes (INSERT, UPDATE, MERGE).
     */
    private static javax.sql.DataSource countingWrites(javax.sql.DataSource target, java.util.concurrent.atomic.AtomicLong written) {
        return proxy(javax.sql.DataSource.class, target, (method, args, result) -> result instanceof java.sql.Connection c
                ? proxy(java.sql.Connection.class, c, (m, a, r) -> {
                    if (m.equals("prepareStatement") && r instanceof java.sql.PreparedStatement ps) {
                        String sql = ((String) a[0]).stripLeading().toUpperCase(java.util.Locale.ROOT);
                        boolean writes = sql.startsWith("INSERT") || sql.startsWith("UPDATE") || sql.startsWith("MERGE");
                        return proxy(java.sql.PreparedStatement.class, ps, (pm, pa, pr) -> {
                            if (writes && pa != null && pa.length == 2) {
                                if (pa[1] instanceof byte[] bytes) {
                                    written.addAndGet(bytes.length);
                                } else if (pa[1] instanceof String text) {
                                    written.addAndGet(text.length());
                                }
                            }
                            return pr;
                        });
                    }
                    return r;
                })
                : result);
    }

    private interface After {
        Object apply(String method, Object[] args, Object result);
    }

    private static <T> T proxy(Class<T> type, T target, After after) {
        return type.cast(java.lang.reflect.Proxy.newProxyInstance(type.getClassLoader(), new Class<?>[] {type},
                (p, method, args) -> {
                    Object result;
                    try {
                        result = method.invoke(target, args);
                    } catch (java.lang.reflect.InvocationTargetException e) {
                        throw e.getCause();
                    }
                    return after.apply(method.getName(), args, result);
                }));
    }

    @Test
    void eventsWithAnInstantAreAggregatedAndReleasedEqual() throws Exception {
        // the store keeps the parts as the bus codec encoded them (bytes); its own mapper never sees a payload
        var transport = io.streamsaga.inmemory.InMemoryTransport.builder()
                .deliveryMode(io.streamsaga.inmemory.DeliveryMode.MANUAL).build();
        var bus = io.streamsaga.bus.EventBus.builder(transport).types(io.streamsaga.codec.TypeRegistry.builder()
                .register("parcel-scanned", 1, Scanned.class).build()).build();
        try (transport; bus) {
            java.util.List<io.streamsaga.aggregator.Aggregate> released = new java.util.concurrent.CopyOnWriteArrayList<>();
            io.streamsaga.aggregator.EventAggregator.builder(bus, createStore()).name("scans").correlateByField("parcel").completeOnSize(2)
                    .onRelease(released::add).build().subscribe("aggregator", "parcel-scanned");
            Scanned first = new Scanned("p-1", Instant.parse("2026-03-01T10:15:30.123456Z"));
            Scanned second = new Scanned("p-1", Instant.parse("2026-03-01T11:00:00Z"));
            bus.publish("parcel-scanned", "p-1", first).toCompletableFuture().join();
            bus.publish("parcel-scanned", "p-1", second).toCompletableFuture().join();
            transport.drainAll();

            assertEquals(1, released.size());
            assertEquals(java.util.List.of(first, second), released.get(0).events(Scanned.class));
        }
    }

    @Test
    void aRestartedProcessFindsOpenGroupsAndTheirDeadlines() {
        Instant t0 = Instant.parse("2026-01-01T00:00:00Z");
        createStore().save(AggregationGroup.open("agg", "o-9", t0, t0.plusSeconds(30)).withVersion(1));

        AggregationStore afterRestart = JdbcAggregationStore.create(db.database().dataSource());
        assertEquals(1, afterRestart.withDeadlines("agg").size());
        assertEquals(t0.plusSeconds(30), afterRestart.find("agg", "o-9").orElseThrow().deadline());
        assertTrue(afterRestart.withDeadlines("other").isEmpty());
    }

    @Test
    void theCompletingPartRedeliveredWhileTheScheduledRetryReleasesTheGroupDoesNotReleaseItASecondTime() throws Exception {
        // as AggregatorReleaseFailureTest's case of the same name, over this store: the scheduled retry of a failed
        // release claims the group (RELEASING, its lease as deadline), so the redelivery met meanwhile is taken
        // without a release (the lease's end checks the group)
        var scheduler = new io.streamsaga.inmemory.VirtualScheduler();
        var transport = io.streamsaga.inmemory.InMemoryTransport.builder()
                .deliveryMode(io.streamsaga.inmemory.DeliveryMode.MANUAL).build();
        var bus = io.streamsaga.bus.EventBus.builder(transport).scheduler(scheduler).types(io.streamsaga.codec.TypeRegistry
                .builder().register("parcel-scanned", 1, Scanned.class).build()).build();
        try (transport; bus) {
            AggregationStore store = createStore();
            java.util.List<io.streamsaga.aggregator.Aggregate> released = new java.util.concurrent.CopyOnWriteArrayList<>();
            var failing = new java.util.concurrent.atomic.AtomicBoolean(true);
            var redelivered = new java.util.concurrent.atomic.AtomicReference<io.streamsaga.message.Message>();
            var refused = new java.util.concurrent.atomic.AtomicReference<Exception>();
            var self = new java.util.concurrent.atomic.AtomicReference<io.streamsaga.aggregator.EventAggregator>();
            var aggregator = io.streamsaga.aggregator.EventAggregator.builder(bus, store).name("scans")
                    .correlateByField("parcel").completeOnSize(2).onRelease(aggregate -> {
                        var part = redelivered.getAndSet(null);
                        if (part != null) {
                            try {
                                self.get().accept(part); // the bus redelivers the completing part meanwhile
                            } catch (Exception e) {
                                refused.set(e);
                            }
                        }
                        if (failing.get()) {
                            throw new IllegalStateException("downstream unavailable");
                        }
                        released.add(aggregate);
                    }).build();
            self.set(aggregator);
            bus.publish("parcel-scanned", "p-1", new Scanned("p-1", Instant.EPOCH)).toCompletableFuture().join();
            bus.publish("parcel-scanned", "p-1", new Scanned("p-1", Instant.EPOCH.plusSeconds(1))).toCompletableFuture().join();
            var parts = transport.messages("parcel-scanned");
            aggregator.accept(parts.get(0));
            assertThrows(IllegalStateException.class, () -> aggregator.accept(parts.get(1))); // reopened
            failing.set(false);
            redelivered.set(parts.get(1));

            scheduler.advance(java.time.Duration.ofSeconds(1)); // the scheduled retry of the release

            assertEquals(1, released.size(), "one release per group when nothing crashed");
            assertEquals(null, refused.get(), "the part is in the group: nothing for the bus to retry or dead-letter");
            scheduler.advance(java.time.Duration.ofMinutes(5)); // the lease's end: the release is recorded
            aggregator.accept(parts.get(1)); // arriving again: a duplicate
            assertEquals(1, released.size());
            assertEquals(io.streamsaga.aggregator.GroupState.COMPLETED, store.find("scans", "p-1").orElseThrow().state());
        }
    }

    @Test
    void aCompleteGroupWhoseReleaseFailedIsReleasedWholeAtItsTimeoutNotDeadLettered() throws Exception {
        // as AggregatorReleaseFailureTest's case of the same name, over this store: at the deadline, a reopened
        // group whose completion rule holds is released again whole, not closed by the timeout policy
        var scheduler = new io.streamsaga.inmemory.VirtualScheduler();
        var transport = io.streamsaga.inmemory.InMemoryTransport.builder()
                .deliveryMode(io.streamsaga.inmemory.DeliveryMode.MANUAL).build();
        var bus = io.streamsaga.bus.EventBus.builder(transport).scheduler(scheduler).types(io.streamsaga.codec.TypeRegistry
                .builder().register("parcel-scanned", 1, Scanned.class).build()).build();
        try (transport; bus) {
            AggregationStore store = createStore();
            java.util.List<io.streamsaga.aggregator.Aggregate> released = new java.util.concurrent.CopyOnWriteArrayList<>();
            var failing = new java.util.concurrent.atomic.AtomicBoolean(true);
            var aggregator = io.streamsaga.aggregator.EventAggregator.builder(bus, store).name("scans")
                    .correlateByField("parcel").completeOnSize(2)
                    .timeout(java.time.Duration.ofMinutes(5), io.streamsaga.aggregator.TimeoutPolicy.DEAD_LETTER)
                    .onRelease(aggregate -> {
                        if (failing.get()) {
                            throw new IllegalStateException("downstream unavailable");
                        }
                        released.add(aggregate);
                    }).build();
            bus.publish("parcel-scanned", "p-1", new Scanned("p-1", Instant.EPOCH)).toCompletableFuture().join();
            bus.publish("parcel-scanned", "p-1", new Scanned("p-1", Instant.EPOCH.plusSeconds(1))).toCompletableFuture().join();
            var parts = transport.messages("parcel-scanned");
            aggregator.accept(parts.get(0));
            assertThrows(IllegalStateException.class, () -> aggregator.accept(parts.get(1))); // its retries then ran out

            scheduler.advance(java.time.Duration.ofMinutes(5)); // the timeout, the downstream still down: retried
            assertEquals(io.streamsaga.aggregator.GroupState.OPEN, store.find("scans", "p-1").orElseThrow().state());
            failing.set(false);
            scheduler.advance(java.time.Duration.ofMinutes(5)); // the next retry

            assertEquals(1, released.size());
            assertEquals(false, released.get(0).partial(), "released whole: only its release had failed");
            assertEquals(2, released.get(0).group().size());
            assertEquals(io.streamsaga.aggregator.GroupState.COMPLETED, store.find("scans", "p-1").orElseThrow().state());
            assertEquals(0, transport.messages("parcel-scanned.DLT").size(), "a complete group is not dead-lettered");
            aggregator.close();
        }
    }

    @Test
    void aCompleteGroupWhoseReleaseKeepsFailingIsDeadLetteredWithTheReleasesErrorAfterKeepClosed() throws Exception {
        // as AggregatorReleaseFailureTest's case of the same name, over this store: the bound is read from the
        // stored parts (the completing part's arrival), so it holds across instances and restarts
        var scheduler = new io.streamsaga.inmemory.VirtualScheduler();
        var transport = io.streamsaga.inmemory.InMemoryTransport.builder()
                .deliveryMode(io.streamsaga.inmemory.DeliveryMode.MANUAL).build();
        var bus = io.streamsaga.bus.EventBus.builder(transport).scheduler(scheduler).types(io.streamsaga.codec.TypeRegistry
                .builder().register("parcel-scanned", 1, Scanned.class).build()).build();
        try (transport; bus) {
            AggregationStore store = createStore();
            var aggregator = io.streamsaga.aggregator.EventAggregator.builder(bus, store).name("scans")
                    .correlateByField("parcel").completeOnSize(2)
                    .timeout(java.time.Duration.ofMinutes(5), io.streamsaga.aggregator.TimeoutPolicy.DEAD_LETTER)
                    .keepClosed(java.time.Duration.ofHours(1))
                    .onRelease(aggregate -> {
                        throw new IllegalStateException("downstream rejects it");
                    }).build();
            bus.publish("parcel-scanned", "p-1", new Scanned("p-1", Instant.EPOCH)).toCompletableFuture().join();
            bus.publish("parcel-scanned", "p-1", new Scanned("p-1", Instant.EPOCH.plusSeconds(1))).toCompletableFuture().join();
            var parts = transport.messages("parcel-scanned");
            aggregator.accept(parts.get(0));
            assertThrows(IllegalStateException.class, () -> aggregator.accept(parts.get(1))); // its retries then ran out

            scheduler.advance(java.time.Duration.ofMinutes(55)); // retried every timeout, still failing
            assertEquals(io.streamsaga.aggregator.GroupState.OPEN, store.find("scans", "p-1").orElseThrow().state());
            scheduler.advance(java.time.Duration.ofMinutes(10)); // keepClosed since it completed: given up

            var dead = transport.messages("parcel-scanned.DLT");
            assertEquals(2, dead.size(), "its parts dead-lettered, nothing lost");
            assertEquals("aggregation-release-failed", dead.get(0).headers().get(io.streamsaga.message.MessageHeaders.DLT_REASON));
            assertTrue(dead.get(0).headers().get(io.streamsaga.message.MessageHeaders.DLT_ERROR_MESSAGE)
                    .contains("downstream rejects it"));
            assertEquals(io.streamsaga.aggregator.GroupState.TIMED_OUT_DEAD_LETTERED,
                    store.find("scans", "p-1").orElseThrow().state());
            aggregator.close();
        }
    }
}
