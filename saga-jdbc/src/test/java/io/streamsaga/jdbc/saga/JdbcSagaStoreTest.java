package io.streamsaga.jdbc.saga;

import com.fasterxml.jackson.databind.JsonNode;
import io.streamsaga.ConfigurationException;
import io.streamsaga.codec.JsonEventCodec;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.jdbc.JdbcSchema;
import io.streamsaga.jdbc.testing.DatabaseExtension;
import io.streamsaga.jdbc.testing.TestDatabase;
import io.streamsaga.saga.ConcurrentSagaUpdateException;
import io.streamsaga.saga.SagaFailure;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.spi.RecoveryQuery;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.StepState;
import io.streamsaga.saga.StepStatus;
import io.streamsaga.saga.TransitionType;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.LocalTime;
import java.time.OffsetDateTime;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What the JDBC saga store guarantees beyond saga-core's {@code SagaStoreContractTest} (which runs in
 * {@code PostgresSagaStoreContractTest} and {@code H2SagaStoreContractTest}): JSON data, history,
 * concurrent writers, bounded deletion; subclasses pick PostgreSQL or H2.
 */
abstract class JdbcSagaStoreTest {
    static final Instant T0 = Instant.parse("2026-01-01T00:00:00Z");

    record OrderData(String orderId, long amount) {
    }

    @RegisterExtension
    final DatabaseExtension db = DatabaseExtension.of(kind());

    abstract TestDatabase.Kind kind();

    private JdbcSagaStore store;

    @BeforeEach
    void setUp() {
        JdbcSchema.of(db.database().dataSource()).migrate();
        store = JdbcSagaStore.create(db.database().dataSource());
    }

    static SagaInstance saga(String id, String businessKey, SagaStatus status, Instant createdAt, long version) {
        return new SagaInstance(id, "order", 1, businessKey, "order-data", new OrderData(businessKey, 42), status,
                List.of(new StepState("reserve", StepStatus.SUCCEEDED, 1, 0, null),
                        new StepState("charge", StepStatus.RETRY_SCHEDULED, 2, 0, createdAt.plusSeconds(5))),
                null, null, createdAt, createdAt, version);
    }

    static SagaTransition transition(String id, long version, TransitionType type) {
        return new SagaTransition(id, version, T0.plusSeconds(version), type, version == 1 ? null : "charge",
                version == 1 ? 0 : 1, null);
    }

    @Test
    void groupCommitBatchWritesEveryRowWithItsHistoryAndRefusesEachStaleWriteAloneIncludingARacingUpdateOfTheSameSaga()
            throws Exception {
        for (String id : List.of("s-1", "s-2", "s-3")) {
            store.insert(saga(id, "o", SagaStatus.RUNNING, T0, 1), transition(id, 1, TransitionType.SAGA_STARTED));
        }
        List<JdbcSagaStore.Write> batch = List.of(
                store.toWrite(false, saga("s-1", "o", SagaStatus.COMPLETED, T0, 2), List.of(transition("s-1", 2, TransitionType.SAGA_COMPLETED))),
                store.toWrite(false, saga("s-2", "o", SagaStatus.COMPLETED, T0, 2), List.of(transition("s-2", 2, TransitionType.SAGA_COMPLETED))),
                store.toWrite(false, saga("s-2", "o", SagaStatus.COMPENSATING, T0, 2), List.of(transition("s-2", 2, TransitionType.SAGA_COMPENSATING))),
                store.toWrite(false, saga("s-3", "o", SagaStatus.COMPLETED, T0, 5), List.of(transition("s-3", 5, TransitionType.SAGA_COMPLETED))),
                store.toWrite(true, saga("s-4", "o", SagaStatus.RUNNING, T0, 1), List.of(transition("s-4", 1, TransitionType.SAGA_STARTED))),
                store.toWrite(true, saga("s-1", "o", SagaStatus.RUNNING, T0, 1), List.of(transition("s-1", 1, TransitionType.SAGA_STARTED))));

        RuntimeException[] errors = new io.streamsaga.jdbc.JdbcTransactions(db.database().dataSource())
                .call(c -> store.writeBatch(c, batch));

        assertNull(errors[0], "s-1 updated");
        assertTrue(errors[1] == null ^ errors[2] == null, "exactly one of two racing updates of s-2 wins");
        assertTrue(errors[1] instanceof ConcurrentSagaUpdateException || errors[2] instanceof ConcurrentSagaUpdateException);
        assertTrue(errors[3] instanceof ConcurrentSagaUpdateException, "stale update of s-3 refused");
        assertNull(errors[4], "s-4 inserted");
        assertTrue(errors[5] instanceof ConcurrentSagaUpdateException, "duplicate insert of s-1 refused");
        assertEquals(SagaStatus.COMPLETED, store.find("s-1").orElseThrow().status());
        assertEquals(errors[1] == null ? SagaStatus.COMPLETED : SagaStatus.COMPENSATING, store.find("s-2").orElseThrow().status());
        assertEquals(2, store.find("s-2").orElseThrow().version());
        assertEquals(1, store.find("s-3").orElseThrow().version());
        assertEquals(SagaStatus.RUNNING, store.find("s-4").orElseThrow().status());
        assertEquals(List.of(TransitionType.SAGA_STARTED, TransitionType.SAGA_COMPLETED),
                store.history("s-1").stream().map(SagaTransition::type).toList());
        assertEquals(2, store.history("s-2").size(), "only the winner's transition is stored");
        assertEquals(1, store.history("s-3").size());
        assertEquals(1, store.history("s-4").size());
    }

