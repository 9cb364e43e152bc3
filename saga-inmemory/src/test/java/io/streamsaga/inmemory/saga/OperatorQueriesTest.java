package io.streamsaga.inmemory.saga;

import io.streamsaga.ConfigurationException;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaPage;
import io.streamsaga.saga.SagaPageRequest;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.StepState;
import io.streamsaga.saga.TransitionType;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The orchestrator's paged queries for an operator: {@code findIdleLongerThan} (by the last transition, not the start),
 * {@code findByStatus} and {@code findByBusinessKey} a page at a time, and what they refuse. The sagas are written to
 * the store as another node would have, so that nothing here drives them and the clock alone moves.
 */
class OperatorQueriesTest {
    record Order(String id) {
    }

    private static final Instant NOW = Instant.parse("2026-03-01T12:00:00Z");

    private final VirtualScheduler scheduler = new VirtualScheduler(NOW);
    private final InMemorySagaStore store = new InMemorySagaStore();
    private final SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler)
            .register(SagaDefinition.builder("order-saga", Order.class).step("reserve").action((d, c) -> d).build())
            .build();

    @AfterEach
    void close() {
        orchestrator.close();
    }

    private void stored(String sagaId, String businessKey, SagaStatus status, Duration startedAgo, Duration updatedAgo) {
        SagaInstance instance = new SagaInstance(sagaId, "order-saga", 1, businessKey, "order", new Order(sagaId), status,
                List.of(StepState.pending("reserve")), null, null, NOW.minus(startedAgo), NOW.minus(updatedAgo), 1);
        store.insert(instance, new SagaTransition(sagaId, 1, instance.updatedAt(), TransitionType.SAGA_STARTED, null, 0,
                null));
    }

    @Test
    void idleSagasAreThoseWhoseLastTransitionIsOlderThanTheThresholdNotThoseStartedLongerAgo() {
        Duration hour = Duration.ofHours(1);
        stored("awaiting-reply", null, SagaStatus.RUNNING, Duration.ofHours(5), Duration.ofMinutes(30)); // by design
        stored("stuck", null, SagaStatus.COMPENSATING, Duration.ofHours(2), Duration.ofMinutes(90));
        stored("at-threshold", null, SagaStatus.RUNNING, Duration.ofHours(2), hour);
        stored("needs-attention", null, SagaStatus.FAILED_NEEDS_ATTENTION, Duration.ofHours(3), Duration.ofHours(3));
        stored("done", null, SagaStatus.COMPLETED, Duration.ofHours(4), Duration.ofHours(4));

        assertEquals(List.of("awaiting-reply", "at-threshold", "stuck"), ids(orchestrator.findUnfinishedLongerThan(hour)),
                "by their start, a saga that progresses is listed with the stuck one");
        SagaPage idle = orchestrator.findIdleLongerThan(Duration.ofHours(1), SagaPageRequest.first(100));
        assertEquals(List.of("stuck"), ids(idle.sagas()));
        assertFalse(idle.hasNext());
        scheduler.advance(Duration.ofMinutes(1));
        assertEquals(List.of("at-threshold", "stuck"),
                ids(orchestrator.findIdleLongerThan(hour, SagaPageRequest.first(10)).sagas()));
        assertEquals(List.of("awaiting-reply", "at-threshold", "stuck"),
                ids(orchestrator.findIdleLongerThan(Duration.ZERO, SagaPageRequest.first(10)).sagas()));
        assertEquals(List.of(), orchestrator.findIdleLongerThan(ChronoUnit.FOREVER.getDuration(),
                SagaPageRequest.first(10)).sagas(), "a threshold longer than the maximum is the maximum: none that idle");

        SagaPage first = orchestrator.findIdleLongerThan(Duration.ZERO, SagaPageRequest.first(2));
        assertEquals(List.of("awaiting-reply", "at-threshold"), ids(first.sagas()));
        assertEquals(List.of("stuck"), ids(orchestrator.findIdleLongerThan(Duration.ZERO, first.next()).sagas()));
    }

    @Test
    void pagesFollowEachOtherOldestFirstAndTheLastOneSaysThatNoneFollows() {
        List<String> expected = new ArrayList<>();
        for (int i = 0; i < 150; i++) {
            String sagaId = String.format("attention-%03d", i);
            stored(sagaId, "order-" + (i % 2), SagaStatus.FAILED_NEEDS_ATTENTION, Duration.ofMinutes(500 - i),
                    Duration.ofMinutes(1));
            expected.add(sagaId);
        }
        stored("running", "order-0", SagaStatus.RUNNING, Duration.ofMinutes(1), Duration.ofMinutes(1));
        List<String> needingAttention = new ArrayList<>();
        List<Integer> pageSizes = new ArrayList<>();

        SagaPageRequest request = SagaPageRequest.first(100);
        while (request != null) {
            SagaPage page = orchestrator.findByStatus(Set.of(SagaStatus.FAILED_NEEDS_ATTENTION), request);
            page.sagas().forEach(saga -> needingAttention.add(saga.sagaId()));
            pageSizes.add(page.sagas().size());
            request = page.next();
        }

        assertEquals(expected, needingAttention);
        assertEquals(List.of(100, 50), pageSizes);
        SagaPage keyed = orchestrator.findByBusinessKey("order-0", SagaPageRequest.first(38));
        assertEquals(38, keyed.sagas().size());
        assertTrue(keyed.hasNext());
        assertEquals(new SagaPageRequest(38, NOW.minus(Duration.ofMinutes(500 - 74)), "attention-074"), keyed.next());
        SagaPage last = orchestrator.findByBusinessKey("order-0", keyed.next());
        assertEquals(38, last.sagas().size(), "the other 37 of the key, and the running one");
        assertEquals("running", last.sagas().get(37).sagaId());
        assertFalse(last.hasNext(), "a full last page is known to be the last: no empty page after it");
        assertNull(last.next());
        assertEquals(List.of(), orchestrator.findByBusinessKey("nobody", SagaPageRequest.first(1)).sagas());
        assertEquals(151, orchestrator.findByStatus(Set.of(SagaStatus.values()),
                SagaPageRequest.first(SagaPageRequest.MAX_SIZE)).sagas().size());
    }

    @Test
    void countsByStatusHoldEveryStatusAskedForZeroForNoneAndAMissingOrNullStatusIsRefused() {
        stored("running-1", null, SagaStatus.RUNNING, Duration.ofHours(2), Duration.ofHours(1));
        stored("running-2", null, SagaStatus.RUNNING, Duration.ofHours(1), Duration.ofHours(1));
        stored("needs-attention", null, SagaStatus.FAILED_NEEDS_ATTENTION, Duration.ofHours(3), Duration.ofHours(3));
        stored("done", null, SagaStatus.COMPLETED, Duration.ofHours(4), Duration.ofHours(4));

        Map<SagaStatus, Long> counts = orchestrator.countByStatus(EnumSet.of(SagaStatus.FAILED_NEEDS_ATTENTION,
                SagaStatus.RUNNING, SagaStatus.COMPENSATING));

        assertEquals(List.of(SagaStatus.RUNNING, SagaStatus.COMPENSATING, SagaStatus.FAILED_NEEDS_ATTENTION),
                List.copyOf(counts.keySet()), "every status asked for, in the enum's order, and no other");
        assertEquals(List.of(2L, 0L, 1L), List.copyOf(counts.values()));
        Set<SagaStatus> withNull = new LinkedHashSet<>(Arrays.asList(null, SagaStatus.RUNNING));
        Map<String, Executable> refused = Map.of(
                "statuses must hold at least one status and no null, but was []",
                () -> orchestrator.countByStatus(Set.of()),
                "statuses must hold at least one status and no null, but was null",
                () -> orchestrator.countByStatus(null),
                "statuses must hold at least one status and no null, but was [null, RUNNING]",
                () -> orchestrator.countByStatus(withNull));
        refused.forEach((message, call) -> assertEquals(message,
                assertThrows(ConfigurationException.class, call, message).getMessage()));
    }

    @Test
    void countsBySagaAndStatusAreTheStoresPerSagaNameAndAMissingOrNullStatusIsRefusedAsForCountsByStatus() {
        stored("running-1", null, SagaStatus.RUNNING, Duration.ofHours(2), Duration.ofHours(1));
        stored("needs-attention", null, SagaStatus.FAILED_NEEDS_ATTENTION, Duration.ofHours(3), Duration.ofHours(3));
        stored("done", null, SagaStatus.COMPLETED, Duration.ofHours(4), Duration.ofHours(4));
        String saga = orchestrator.find("running-1").orElseThrow().sagaName();

        Map<String, Map<SagaStatus, Long>> counts = orchestrator.countBySagaAndStatus(EnumSet.of(
                SagaStatus.FAILED_NEEDS_ATTENTION, SagaStatus.RUNNING, SagaStatus.COMPENSATING));

        assertEquals(Map.of(saga, Map.of(SagaStatus.RUNNING, 1L, SagaStatus.COMPENSATING, 0L,
                SagaStatus.FAILED_NEEDS_ATTENTION, 1L)), counts);
        Set<SagaStatus> withNull = new LinkedHashSet<>(Arrays.asList(null, SagaStatus.RUNNING));
        Map<String, Executable> refused = Map.of(
                "statuses must hold at least one status and no null, but was []",
                () -> orchestrator.countBySagaAndStatus(Set.of()),
                "statuses must hold at least one status and no null, but was null",
                () -> orchestrator.countBySagaAndStatus(null),
                "statuses must hold at least one status and no null, but was [null, RUNNING]",
                () -> orchestrator.countBySagaAndStatus(withNull));
        refused.forEach((message, call) -> assertEquals(message,
                assertThrows(ConfigurationException.class, call, message).getMessage()));
    }

    @Test
    void aMissingOrOutOfRangeArgumentOfAPagedQueryIsRefusedNamingIt() {
        SagaPageRequest page = SagaPageRequest.first(10);
        // insertion order: a HashSet printed its two elements in an order that changed from run to run
        Set<SagaStatus> withNull = new LinkedHashSet<>(Arrays.asList(null, SagaStatus.RUNNING));
        Map<String, Executable> refused = Map.ofEntries(
                Map.entry("page size must be between 1 and 1000, but was 0", () -> SagaPageRequest.first(0)),
                Map.entry("page size must be between 1 and 1000, but was -1", () -> SagaPageRequest.first(-1)),
                Map.entry("page size must be between 1 and 1000, but was 1001", () -> SagaPageRequest.first(1001)),
                Map.entry("afterCreatedAt and afterSagaId must be both given or both null, but were " + NOW + " and null",
                        () -> new SagaPageRequest(10, NOW, null)),
                Map.entry("afterCreatedAt must be to the microsecond, as a saga's createdAt is, but was "
                        + NOW.plusNanos(500), () -> new SagaPageRequest(10, NOW.plusNanos(500), "s")),
                Map.entry("afterSagaId must not contain the character U+0000",
                        () -> new SagaPageRequest(10, NOW, "s\0")),
                Map.entry("idleFor must be zero or positive, but was null", () -> orchestrator.findIdleLongerThan(null, page)),
                Map.entry("idleFor must be zero or positive, but was PT-1S",
                        () -> orchestrator.findIdleLongerThan(Duration.ofSeconds(-1), page)),
                Map.entry("page must not be null", () -> orchestrator.findIdleLongerThan(Duration.ZERO, null)),
                Map.entry("statuses must hold at least one status and no null, but was []",
                        () -> orchestrator.findByStatus(Set.of(), page)),
                Map.entry("statuses must hold at least one status and no null, but was null",
                        () -> orchestrator.findByStatus((Set<SagaStatus>) null, page)),
                Map.entry("statuses must hold at least one status and no null, but was [null, RUNNING]",
                        () -> orchestrator.findByStatus(withNull, page)),
                Map.entry("businessKey must not be null", () -> orchestrator.findByBusinessKey(null, page)),
                Map.entry("businessKey must not contain the character U+0000",
                        () -> orchestrator.findByBusinessKey("order\0", page)),
                Map.entry("businessKey must be at most 500 characters",
                        () -> orchestrator.findByBusinessKey("k".repeat(501), page)),
                Map.entry("page must not be null, but was null",
                        () -> orchestrator.findByStatus(Set.of(SagaStatus.RUNNING), null)));
        refused.forEach((message, call) -> {
            String thrown = assertThrows(ConfigurationException.class, call, message).getMessage();
            assertTrue(thrown.startsWith(message), "expected '" + message + "...', was '" + thrown + "'");
        });
    }

    private static List<String> ids(List<SagaInstance> instances) {
        return instances.stream().map(SagaInstance::sagaId).toList();
    }
}
