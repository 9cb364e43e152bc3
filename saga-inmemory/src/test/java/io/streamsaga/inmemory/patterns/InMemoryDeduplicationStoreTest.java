package io.streamsaga.inmemory.patterns;

import io.streamsaga.idempotency.spi.DeduplicationStore;
import io.streamsaga.idempotency.spi.DeduplicationStoreContractTest;
import io.streamsaga.metrics.MetricsRecorder;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;

class InMemoryDeduplicationStoreTest extends DeduplicationStoreContractTest {

    @Override
    protected DeduplicationStore createStore(Duration window, long maxEntries) {
        return InMemoryDeduplicationStore.builder().window(window).maxEntries(maxEntries).build();
    }

    @Test
    void evictionsAreCountedByReason() {
        List<Map<String, String>> evictions = new CopyOnWriteArrayList<>();
        MetricsRecorder metrics = new MetricsRecorder() {
            @Override
            public void increment(String name, Map<String, String> tags) {
                if (name.equals(InMemoryDeduplicationStore.EVICTIONS_METRIC)) {
                    evictions.add(tags);
                }
            }
        };
        InMemoryDeduplicationStore store = InMemoryDeduplicationStore.builder().name("orders")
                .window(Duration.ofMinutes(1)).maxEntries(2).metrics(metrics).build();
        for (int i = 0; i < 3; i++) {
            store.tryClaim("k" + i, "a", T0, Duration.ofSeconds(5));
            store.complete("k" + i, "a", T0);
        }
        assertEquals(List.of(Map.of("store", "orders", "reason", "capacity")), evictions);
        store.isDone("k2", T0.plus(Duration.ofMinutes(2)));
        assertEquals(3, evictions.size());
        assertEquals("expired", evictions.get(2).get("reason"));
        assertEquals(0, store.size());
    }
}
