package io.streamsaga.kafka;

import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.TopicPattern;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConsumerGroupOffsetsOptions;
import org.apache.kafka.clients.admin.AlterConsumerGroupOffsetsResult;
import org.apache.kafka.clients.admin.DescribeTopicsOptions;
import org.apache.kafka.clients.admin.DescribeTopicsResult;
import org.apache.kafka.clients.admin.ListConsumerGroupOffsetsOptions;
import org.apache.kafka.clients.admin.ListConsumerGroupOffsetsResult;
import org.apache.kafka.clients.admin.ListOffsetsOptions;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.ListTopicsOptions;
import org.apache.kafka.clients.admin.ListTopicsResult;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.TopicCollection;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.internals.KafkaFutureImpl;
import org.junit.jupiter.api.Test;
import org.mockito.stubbing.Answer;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
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
    private static final TopicPartition ORDERS_0 = new TopicPartition("orders", 0);

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

    @Test
    void theStartCommitOfANewLatestGroupGivesTheAdminClientTheRequestTimeoutAsItsOwn() {
        // A LATEST subscribe of a group without members commits its starts through the admin client, waiting
        // up to requestTimeout; the admin client retries on its own up to its default.api.timeout.ms (60 s), so
        // without the request timeout as its own it could commit those starts after subscribe had failed. The
        // fake admin fails the commit as the admin client does at its own timeout.
        AtomicReference<Integer> commitTimeoutMs = new AtomicReference<>();
        Admin admin = fakeAdmin();
        ListTopicsResult topics = mock(ListTopicsResult.class);
        when(topics.names()).thenReturn(KafkaFuture.completedFuture(Set.of("orders")));
        when(admin.listTopics(any(ListTopicsOptions.class))).thenReturn(topics);
        ListOffsetsResult ends = mock(ListOffsetsResult.class);
        when(ends.all()).thenReturn(KafkaFuture.completedFuture(
                Map.of(ORDERS_0, new ListOffsetsResult.ListOffsetsResultInfo(5, -1, Optional.empty()))));
        when(admin.listOffsets(anyMap(), any(ListOffsetsOptions.class))).thenReturn(ends);
        ListConsumerGroupOffsetsResult noOffsets = mock(ListConsumerGroupOffsetsResult.class);
        when(noOffsets.partitionsToOffsetAndMetadata(anyString())).thenReturn(KafkaFuture.completedFuture(Map.of()));
        when(noOffsets.partitionsToOffsetAndMetadata()).thenReturn(KafkaFuture.completedFuture(Map.of()));
        when(admin.listConsumerGroupOffsets(anyMap(), any(ListConsumerGroupOffsetsOptions.class))).thenReturn(noOffsets);
        AlterConsumerGroupOffsetsResult timedOut = mock(AlterConsumerGroupOffsetsResult.class);
        KafkaFutureImpl<Void> timeout = new KafkaFutureImpl<>();
        timeout.completeExceptionally(new TimeoutException("Timed out waiting for a node assignment. Call: offsetCommit"));
        when(timedOut.all()).thenReturn(timeout);
        when(admin.alterConsumerGroupOffsets(anyString(), anyMap(), any(AlterConsumerGroupOffsetsOptions.class)))
                .thenAnswer(invocation -> {
                    commitTimeoutMs.set(invocation.<AlterConsumerGroupOffsetsOptions>getArgument(2).timeoutMs());
                    return timedOut;
                });
        try (KafkaTransport transport = KafkaTransport.builder().bootstrapServers("localhost:9")
                .requestTimeout(REQUEST_TIMEOUT).assignmentTimeout(Duration.ZERO).adminFactory(properties -> admin).build()) {
            KafkaTransportException failure = assertThrows(KafkaTransportException.class, () -> transport.subscribe(
                    "billing", TopicPattern.of("orders"), StartPosition.LATEST, record -> { }));

            assertTrue(failure.isRetriable(), failure.toString());
            assertEquals(Set.of(), transport.subscriptions(), "no member is started");
        }
        assertEquals((int) REQUEST_TIMEOUT.toMillis(), commitTimeoutMs.get(),
                "the admin client gives up retrying the commit when subscribe stops waiting for it");
    }
}
