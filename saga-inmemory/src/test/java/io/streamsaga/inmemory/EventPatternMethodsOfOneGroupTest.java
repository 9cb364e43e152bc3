package io.streamsaga.inmemory;

import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.EventPattern;
import io.streamsaga.message.Message;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link EventBus#register} subscribes each {@code @EventPattern} method of an object under the one group it is given,
 * and the members of one group share its messages (the transport contract): two methods whose topics overlap would
 * each get only some of the messages of those topics, so such an object is refused.
 */
class EventPatternMethodsOfOneGroupTest {
    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final EventBus bus = EventBus.builder(transport).scheduler(new VirtualScheduler()).build();

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    /** An inventory service that reserves stock for each order and keeps an audit of every order event. */
    public static final class InventoryWithAudit {
        final List<String> log = new CopyOnWriteArrayList<>();

        @EventPattern("order-created")
        public void reserve(Message order) {
            log.add("reserve " + order.key());
        }

        @EventPattern("order-*")
        public void audit(Message event) {
            log.add("audit " + event.key());
        }
    }

    /** Two wildcards that both match order-created. */
    public static final class TwoWildcards {
        @EventPattern("order-*")
        public void orders(Message event) {
        }

        @EventPattern("*-created")
        public void creations(Message event) {
        }
    }

    /** Methods on topics no other method of the object takes, wildcards included: each gets every message of its own. */
    public static final class Disjoint {
        final List<String> log = new CopyOnWriteArrayList<>();

        @EventPattern("order-created")
        public void created(Message event) {
            log.add("created " + event.key());
        }

        @EventPattern("order-cancelled")
        public void cancelled(Message event) {
            log.add("cancelled " + event.key());
        }

        @EventPattern("payment-*")
        public void payments(Message event) {
            log.add("payment " + event.key());
        }

        @EventPattern("inventory-*")
        public void inventory(Message event) {
            log.add("inventory " + event.key());
        }
    }

    private void publish(String topic, int count) {
        for (int i = 0; i < count; i++) {
            bus.publish(Message.builder(topic).key("o-" + i).type(topic).payload(Map.of()).build());
        }
    }

    @Test
    void twoMethodsOfOneObjectWhoseTopicsOverlapAreRefusedAsTheirGroupWouldShareEachMessageBetweenThem() {
        InventoryWithAudit service = new InventoryWithAudit();

        ConfigurationException refused = assertThrows(ConfigurationException.class, () -> bus.register("inventory", service));
        assertTrue(refused.getMessage().contains("reserve") && refused.getMessage().contains("audit")
                && refused.getMessage().contains("'inventory'"), refused.getMessage());
        assertThrows(ConfigurationException.class, () -> bus.register("inventory", new TwoWildcards()));

        publish("order-created", 8);
        transport.drainAll();
        assertEquals(List.of(), service.log, "nothing subscribed");
        // before, each order went to one of the two methods only: reserve o-1, o-3..., audit o-0, o-2...
    }

    @Test
    void methodsOfOneObjectOnTopicsNoOtherMethodTakesEachGetEveryMessageOfTheirOwn() {
        Disjoint service = new Disjoint();
        bus.register("inventory", service);

        publish("order-created", 4);
        publish("order-cancelled", 4);
        publish("payment-failed", 4);
        publish("inventory-reserved", 4);
        transport.drainAll();

        assertEquals(16, service.log.size(), service.log.toString());
    }

    /** A service written against a generic handler interface of the application's. */
    public interface Handles<T> {
        void on(T event);
    }

    /** Its one annotated method overrides the interface's: javac adds a bridge on(Object) carrying the annotation. */
    public static final class GenericService implements Handles<Message> {
        final List<String> log = new CopyOnWriteArrayList<>();

        @Override
        @EventPattern("order-created")
        public void on(Message event) {
            log.add(event.key());
        }
    }

    @Test
    void aMethodImplementingAGenericInterfaceIsSubscribedOnceNotAlsoAsItsCompilersBridge() {
        GenericService service = new GenericService();

        assertEquals(1, bus.register("inventory", service).size());
        publish("order-created", 4);
        transport.drainAll();

        assertEquals(List.of("o-0", "o-1", "o-2", "o-3"), service.log.stream().sorted().toList(), "each order handled once");
    }
}
