package io.streamsaga.jdbc;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.streamsaga.aggregator.Aggregate;
import io.streamsaga.aggregator.AggregatedPart;
import io.streamsaga.aggregator.AggregationGroup;
import io.streamsaga.aggregator.EventAggregator;
import io.streamsaga.aggregator.GroupState;
import io.streamsaga.aggregator.TimeoutPolicy;
import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.jdbc.aggregator.JdbcAggregationStore;
import io.streamsaga.jdbc.testing.DatabaseExtension;
import io.streamsaga.jdbc.testing.TestDatabase;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Timestamp;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * Schema version 8 (the parts of an aggregation group in rows of their own) over a database at version 7 holding
 * groups whose parts are one JSON document in their row: those groups are found whole after the upgrade, take new
 * parts (appended as rows, after their stored parts), time out and are released with all their parts in order, a
 * redelivered stored part not added twice; subclasses pick the engine.
 */
abstract class SchemaV8MigrationTest {
    private static final Instant T0 = Instant.parse("2026-01-01T00:00:00Z");
    private final ObjectMapper json = new ObjectMapper();

    record Scanned(String parcel, int n) {
    }

    @RegisterExtension
    final DatabaseExtension db = DatabaseExtension.of(kind());

    abstract TestDatabase.Kind kind();

    @Test
    void groupsStoredBeforeVersion8AreFoundWholeTakeNewPartsAfterTheirOwnAndAreReleasedInOrder() throws Exception {
        JdbcSchema schema = JdbcSchema.of(db.database().dataSource());
        assertEquals(7, schema.migrate(7));
        // as the library of version 7 wrote them: the parts one JSON array in the group's row
        insertVersion7Group("p-1", 2, "OPEN", T0.plusSeconds(3600), "m-1", "m-2");
        insertVersion7Group("p-2", 1, "OPEN", T0.plusSeconds(300), "m-3", "m-4");

        assertEquals(JdbcSchema.latestVersion(), schema.migrate());
        JdbcAggregationStore store = JdbcAggregationStore.create(db.database().dataSource());
        AggregationGroup kept = store.find("scans", "p-1").orElseThrow();
        assertEquals(List.of("m-1", "m-2"), ids(kept));
        assertEquals(2, kept.version());
        assertArrayEquals(payload("p-1", 2), kept.parts().get(1).payload());
        assertEquals("p-1", kept.parts().get(1).key());

        VirtualScheduler scheduler = new VirtualScheduler(T0);
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        EventBus bus = EventBus.builder(transport).scheduler(scheduler)
                .types(TypeRegistry.builder().register("parcel-scanned", 1, Scanned.class).build()).build();
        try (transport; bus) {
            List<Aggregate> released = new CopyOnWriteArrayList<>();
            EventAggregator aggregator = EventAggregator.builder(bus, store).name("scans").correlateByField("parcel")
                    .completeOnSize(4).timeout(Duration.ofMinutes(5), TimeoutPolicy.RELEASE_PARTIAL)
                    .onRelease(released::add).build(); // re-arms both stored deadlines
            aggregator.subscribe("aggregator", "parcel-scanned");
            bus.publish("parcel-scanned", "p-1", new Scanned("p-1", 3)).toCompletableFuture().join();
            transport.drainAll();
            assertEquals(List.of("m-1", "m-2", transport.messages("parcel-scanned").get(0).id()),
                    ids(store.find("scans", "p-1").orElseThrow()), "appended after the parts stored before version 8");
            bus.publish("parcel-scanned", "p-1", new Scanned("p-1", 4)).toCompletableFuture().join();
            transport.drainAll();
            assertEquals(1, released.size());
            assertEquals(List.of(1, 2, 3, 4), released.get(0).events(Scanned.class).stream().map(Scanned::n).toList());
            AggregationGroup completed = store.find("scans", "p-1").orElseThrow();
            assertEquals(GroupState.COMPLETED, completed.state());
            assertEquals(4, completed.size());
            assertEquals(4, partRows("p-1"), "moved to rows by its first write after the upgrade");
            // a node of version 7 reads the parts column only: it must not take it for the group's (fewer) parts
            assertFalse(json.readTree(partsColumn("p-1")).isArray(),
                    "a node of an earlier version finds the group unreadable, not without its rows");

            // a part stored before version 8 redelivered is not added twice; the group times out with its parts
            AggregatedPart stored = store.find("scans", "p-2").orElseThrow().parts().get(0);
            aggregator.accept(stored.toMessage().withTopic("parcel-scanned"));
            scheduler.advance(Duration.ofMinutes(5));
            assertEquals(2, released.size());
            assertEquals(List.of("m-3", "m-4"), ids(released.get(1).group()));
            assertEquals(GroupState.TIMED_OUT_RELEASED, store.find("scans", "p-2").orElseThrow().state());
            aggregator.close();
        }
    }

    private static List<String> ids(AggregationGroup group) {
        return group.parts().stream().map(AggregatedPart::messageId).toList();
    }

    private static byte[] payload(String parcel, int n) {
        return ("{\"parcel\":\"" + parcel + "\",\"n\":" + n + "}").getBytes(StandardCharsets.UTF_8);
    }

    private void insertVersion7Group(String key, long version, String state, Instant deadline, String... messageIds)
            throws Exception {
        ArrayNode parts = json.createArrayNode();
        int n = 0;
        for (String id : messageIds) {
            n++;
            ObjectNode part = parts.addObject();
            part.put("messageId", id);
            part.put("topic", "parcel-scanned");
            part.put("type", "parcel-scanned");
            part.put("version", 1);
            part.putObject("headers").put("correlation-id", id);
            part.put("payload", payload(key, n));
            part.put("receivedAt", T0.toString());
            part.put("key", key);
        }
        try (Connection c = db.database().dataSource().getConnection();
             PreparedStatement ps = c.prepareStatement("INSERT INTO ss_aggregation_group (aggregator, group_key, version,"
                     + " state, created_at, deadline, parts) VALUES ('scans', ?, ?, ?, ?, ?, ?)")) {
            ps.setString(1, key);
            ps.setLong(2, version);
            ps.setString(3, state);
            ps.setTimestamp(4, Timestamp.from(T0));
            ps.setTimestamp(5, Timestamp.from(deadline));
            ps.setBytes(6, json.writeValueAsBytes(parts));
            ps.executeUpdate();
        }
    }

    private long partRows(String key) {
        return db.database().queryLong("SELECT COUNT(*) FROM ss_aggregation_part WHERE group_key = '" + key + "'");
    }

    private byte[] partsColumn(String key) throws Exception {
        try (Connection c = db.database().dataSource().getConnection();
             PreparedStatement ps = c.prepareStatement("SELECT parts FROM ss_aggregation_group WHERE group_key = ?")) {
            ps.setString(1, key);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getBytes(1);
            }
        }
    }
}
