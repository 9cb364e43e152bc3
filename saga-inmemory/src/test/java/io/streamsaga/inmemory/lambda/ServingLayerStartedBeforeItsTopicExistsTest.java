package io.streamsaga.inmemory.lambda;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.lambda.ServingLayer;
import org.junit.jupiter.api.Test;

import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;


/**
 * {@link ServingLayer#start()} takes a real-time group that never read the topic, asking the transport which groups
 * subscribed to it; the transport's contract includes every group with a subscription open through it. The in-memory
 * transport listed a group only once it had a position on one of the topic's partitions, which a group subscribed
 * before the topic existed does not have: a second layer of the same name started then took the first one's open group,
 * and the two split the topic's partitions between them.
 */
class ServingLayerStartedBeforeItsTopicExistsTest {
    record Sale(String day, long amount) {
    }

    @Test
    void aLayerStartedBesideAnOpenOneOfTheSameNameBeforeTheTopicExistsReadsTheWholeTopic() {
        try (InMemoryTransport transport = InMemoryTransport.builder().partitions(3).deliveryMode(DeliveryMode.MANUAL).build();
             EventBus bus = EventBus.builder(transport).types(TypeRegistry.builder().register("sale", 1, Sale.class).build())
                     .scheduler(new VirtualScheduler()).build();
             ServingLayer<Sale, Long> first = layer(bus);
             ServingLayer<Sale, Long> second = layer(bus)) {
            for (int i = 0; i < 12; i++) {
                bus.publish("sales", "day-" + i, new Sale("day-" + i, 1)).toCompletableFuture().join();
            }
            transport.drainAll();
            Map<Integer, Long> end = new TreeMap<>(transport.endOffsets("sales"));
            assertEquals(new ServingLayer.Answer<>(12L, end), first.answer());
            assertEquals(new ServingLayer.Answer<>(12L, end), second.answer());
            assertEquals(Set.of("sales.realtime", "sales.realtime-2"), transport.consumerGroups("sales"));
        }
    }

    private static ServingLayer<Sale, Long> layer(EventBus bus) {
        return ServingLayer.builder(bus, "sales", "sales", Sale.class)
                .view(() -> 0L, (count, sale) -> count + 1)
                .merge(Long::sum)
                .build().start();
    }
}
