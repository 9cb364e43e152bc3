package io.streamsaga.kafka;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.MessageTooLargeException;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.retry.RetryPolicy;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * In plain mode a handler's publish that it does not wait for, refused by the broker after the handler returned (a
 * record over the topic's {@code max.message.bytes}, under the producer's {@code max.request.size}), was lost: the
 * handled record's offset was committed and nothing was logged or dead-lettered. The bus waits for the handler's
 * publishes before the record counts as handled, and the refusal fails the handling.
 */
class KafkaHandlerPublishFailureTest {
    private static final Duration WAIT = Duration.ofSeconds(60);

    @Test
    void aPublishTheBrokerRefusesAfterThePlainHandlerReturnedDeadLettersTheHandledRecord() throws Exception {
        String bootstrap = SharedKafkaBroker.bootstrapServers();
        String orders = SharedKafkaBroker.unique("order-created");
        String audit = SharedKafkaBroker.unique("audit");
        String group = SharedKafkaBroker.unique("payment");
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap))) {
            admin.createTopics(List.of(new NewTopic(audit, 1, (short) 1)
                    .configs(Map.of("max.message.bytes", "1024")))).all().get();
        }
        List<Message> deadLetters = new CopyOnWriteArrayList<>();
        try (KafkaTransport transport = KafkaTransport.builder().bootstrapServers(bootstrap).build();
             EventBus bus = EventBus.builder(transport).retryPolicy(RetryPolicy.NONE).build()) {
            bus.subscribe(SharedKafkaBroker.unique("dlt-reader"), orders + MessageHeaders.DEAD_LETTER_SUFFIX,
                    Message.class, SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST),
                    (deadLetter, ctx) -> deadLetters.add(deadLetter));
            bus.subscribe(group, orders, Message.class, SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST),
                    // not awaited: the handler returns before the broker answers
                    (order, ctx) -> bus.publish(Message.builder(audit).key("k").type("audit")
                            .payload(new byte[4096]).build()));

            bus.publish(Message.builder(orders).key("k").type("order").payload(new byte[10]).build())
                    .toCompletableFuture().join();

            await().atMost(WAIT).until(() -> !deadLetters.isEmpty());
            Message deadLetter = deadLetters.get(0);
            assertEquals("handler-failed", deadLetter.headers().get(MessageHeaders.DLT_REASON));
            assertEquals(MessageTooLargeException.class.getName(), deadLetter.headers().get(MessageHeaders.DLT_ERROR_CLASS),
                    "the broker's refusal, naming the audit topic");
            assertTrue(deadLetter.headers().get(MessageHeaders.DLT_ERROR_MESSAGE).contains(audit),
                    deadLetter.headers().get(MessageHeaders.DLT_ERROR_MESSAGE));
        }
    }
}
