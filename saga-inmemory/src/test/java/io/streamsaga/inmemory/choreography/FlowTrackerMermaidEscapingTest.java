package io.streamsaga.inmemory.choreography;

import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.EventBus;
import io.streamsaga.choreography.FlowDefinition;
import io.streamsaga.choreography.FlowTracker;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link FlowTracker#mermaid} must give every service of the flow its own participant, under an id Mermaid accepts,
 * and keep every statement on one line whatever the service names and the correlation id (a header from outside)
 * hold, as {@code SagaDiagrams.sequence} does for a saga's steps.
 */
class FlowTrackerMermaidEscapingTest {
    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemoryTransport transport = InMemoryTransport.create();
    private final EventBus bus = EventBus.builder(transport).scheduler(scheduler).build();

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    private String diagram(FlowDefinition flow, String correlationId, String... events) {
        try (FlowTracker tracker = FlowTracker.builder(bus, flow).build()) {
            for (String event : events) {
                tracker.observe(Message.builder(event).type(event).payload(Map.of()).timestamp(scheduler.now())
                        .header(MessageHeaders.CORRELATION_ID, correlationId).build());
            }
            return tracker.mermaid(correlationId).orElseThrow();
        }
    }

    private static List<String> participantIds(String diagram) {
        return diagram.lines().filter(l -> l.startsWith("    participant ")).map(l -> l.trim().split(" ")[1]).toList();
    }

    @Test
    void servicesWhoseNamesDifferOnlyInNonAsciiOrPunctuationOrAreMermaidKeywordsGetParticipantsOfTheirOwn() {
        // a team naming its services in Chinese: order, inventory, payment service; and two services named like keywords
        FlowDefinition flow = FlowDefinition.builder("订单流程")
                .event("order-created", "订单服务", "库存服务")
                .event("inventory-reserved", "库存服务", "支付服务")
                .event("payment-processed", "支付服务", "Box", "Links")
                .succeedsOn("payment-processed")
                .deadline(Duration.ofMinutes(1))
                .build();

        String diagram = diagram(flow, "c-1", "order-created", "inventory-reserved", "payment-processed");

        List<String> ids = participantIds(diagram);
        assertEquals(5, ids.size(), diagram);
        assertEquals(5, ids.stream().distinct().count(), "two services share one participant:\n" + diagram);
        for (String keyword : List.of("box", "links")) {
            assertFalse(ids.stream().anyMatch(id -> id.equalsIgnoreCase(keyword)),
                    "Mermaid reads the id '" + keyword + "' as a keyword:\n" + diagram);
        }
        assertFalse(diagram.lines().anyMatch(l -> l.matches("\\s*(\\w+)->>\\1: .*")),
                "an event between two services is drawn as a service sending to itself:\n" + diagram);
    }

    @Test
    void aCorrelationIdOrServiceNameWithLineBreaksSemicolonsOrHashesStaysOnItsLine() {
        FlowDefinition flow = FlowDefinition.builder("order")
                .event("order-created", "Order;Service", "Inventory\nService")
                .event("inventory-reserved", "Inventory\nService")
                .succeedsOn("inventory-reserved")
                .deadline(Duration.ofMinutes(1))
                .build();

        String diagram = diagram(flow, "req-7\r\nparticipant X; #1", "order-created", "inventory-reserved");

        assertFalse(diagram.contains("\r"), diagram);
        for (String line : diagram.lines().toList()) {
            assertTrue(line.equals("sequenceDiagram") || line.startsWith("    participant ") || line.startsWith("    Note over ")
                    || line.matches("    \\w+->>\\w+: .*"), "a statement broke over lines: '" + line + "' in\n" + diagram);
            assertFalse(line.matches(".*[;#].*"), "Mermaid ends the statement at ';' or '#': '" + line + "'");
        }
        assertEquals(2, participantIds(diagram).size(), diagram);
    }

    @Test
    void aBlankReactingServiceIsRefusedWhenTheFlowIsDeclaredAsABlankEmitterIs() {
        // drawn, an empty name was a participant with an empty id ("participant  as "), which breaks the diagram
        for (String blank : List.of("", " ")) {
            ConfigurationException refused = assertThrows(ConfigurationException.class,
                    () -> FlowDefinition.builder("order").event("order-created", "Order", "Inventory", blank));
            assertTrue(refused.getMessage().contains("reactor"), refused.getMessage());
        }
    }
}