    @Test
    void valuesLongerThanTheirColumnsAreRefusedUpFrontWithAConfigurationException() {
        // ss_saga.saga_id is VARCHAR(200) and the insert casts it to that width, which both databases cut to a
        // prefix: an id of 201 characters sharing its first 200 with a stored saga was refused as a concurrent
        // update of that other saga (ConcurrentSagaUpdateException), a longer one with "value too long".
        String longest = "s".repeat(200);
        store.insert(saga(longest, "k", SagaStatus.RUNNING, T0, 1), transition(longest, 1, TransitionType.SAGA_STARTED));
        assertEquals(longest, store.find(longest).orElseThrow().sagaId());
        JdbcSagaStore groupCommit = JdbcSagaStore.builder(db.database().dataSource()).groupCommit(8).build();
        for (JdbcSagaStore target : List.of(store, groupCommit)) {
            String tooLong = longest + "-2";
            ConfigurationException id = assertThrows(ConfigurationException.class, () -> target.insert(
                    saga(tooLong, "k", SagaStatus.RUNNING, T0, 1), transition(tooLong, 1, TransitionType.SAGA_STARTED)));
            assertTrue(id.getMessage().contains("saga id"), id.getMessage());
            ConfigurationException key = assertThrows(ConfigurationException.class, () -> target.insert(
                    saga("s-key", "k".repeat(501), SagaStatus.RUNNING, T0, 1), transition("s-key", 1, TransitionType.SAGA_STARTED)));
            assertTrue(key.getMessage().contains("business key"), key.getMessage());
            SagaInstance longStep = saga("s-step", "k", SagaStatus.RUNNING, T0, 1);
            SagaInstance withLongStep = new SagaInstance(longStep.sagaId(), longStep.sagaName(), longStep.definitionVersion(),
                    longStep.businessKey(), longStep.dataType(), longStep.data(), longStep.status(),
                    List.of(new StepState("x".repeat(201), StepStatus.PENDING, 0, 0, null)), null, null,
                    longStep.createdAt(), longStep.updatedAt(), 1);
            ConfigurationException step = assertThrows(ConfigurationException.class, () -> target.insert(withLongStep,
                    transition("s-step", 1, TransitionType.SAGA_STARTED)));
            assertTrue(step.getMessage().contains("step name"), step.getMessage());
        }
        assertEquals(1, db.database().queryLong("SELECT COUNT(*) FROM ss_saga"), "nothing else was stored");
        assertEquals(1, store.history(longest).size());
    }

    @Test
    void anIdKeyOrNameWithANulCharacterIsRefusedUpFrontOnBothDatabasesAndAFailureMessageWithOneIsStored() {
        // PostgreSQL's text types cannot hold U+0000 (SQL state 22021) and H2's can: a saga id, business key or step
        // name with one was stored on H2 and failed in SQL on PostgreSQL. Both now refuse it with a
        // ConfigurationException. A failure message (an exception's text, kept for people to read) with one failed the
        // saga's write on PostgreSQL: it is stored with U+FFFD in place of each NUL, on both.
        for (JdbcSagaStore target : List.of(store, JdbcSagaStore.builder(db.database().dataSource()).groupCommit(8).build())) {
            ConfigurationException id = assertThrows(ConfigurationException.class, () -> target.insert(
                    saga("s\0-1", "k", SagaStatus.RUNNING, T0, 1), transition("s\0-1", 1, TransitionType.SAGA_STARTED)));
            assertTrue(id.getMessage().contains("saga id") && id.getMessage().contains("U+0000"), id.getMessage());
            ConfigurationException key = assertThrows(ConfigurationException.class, () -> target.insert(
                    saga("s-1", "k\0", SagaStatus.RUNNING, T0, 1), transition("s-1", 1, TransitionType.SAGA_STARTED)));
            assertTrue(key.getMessage().contains("business key"), key.getMessage());
            SagaInstance base = saga("s-1", "k", SagaStatus.RUNNING, T0, 1);
            SagaInstance withStep = new SagaInstance(base.sagaId(), base.sagaName(), base.definitionVersion(),
                    base.businessKey(), base.dataType(), base.data(), base.status(),
                    List.of(new StepState("re\0serve", StepStatus.PENDING, 0, 0, null)), null, null,
                    base.createdAt(), base.updatedAt(), 1);
            ConfigurationException step = assertThrows(ConfigurationException.class,
                    () -> target.insert(withStep, transition("s-1", 1, TransitionType.SAGA_STARTED)));
            assertTrue(step.getMessage().contains("step name"), step.getMessage());
        }
        assertEquals(0, db.database().queryLong("SELECT COUNT(*) FROM ss_saga"), "nothing was stored");

        SagaInstance base = saga("s-2", "k", SagaStatus.FAILED_NEEDS_ATTENTION, T0, 1);
        SagaInstance failed = new SagaInstance(base.sagaId(), base.sagaName(), base.definitionVersion(),
                base.businessKey(), base.dataType(), base.data(), base.status(), base.steps(),
                new SagaFailure("charge", "java.lang.IllegalStateException", "card\0declined"), null,
                base.createdAt(), base.updatedAt(), 1);
        store.insert(failed, new SagaTransition("s-2", 1, T0, TransitionType.SAGA_STARTED, null, 0, "detail\0text"));
        assertEquals("card\uFFFDdeclined", store.find("s-2").orElseThrow().failure().message());
        assertEquals("detail\uFFFDtext", store.history("s-2").get(0).detail());
    }

