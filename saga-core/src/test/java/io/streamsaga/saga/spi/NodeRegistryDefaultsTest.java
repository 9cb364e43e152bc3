package io.streamsaga.saga.spi;

import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A {@link NodeRegistry} that implements only heartbeats (written before nodes advertised their definitions) keeps
 * working: the three-argument heartbeat writes the heartbeat, and {@link NodeRegistry#nodes()} advertises nothing for
 * any node, which the start guard takes as unknown (docs/sagas.md, "Rolling deploys").
 */
class NodeRegistryDefaultsTest {
    private static final Instant T0 = Instant.parse("2026-01-01T00:00:00Z");

    /** Heartbeats only, as a registry written against the first NodeRegistry. */
    private static final class HeartbeatsOnly implements NodeRegistry {
        private final Map<String, Instant> heartbeats = new HashMap<>();

        @Override
        public void heartbeat(String nodeId, Instant at) {
            heartbeats.put(nodeId, at);
        }

        @Override
        public Map<String, Instant> heartbeats() {
            return Map.copyOf(heartbeats);
        }

        @Override
        public void remove(String nodeId) {
            heartbeats.remove(nodeId);
        }

        @Override
        public boolean remove(String nodeId, Instant at) {
            return heartbeats.remove(nodeId, at);
        }
    }

    @Test
    void aRegistryThatCannotKeepWhatNodesAdvertiseRecordsTheirHeartbeatsAndAdvertisesNothing() {
        NodeRegistry registry = new HeartbeatsOnly();
        registry.heartbeat("node-a", T0, Map.of("pay-saga", Set.of(1, 2)));

        assertEquals(Map.of("node-a", T0), registry.heartbeats());
        assertEquals(Map.of("node-a", new NodeRegistry.NodeHeartbeat(T0, null)), registry.nodes());
    }
}
