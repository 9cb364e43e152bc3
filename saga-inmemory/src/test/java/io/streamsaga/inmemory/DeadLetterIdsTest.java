package io.streamsaga.inmemory;

import io.streamsaga.bus.EventBus;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.UUID;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A dead letter's id is derived from the original message's id and the group that gave it up, so the same record
 * dead-lettered again gets the same id, and two different dead letters never share one, whatever characters the
 * ids and group names hold.
 */
class DeadLetterIdsTest {
    private final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    private final EventBus bus = EventBus.builder(transport).scheduler(new VirtualScheduler()).retryPolicy(RetryPolicy.NONE)
            .build();

    @AfterEach
    void close() {
        bus.close();
        transport.close();
    }

    private void failingGroup(String group) {
        bus.subscribe(group, "orders", Message.class, (message, ctx) -> {
            throw new IllegalStateException("down");
        });
    }

    private void order(String id) {
        bus.publish(Message.builder("orders").id(id).key(id).type("order").payload(Map.of()).build());
    }

    @Test
    void deadLettersOfDifferentMessagesInDifferentGroupsWhoseIdsRunTogetherTheSameWayGetIdsOfTheirOwn() {
        // joined with '/', message a/b given up by group c and message a given up by group b/c both came to "a/b/c"
        failingGroup("c");
        failingGroup("b/c");
        order("a/b");
        order("a");
        transport.drainAll();

        List<Message> dead = transport.messages("orders.DLT");
        assertEquals(4, dead.size());
        assertEquals(4, dead.stream().map(Message::id).distinct().count(), dead.toString());
    }

    @Test
    void theIdOfADeadLetterOfAnIdAndAGroupWithoutASlashOrABackslashIsTheIdEarlierVersionsGaveIt() {
        failingGroup("payments");
        order("m-1");
        transport.drainAll();

        Message dead = transport.messages("orders.DLT").get(0);
        assertEquals("payments", dead.headers().get(MessageHeaders.DLT_ORIGINAL_GROUP));
        assertEquals(UUID.nameUUIDFromBytes("m-1/payments".getBytes(StandardCharsets.UTF_8)).toString(), dead.id());
    }
}