    @Test
    void aReadByAnIdOrBusinessKeyWithANulCharacterFindsNothingOnBothDatabases() {
        // A saga id or business key with U+0000 is refused by every write (above), so none is stored. A read with one
        // (a saga id taken from a reply's header, say) failed in SQL on PostgreSQL (22021, a JdbcException the bus
        // retries) and found nothing on H2; both now answer empty, as JdbcInbox.isProcessed does. So do the removals
        // of a node id with one (heartbeat refuses it: no node row has one).
        store.insert(saga("s-1", "k", SagaStatus.RUNNING, T0, 1), transition("s-1", 1, TransitionType.SAGA_STARTED));
        assertTrue(store.find("s-1\0").isEmpty());
        assertEquals(List.of(), store.findByBusinessKey("k\0"));
        assertEquals(List.of(), store.history("s-1\0"));
        store.remove("node\0a");
        assertFalse(store.remove("node\0a", T0));
        assertEquals(1, store.history("s-1").size(), "the stored saga is untouched");
    }


    @Test
    void idsDifferingOnlyInALoneSurrogateAreRefusedUpFrontOnBothDatabasesNotStoredAsOneSagaOnPostgres() {
        // PostgreSQL's driver writes a lone surrogate (a UTF-16 surrogate that is not half of a pair) as '?', and H2
        // keeps it: on PostgreSQL the sagas "s-\uD800" and "s-\uDC00" were both stored as "s-?" (the second refused as
        // a concurrent update of the first), a find by either found it, and so did a find of business key "k-\uDBFF"
        // for "k-\uD800". Both databases now refuse such a saga id, business key, step name or node id before any SQL,
        // as they refuse U+0000, and a read or a node's removal by one finds nothing; a failure message or a detail
        // with one is stored with U+FFFD in its place. A well-formed pair (an emoji) is an ordinary character.
        for (JdbcSagaStore target : List.of(store, JdbcSagaStore.builder(db.database().dataSource()).groupCommit(8).build())) {
            for (String id : List.of("s-\uD800", "s-\uDC00", "s-\uDC00\uD83D")) {
                ConfigurationException e = assertThrows(ConfigurationException.class, () -> target.insert(
                        saga(id, "k", SagaStatus.RUNNING, T0, 1), transition(id, 1, TransitionType.SAGA_STARTED)));
                assertTrue(e.getMessage().startsWith("saga id must not contain a lone surrogate (U+"), e.getMessage());
            }
            ConfigurationException key = assertThrows(ConfigurationException.class, () -> target.insert(
                    saga("s-1", "k-\uD800", SagaStatus.RUNNING, T0, 1), transition("s-1", 1, TransitionType.SAGA_STARTED)));
            assertTrue(key.getMessage().contains("business key"), key.getMessage());
            SagaInstance base = saga("s-1", "k", SagaStatus.RUNNING, T0, 1);
            SagaInstance withStep = new SagaInstance(base.sagaId(), base.sagaName(), base.definitionVersion(),
                    base.businessKey(), base.dataType(), base.data(), base.status(),
                    List.of(new StepState("re\uDC00serve", StepStatus.PENDING, 0, 0, null)), null, null,
                    base.createdAt(), base.updatedAt(), 1);
            ConfigurationException step = assertThrows(ConfigurationException.class,
                    () -> target.insert(withStep, transition("s-1", 1, TransitionType.SAGA_STARTED)));
            assertTrue(step.getMessage().contains("step name"), step.getMessage());
        }
        assertThrows(ConfigurationException.class, () -> store.heartbeat("node-\uD800", T0));
        assertEquals(0, db.database().queryLong("SELECT COUNT(*) FROM ss_saga"), "nothing was stored");
        assertEquals(0, db.database().queryLong("SELECT COUNT(*) FROM ss_saga_node"), "nothing was stored");

        store.insert(saga("s-?", "k-?", SagaStatus.RUNNING, T0, 1), transition("s-?", 1, TransitionType.SAGA_STARTED));
        store.heartbeat("node-?", T0);
        assertTrue(store.find("s-\uD800").isEmpty());
        assertEquals(List.of(), store.findByBusinessKey("k-\uDBFF"));
        assertEquals(List.of(), store.history("s-\uDC00"));
        assertFalse(store.remove("node-\uD800", T0));
        store.remove("node-\uDC00");
        assertEquals(Set.of("node-?"), store.heartbeats().keySet(), "the stored node is untouched");

        String emoji = "s-\uD83D\uDE00";
        store.insert(saga(emoji, "k-\uD83D\uDE00", SagaStatus.RUNNING, T0, 1), transition(emoji, 1, TransitionType.SAGA_STARTED));
        assertEquals(emoji, store.find(emoji).orElseThrow().sagaId());
        assertEquals(1, store.findByBusinessKey("k-\uD83D\uDE00").size());

        SagaInstance failedBase = saga("s-2", "k", SagaStatus.FAILED_NEEDS_ATTENTION, T0, 1);
        SagaInstance failed = new SagaInstance(failedBase.sagaId(), failedBase.sagaName(), failedBase.definitionVersion(),
                failedBase.businessKey(), failedBase.dataType(), failedBase.data(), failedBase.status(), failedBase.steps(),
                new SagaFailure("charge", "java.lang.IllegalStateException", "card\uD800declined \uD83D\uDE00"), null,
                failedBase.createdAt(), failedBase.updatedAt(), 1);
        store.insert(failed, new SagaTransition("s-2", 1, T0, TransitionType.SAGA_STARTED, null, 0, "detail\uDC00text"));
        assertEquals("card\uFFFDdeclined \uD83D\uDE00", store.find("s-2").orElseThrow().failure().message());
        assertEquals("detail\uFFFDtext", store.history("s-2").get(0).detail());
    }

