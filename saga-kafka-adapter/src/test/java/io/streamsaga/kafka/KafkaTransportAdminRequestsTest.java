package io.streamsaga.kafka;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.DescribeTopicsOptions;
import org.apache.kafka.clients.admin.DescribeTopicsResult;
import org.apache.kafka.clients.admin.ListConsumerGroupOffsetsOptions;
import org.apache.kafka.clients.admin.ListConsumerGroupOffsetsResult;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.TopicCollection;
import org.apache.kafka.common.TopicPartitionInfo;
import org.junit.jupiter.api.Test;
import org.mockito.stubbing.Answer;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.ArgumentMatchers.anyMap;
import static org.mockito.ArgumentMatchers.anyString;
import static org.mockito.Mockito.RETURNS_DEFAULTS;
import static org.mockito.Mockito.mock;
import static org.mockito.Mockito.when;
import static org.mockito.Mockito.withSettings;

/**
 * The transport's admin requests against a fake admin client, for what a broker cannot be made to do on cue
 * (answer only after a given time, or never); no broker is needed.
 */
class KafkaTransportAdminRequestsTest {
    private static final Duration REQUEST_TIMEOUT = Duration.ofSeconds(3);

    /** A request the fake admin client got: when (ms on the test's clock since the call began), and its own timeout. */
    private record Request(long atMs, Integer timeoutMs, boolean stable) {
    }

    /** An admin client whose default methods run (they call the abstract ones stubbed here), the rest answer null. */
    private static Admin fakeAdmin() {
        Answer<Object> defaults = invocation -> invocation.getMethod().isDefault()
                ? invocation.callRealMethod() : RETURNS_DEFAULTS.answer(invocation);
        Admin admin = mock(Admin.class, withSettings().defaultAnswer(defaults));
        DescribeTopicsResult described = mock(DescribeTopicsResult.class);
        when(described.topicNameValues()).thenReturn(Map.of("orders", KafkaFuture.completedFuture(
                new TopicDescription("orders", false, List.of(new TopicPartitionInfo(0, null, List.of(), List.of()))))));
        when(admin.describeTopics(any(TopicCollection.class), any(DescribeTopicsOptions.class))).thenReturn(described);
        return admin;
    }

    @Test
    void readingOffsetsPendingInATransactionTakesNoLongerThanTheRequestTimeoutInAll() {
        // committedOffsets waits for offsets pending in a transaction up to requestTimeout, but then made a last
        // stable read with a whole requestTimeout of its own (and the admin client's own default.api.timeout.ms,
        // 60 s), so a broker slow to answer it made the call take about twice the requestTimeout it promises.
        // Every request now gets what is left of one requestTimeout, and the last stable read is made in its
        // last second. Here each read of the group's offsets takes 300 ms on the test's clock, and the offset
        // on orders-0 stays pending.
        AtomicLong clock = new AtomicLong(1_000_000_000L);
        long start = clock.get();
        List<Request> requests = new CopyOnWriteArrayList<>();
        Admin admin = fakeAdmin();
        ListConsumerGroupOffsetsResult nothingListed = mock(ListConsumerGroupOffsetsResult.class);
        when(nothingListed.partitionsToOffsetAndMetadata(anyString())).thenReturn(KafkaFuture.completedFuture(Map.of()));
        when(nothingListed.partitionsToOffsetAndMetadata()).thenReturn(KafkaFuture.completedFuture(Map.of()));
        when(admin.listConsumerGroupOffsets(anyMap(), any(ListConsumerGroupOffsetsOptions.class))).thenAnswer(invocation -> {
            ListConsumerGroupOffsetsOptions options = invocation.getArgument(1);
            requests.add(new Request(Duration.ofNanos(clock.get() - start).toMillis(), options.timeoutMs(),
                    options.requireStable()));
            clock.addAndGet(Duration.ofMillis(300).toNanos());
            return nothingListed;
        });
        try (KafkaTransport transport = KafkaTransport.builder().bootstrapServers("localhost:9")
                .requestTimeout(REQUEST_TIMEOUT).adminFactory(properties -> admin).nanoClock(clock::get).build()) {
            KafkaTransportException failure = assertThrows(KafkaTransportException.class,
                    () -> transport.committedOffsets("rebuild", "orders"));
            assertTrue(failure.isRetriable(), failure.toString());
        }

        assertTrue(requests.stream().filter(Request::stable).count() >= 2, "read stable again before failing: " + requests);
        Request last = requests.get(requests.size() - 1);
        assertTrue(last.stable() && last.atMs() < REQUEST_TIMEOUT.toMillis(),
                "the last read is stable, made within the request timeout: " + requests);
        for (Request request : requests) {
            assertNotNull(request.timeoutMs(), "the admin client's own timeout is set: " + requests);
            assertTrue(request.atMs() + request.timeoutMs() <= REQUEST_TIMEOUT.toMillis(),
                    "each request ends within the request timeout of the whole call: " + requests);
        }
    }
}