    @Test
    void sagaDataWithALoneSurrogateInAFieldNameIsRefusedUpFrontNotStoredAsARowThatNoReadCanParse() {
        // Saga data is JSON bytes in which Jackson escapes every surrogate (\uD800): it reads such an escape back in a
        // value but refuses it in a field name ("Broken surrogate pair in field name"). Data with a map key holding a
        // lone surrogate was stored, and every read of its row failed ("unreadable data of saga"): its find, and each
        // recovery page holding it, so no saga of that page or after it was recovered, on both databases. Such data is
        // now refused before any SQL, as data that cannot be written as JSON is; a value with one, and a well-formed
        // pair (an emoji) in a key, are kept.
        for (JdbcSagaStore target : List.of(store, JdbcSagaStore.builder(db.database().dataSource()).groupCommit(8).build())) {
            for (String key : List.of("item-\uD800", "\uDC00")) {
                SagaInstance bad = withData(saga("s-1", "k", SagaStatus.RUNNING, T0, 1), Map.of(key, 1));
                ConfigurationException e = assertThrows(ConfigurationException.class,
                        () -> target.insert(bad, transition("s-1", 1, TransitionType.SAGA_STARTED)));
                assertTrue(e.getMessage().contains("cannot be written as JSON"), e.getMessage());
            }
        }
        assertEquals(0, db.database().queryLong("SELECT COUNT(*) FROM ss_saga"), "nothing was stored");

        store.insert(withData(saga("s-2", "k", SagaStatus.RUNNING, T0, 1), Map.of("item-\uD83D\uDE00", "v-\uD800")),
                transition("s-2", 1, TransitionType.SAGA_STARTED));
        JsonNode data = (JsonNode) store.find("s-2").orElseThrow().data();
        assertEquals("v-\uD800", data.get("item-\uD83D\uDE00").asText());
        assertEquals(List.of("s-2"), ids(store.findRecoveryCandidates(RecoveryQuery.firstPage(null, Set.of(), 10))));
    }

    private static SagaInstance withData(SagaInstance s, Object data) {
        return new SagaInstance(s.sagaId(), s.sagaName(), s.definitionVersion(), s.businessKey(), s.dataType(), data,
                s.status(), s.steps(), s.failure(), s.compensationFailure(), s.createdAt(), s.updatedAt(), s.version());
    }

    @Test
    void aLifecycleTopicTheOutboxCannotTakeIsRefusedByTheBuilderNotAtEverySagaWrite() {
        // lifecycleEventsToOutbox checked only that the topic was not blank: one holding U+0000, over the outbox's 255
        // characters or no legal topic name was taken, and then every saga write with a lifecycle event (the start
        // first) failed with the outbox's refusal, or the relay could not publish the row. Refused where it is given.
        for (String topic : new String[]{"saga\0events", "s".repeat(256), "saga events"}) {
            ConfigurationException e = assertThrows(ConfigurationException.class,
                    () -> JdbcSagaStore.builder(db.database().dataSource()).lifecycleEventsToOutbox(topic));
            assertTrue(e.getMessage().contains("topic"), e.getMessage());
        }
        // the longest any publish takes (Kafka's limit with the dead-letter suffix, below the outbox's column)
        JdbcSagaStore.builder(db.database().dataSource()).lifecycleEventsToOutbox("s".repeat(245)).build();
    }

    @Test
    void groupCommitLanesWithoutGroupCommitIsRefusedAtBuildNotIgnored() {
        // groupCommitLanes(k) was taken and ignored when groupCommit was left at 1 (each write its own transaction):
        // a store meant to commit up to k batches in parallel ran without group commit, and nothing said so.
        ConfigurationException e = assertThrows(ConfigurationException.class,
                () -> JdbcSagaStore.builder(db.database().dataSource()).groupCommitLanes(8).build());
        assertTrue(e.getMessage().contains("groupCommit"), e.getMessage());
        assertThrows(ConfigurationException.class,
                () -> JdbcSagaStore.builder(db.database().dataSource()).groupCommit(1).groupCommitLanes(8).build());
        JdbcSagaStore.builder(db.database().dataSource()).groupCommitLanes(8).groupCommit(16).build();
        JdbcSagaStore.builder(db.database().dataSource()).groupCommit(16).build();
    }

    @Test
    void aStartWithAnIdOrBusinessKeyTheStoreRefusesFailsWithItsConfigurationExceptionNotAsARetriableStoreFailure() {
        // The store refuses them up front with a ConfigurationException (above); the start's stage failed instead
        // with a retriable SagaException "saga store failed", logged as "resumes on recover()", though nothing
        // was stored and the same start would be refused again.
        java.util.List<String> ran = new java.util.concurrent.CopyOnWriteArrayList<>();
        SagaDefinition<OrderData> definition = SagaDefinition.builder("order", OrderData.class).dataType("order-data")
                .step("reserve").action((d, ctx) -> { ran.add(ctx.idempotencyKey()); return d; })
                .build();
        for (JdbcSagaStore target : List.of(store, JdbcSagaStore.builder(db.database().dataSource()).groupCommit(8).build())) {
            try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(target).scheduler(new VirtualScheduler())
                    .register(definition).build()) {
                for (String[] idAndKey : List.of(new String[]{"s".repeat(201), "o-1"}, new String[]{"s-1", "k".repeat(501)})) {
                    java.util.concurrent.CompletableFuture<SagaResult<OrderData>> started = orchestrator.start(definition,
                            idAndKey[0], idAndKey[1], new OrderData("o-1", 42)).toCompletableFuture();
                    java.util.concurrent.CompletionException e = assertThrows(java.util.concurrent.CompletionException.class,
                            started::join);
                    ConfigurationException refused = org.junit.jupiter.api.Assertions.assertInstanceOf(
                            ConfigurationException.class, e.getCause());
                    assertFalse(refused.isRetriable());
                }
                assertTrue(orchestrator.recover().resumed().isEmpty());
            }
        }
        assertEquals(List.of(), ran);
        assertEquals(0, db.database().queryLong("SELECT COUNT(*) FROM ss_saga"));
    }

    @Test
    void insertedSagaIsFoundWithItsDataAsJsonStepsAndHistory() {
        store.insert(saga("s-1", "o-1", SagaStatus.RUNNING, T0, 1), transition("s-1", 1, TransitionType.SAGA_STARTED));

        SagaInstance found = store.find("s-1").orElseThrow();
        assertEquals("order-data", found.dataType());
        JsonNode data = (JsonNode) found.data();
        assertEquals("o-1", data.get("orderId").asText());
        assertEquals(42, data.get("amount").asLong());
        assertEquals(saga("s-1", "o-1", SagaStatus.RUNNING, T0, 1).steps(), found.steps());
        assertEquals(T0, found.createdAt());
        assertEquals(1, found.version());
        assertNull(found.failure());
        assertEquals(List.of(transition("s-1", 1, TransitionType.SAGA_STARTED)), store.history("s-1"));
        assertTrue(store.find("unknown").isEmpty());
        assertTrue(store.history("unknown").isEmpty());
    }

    @Test
    void insertingAnExistingIdIsRefused() {
        store.insert(saga("s-1", "o-1", SagaStatus.RUNNING, T0, 1), transition("s-1", 1, TransitionType.SAGA_STARTED));
        assertThrows(ConcurrentSagaUpdateException.class, () -> store.insert(saga("s-1", "o-2", SagaStatus.RUNNING, T0, 1),
                transition("s-1", 1, TransitionType.SAGA_STARTED)));
        assertEquals(1, store.history("s-1").size());
    }

    @Test
    void updateAppliesOnlyOverThePreviousVersionAndAppendsItsTransition() {
        store.insert(saga("s-1", "o-1", SagaStatus.RUNNING, T0, 1), transition("s-1", 1, TransitionType.SAGA_STARTED));
        SagaInstance v2 = new SagaInstance("s-1", "order", 1, "o-1", "order-data", new OrderData("o-1", 42),
                SagaStatus.COMPENSATING, List.of(new StepState("reserve", StepStatus.COMPENSATING, 1, 1, null),
                new StepState("charge", StepStatus.FAILED, 3, 0, null)),
                new SagaFailure("charge", "java.lang.IllegalStateException", "card declined"), null, T0, T0.plusSeconds(2), 2);
        store.update(v2, transition("s-1", 2, TransitionType.SAGA_COMPENSATING));

        SagaInstance found = store.find("s-1").orElseThrow();
        assertEquals(SagaStatus.COMPENSATING, found.status());
        assertEquals(v2.failure(), found.failure());
        assertEquals(T0.plusSeconds(2), found.updatedAt());
        assertEquals(v2.steps(), found.steps());

        assertThrows(ConcurrentSagaUpdateException.class, () -> store.update(v2, transition("s-1", 2, TransitionType.STEP_STARTED)),
                "a second writer that read version 1");
        assertThrows(ConcurrentSagaUpdateException.class, () -> store.update(saga("gone", "x", SagaStatus.RUNNING, T0, 2),
                transition("gone", 2, TransitionType.STEP_STARTED)));
        assertEquals(List.of(TransitionType.SAGA_STARTED, TransitionType.SAGA_COMPENSATING),
                store.history("s-1").stream().map(SagaTransition::type).toList());
    }

    @Test
    void aWriterThatWaitedForAnotherOrchestratorsWriteLosesWithAConcurrentUpdateAlsoOverRepeatableReadConnections()
            throws Exception {
        // The loser of two orchestrators writing one saga "gets ConcurrentSagaUpdateException and stops"
        // (docs/durability.md). On connections whose transactions are REPEATABLE READ (a pool's transactionIsolation,
        // PostgreSQL's default_transaction_isolation) a writer that waited for the other's uncommitted write got a
        // serialization failure instead: a retriable JdbcException, a store failure left for recover(), not the stop.
        JdbcSagaStore repeatable = JdbcSagaStore.create(
                io.streamsaga.jdbc.testing.PoolSettings.repeatableRead().applyTo(db.database().dataSource()));
        repeatable.insert(saga("s-1", "o-1", SagaStatus.RUNNING, T0, 1), transition("s-1", 1, TransitionType.SAGA_STARTED));
        java.util.concurrent.ExecutorService writer = java.util.concurrent.Executors.newSingleThreadExecutor();
        try (java.sql.Connection other = db.database().dataSource().getConnection()) {
            other.setAutoCommit(false);
            try (java.sql.Statement s = other.createStatement()) { // the other orchestrator's write, not committed yet
                s.executeUpdate("UPDATE ss_saga SET version = 2 WHERE saga_id = 's-1' AND version = 1");
            }
            java.util.concurrent.Future<?> mine = writer.submit(() -> repeatable.update(
                    saga("s-1", "o-1", SagaStatus.COMPENSATING, T0, 2), transition("s-1", 2, TransitionType.SAGA_COMPENSATING)));
            org.awaitility.Awaitility.await().atMost(java.time.Duration.ofSeconds(60))
                    .until(() -> mine.isDone() || db.database().sessionsWaitingForALock() > 0);
            other.commit();

            java.util.concurrent.ExecutionException lost = assertThrows(java.util.concurrent.ExecutionException.class,
                    () -> mine.get(60, java.util.concurrent.TimeUnit.SECONDS));
            org.junit.jupiter.api.Assertions.assertInstanceOf(ConcurrentSagaUpdateException.class, lost.getCause());
        } finally {
            writer.shutdownNow();
        }
    }

    @Test
    void concurrentUpdatesOfOneVersionHaveExactlyOneWinner() throws Exception {
        store.insert(saga("s-1", "o-1", SagaStatus.RUNNING, T0, 1), transition("s-1", 1, TransitionType.SAGA_STARTED));
        int writers = 6;
        ExecutorService pool = Executors.newFixedThreadPool(writers);
        try {
            CountDownLatch start = new CountDownLatch(1);
            List<Future<Boolean>> results = new ArrayList<>();
            for (int i = 0; i < writers; i++) {
                results.add(pool.submit(() -> {
                    start.await();
                    try {
                        store.update(saga("s-1", "o-1", SagaStatus.RUNNING, T0, 2), transition("s-1", 2, TransitionType.STEP_STARTED));
                        return true;
                    } catch (ConcurrentSagaUpdateException e) {
                        return false;
                    }
                }));
            }
            start.countDown();
            int winners = 0;
            for (Future<Boolean> r : results) {
                winners += r.get(20, TimeUnit.SECONDS) ? 1 : 0;
            }
            assertEquals(1, winners);
            assertEquals(2, store.history("s-1").size());
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void queriesByStatusBusinessKeyAndAgeReturnOldestFirst() {
        store.insert(saga("s-3", "o-2", SagaStatus.COMPENSATING, T0.plusSeconds(3), 1), transition("s-3", 1, TransitionType.SAGA_STARTED));
        store.insert(saga("s-1", "o-1", SagaStatus.RUNNING, T0.plusSeconds(1), 1), transition("s-1", 1, TransitionType.SAGA_STARTED));
        store.insert(saga("s-2", "o-1", SagaStatus.COMPLETED, T0.plusSeconds(2), 1), transition("s-2", 1, TransitionType.SAGA_STARTED));
        store.insert(saga("s-4", "o-3", SagaStatus.FAILED_NEEDS_ATTENTION, T0.plusSeconds(4), 1), transition("s-4", 1, TransitionType.SAGA_STARTED));

        assertEquals(List.of("s-1", "s-2"), ids(store.findByBusinessKey("o-1")));
        assertEquals(List.of("s-1", "s-3"), ids(store.findByStatus(Set.of(SagaStatus.RUNNING, SagaStatus.COMPENSATING))));
        assertEquals(List.of("s-4"), ids(store.findByStatus(Set.of(SagaStatus.FAILED_NEEDS_ATTENTION))));
        assertEquals(List.of(), ids(store.findByStatus(Set.of())));
        assertEquals(List.of("s-1"), ids(store.findActiveCreatedBefore(T0.plusSeconds(3))));
        assertEquals(List.of("s-1", "s-3"), ids(store.findActiveCreatedBefore(T0.plusSeconds(10))));
    }

    @Test
    void recoveryCandidatesArePagedInTheDatabaseALimitedPageAtATimeWithTheSameCreationTimeOrderedById() {
        for (String id : List.of("s-5", "s-2", "s-4", "s-1", "s-3")) { // all created at once: ordered by id
            store.insert(saga(id, "o-" + id, SagaStatus.RUNNING, T0, 1), transition(id, 1, TransitionType.SAGA_STARTED));
        }
        store.insert(saga("s-0", "o-0", SagaStatus.RUNNING, T0.minusSeconds(1), 1),
                transition("s-0", 1, TransitionType.SAGA_STARTED));

        RecoveryQuery first = RecoveryQuery.firstPage(null, Set.of(), 2);
        List<SagaInstance> page1 = store.findRecoveryCandidates(first);
        List<SagaInstance> page2 = store.findRecoveryCandidates(first.next(page1.get(1), Set.of()));
        List<SagaInstance> page3 = store.findRecoveryCandidates(first.next(page2.get(1), Set.of()));

        assertEquals(List.of("s-0", "s-1"), ids(page1));
        assertEquals(List.of("s-2", "s-3"), ids(page2));
        assertEquals(List.of("s-4", "s-5"), ids(page3));
        assertEquals(List.of(), ids(store.findRecoveryCandidates(first.next(page3.get(1), Set.of()))));
    }

    @Test
    void aRecoveryPagePassesOverARowWhoseIdHoldsALoneSurrogateAsAnEarlierVersionStoredOnH2AndIsFilledUpAfterIt()
            throws Exception {
        // An earlier version stored such an id as it was on H2 (on PostgreSQL as '?'). Last on a page, it was the
        // position the next page is asked after, which RecoveryQuery.Position now refuses (it would go to SQL): the
        // recovery failed there for ever. No write of such a saga can succeed, so the page passes it over, logged, and
        // still holds the limit.
        for (int i = 1; i <= 4; i++) {
            store.insert(saga("s-" + i, null, SagaStatus.RUNNING, T0.plusSeconds(i), 1),
                    transition("s-" + i, 1, TransitionType.SAGA_STARTED));
        }
        try (java.sql.Connection c = db.database().dataSource().getConnection();
             java.sql.PreparedStatement ps = c.prepareStatement("UPDATE ss_saga SET saga_id = ? WHERE saga_id = 's-2'")) {
            ps.setString(1, "s-2\uD800");
            assertEquals(1, ps.executeUpdate());
        }
        boolean kept = kind() == TestDatabase.Kind.H2; // PostgreSQL's driver wrote it as 's-2?', an ordinary id

        RecoveryQuery query = RecoveryQuery.firstPage(null, Set.of(), 2);
        List<SagaInstance> first = store.findRecoveryCandidates(query);
        List<SagaInstance> second = store.findRecoveryCandidates(query.next(first.get(1), Set.of()));

        assertEquals(kept ? List.of("s-1", "s-3") : List.of("s-1", "s-2?"), ids(first));
        assertEquals(kept ? List.of("s-4") : List.of("s-3", "s-4"), ids(second));
    }

    @Test
    void recoveryPagesMergeRunningAndCompensatingSagasInOrderWithSubMicrosecondCreationTimesNeitherSkippedNorRepeated() {
        Instant at = T0.plusNanos(123_456_789); // more precise than the column: the position is the stored time
        List<String> expected = new ArrayList<>();
        for (int i = 0; i < 7; i++) {
            String id = "s-" + i;
            SagaStatus status = i % 3 == 0 ? SagaStatus.COMPENSATING : SagaStatus.RUNNING;
            store.insert(saga(id, "o-" + id, status, i < 4 ? at : at.plusNanos(1_000 * i + 1), 1),
                    transition(id, 1, TransitionType.SAGA_STARTED));
            expected.add(id);
        }
        store.insert(saga("done", "o-done", SagaStatus.COMPLETED, at, 1),
                transition("done", 1, TransitionType.SAGA_STARTED));

        List<String> read = new ArrayList<>();
        RecoveryQuery query = RecoveryQuery.firstPage(null, Set.of(), 2);
        while (true) {
            List<SagaInstance> page = store.findRecoveryCandidates(query);
            assertTrue(page.size() <= 2, "at most the limit: " + ids(page));
            read.addAll(ids(page));
            if (page.size() < 2) {
                break;
            }
            query = query.next(page.get(page.size() - 1), Set.of());
        }

        assertEquals(expected, read);
    }

    @Test
    void finishedSagasAreDeletedInBoundedBatchesWithTheirHistory() {
        for (int i = 0; i < 5; i++) {
            store.insert(saga("done-" + i, "o", SagaStatus.COMPLETED, T0.plusSeconds(i), 1),
                    transition("done-" + i, 1, TransitionType.SAGA_STARTED));
        }
        store.insert(saga("active", "o", SagaStatus.RUNNING, T0, 1), transition("active", 1, TransitionType.SAGA_STARTED));
        store.insert(saga("attention", "o", SagaStatus.FAILED_NEEDS_ATTENTION, T0, 1), transition("attention", 1, TransitionType.SAGA_STARTED));
        store.insert(saga("recent", "o", SagaStatus.COMPENSATED, T0.plusSeconds(100), 1), transition("recent", 1, TransitionType.SAGA_STARTED));

        assertEquals(2, store.deleteFinishedBefore(T0.plusSeconds(50), 2));
        assertTrue(store.find("done-0").isEmpty(), "oldest first");
        assertTrue(store.history("done-0").isEmpty());
        assertEquals(3, store.deleteFinishedBefore(T0.plusSeconds(50)));
        assertEquals(0, store.deleteFinishedBefore(T0.plusSeconds(50)));
        assertEquals(List.of("active", "attention", "recent"), ids(store.findByBusinessKey("o")));
        assertEquals(3, db.database().queryLong("SELECT COUNT(*) FROM ss_saga_transition"));
    }

    @Test
    void aSagaTakesOneTransactionPerActAndKeepsEveryTransitionInOrder() {
        assertTrue(store.writesTransitionBatches());
        SagaDefinition<OrderData> definition = SagaDefinition.builder("order", OrderData.class).dataType("order-data")
                .step("reserve").action((d, ctx) -> d).compensation((d, ctx) -> { })
                .step("charge").action((d, ctx) -> d).compensation((d, ctx) -> { })
                .step("ship").action((d, ctx) -> d)
                .build();
        VirtualScheduler scheduler = new VirtualScheduler();
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(scheduler).build()) {
            SagaResult<OrderData> result = orchestrator.start(definition, "s-1", "o-1", new OrderData("o-1", 42))
                    .toCompletableFuture().join();
            assertEquals(SagaOutcome.COMPLETED, result.outcome());
        }
        assertEquals(4, store.find("s-1").orElseThrow().version(), "one write before each of the three actions and the result");
        List<SagaTransition> history = store.history("s-1");
        assertEquals(List.of(TransitionType.SAGA_STARTED, TransitionType.STEP_STARTED, TransitionType.STEP_SUCCEEDED,
                TransitionType.STEP_STARTED, TransitionType.STEP_SUCCEEDED, TransitionType.STEP_STARTED,
                TransitionType.STEP_SUCCEEDED, TransitionType.SAGA_COMPLETED), history.stream().map(SagaTransition::type).toList());
        assertEquals(List.of(1L, 1L, 2L, 2L, 3L, 3L, 4L, 4L), history.stream().map(SagaTransition::version).toList());
    }

    record Booking(String id, Instant at, LocalDate day, LocalDateTime local, LocalTime time, OffsetDateTime offset,
                   ZonedDateTime zoned, Duration hold) {
        Booking later() {
            return new Booking(id, at.plusSeconds(1), day.plusDays(1), local.plusHours(1), time.plusMinutes(1),
                    offset.plusDays(1), zoned.plusDays(1), hold.plusMillis(1));
        }
    }

    @Test
    void sagaDataWithJavaTimeValuesIsStoredAndReadBackEqualWithTheDefaultMapper() throws Exception {
        SagaDefinition<Booking> definition = SagaDefinition.builder("booking", Booking.class).dataType("booking-data")
                .step("hold").action((d, ctx) -> d.later())
                .build();
        Booking start = new Booking("b-1", Instant.parse("2024-05-01T10:15:30.123456789Z"), LocalDate.of(2024, 2, 28),
                LocalDateTime.of(2024, 5, 1, 10, 15), LocalTime.of(8, 30, 15, 1_000),
                OffsetDateTime.of(2024, 5, 1, 12, 15, 30, 0, ZoneOffset.ofHours(2)),
                ZonedDateTime.of(2024, 10, 26, 2, 30, 0, 0, ZoneId.of("Europe/Paris")), Duration.ofMinutes(15));
        try (SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(store).scheduler(new VirtualScheduler()).build()) {
            SagaResult<Booking> result = orchestrator.start(definition, "s-1", "b-1", start).toCompletableFuture().join();
            assertEquals(SagaOutcome.COMPLETED, result.outcome());
        }

        JsonNode stored = (JsonNode) store.find("s-1").orElseThrow().data();
        assertEquals("2024-05-01T10:15:31.123456789Z", stored.get("at").asText(), "an ISO-8601 string");
        assertEquals(start.later(), JsonEventCodec.defaultMapper().treeToValue(stored, Booking.class));
    }

    @Test
    void aStoreThatEmitsLifecycleEventsOrStoresCommandsWritesOneTransitionAtATime() {
        for (JdbcSagaStore single : List.of(
                JdbcSagaStore.builder(db.database().dataSource()).lifecycleEventsToOutbox("saga-events").build(),
                JdbcSagaStore.builder(db.database().dataSource()).transactionalMessages().build())) {
            assertFalse(single.writesTransitionBatches(), "a lifecycle event's id ends with its version: one per write");
            SagaInstance v1 = saga("s-1", "o-1", SagaStatus.RUNNING, T0, 1);
            assertThrows(ConfigurationException.class, () -> single.insertAll(v1,
                    List.of(transition("s-1", 1, TransitionType.SAGA_STARTED), transition("s-1", 1, TransitionType.STEP_STARTED))));
            assertTrue(single.find("s-1").isEmpty(), "a refused batch leaves nothing behind");
        }
    }

    @Test
    void sagasSurviveANewStoreInstance() {
        store.insert(saga("s-1", "o-1", SagaStatus.RUNNING, T0, 1), transition("s-1", 1, TransitionType.SAGA_STARTED));
        JdbcSagaStore afterRestart = JdbcSagaStore.create(db.database().dataSource());
        assertEquals(List.of("s-1"), ids(afterRestart.findActiveCreatedBefore(T0.plusSeconds(1))));
    }

    private static List<String> ids(List<SagaInstance> sagas) {
        return sagas.stream().map(SagaInstance::sagaId).toList();
    }
}
