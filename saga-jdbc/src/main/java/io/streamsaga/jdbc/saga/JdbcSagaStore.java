package io.streamsaga.jdbc.saga;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.streamsaga.ConfigurationException;
import io.streamsaga.StreamSagaException;
import io.streamsaga.codec.EncodingException;
import io.streamsaga.codec.JsonEventCodec;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.saga.SagaLifecycleEvent;
import io.streamsaga.jdbc.JdbcException;
import io.streamsaga.jdbc.JdbcTransactions;
import io.streamsaga.jdbc.internal.Dialect;
import io.streamsaga.jdbc.internal.Columns;
import io.streamsaga.jdbc.internal.Sql;
import io.streamsaga.saga.ConcurrentSagaUpdateException;
import io.streamsaga.saga.SagaFailure;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.StepState;
import io.streamsaga.saga.StepStatus;
import io.streamsaga.saga.TransitionType;
import io.streamsaga.saga.spi.NodeRegistry;
import io.streamsaga.saga.spi.RecoveryQuery;
import io.streamsaga.saga.spi.SagaQuery;
import io.streamsaga.saga.spi.SagaStore;
import io.streamsaga.saga.spi.SagaWriteRefusedException;
import io.streamsaga.saga.spi.UnreadableSagaData;
import io.streamsaga.jdbc.internal.OutboxWriter;
import io.streamsaga.jdbc.outbox.DuplicateOutboxMessageException;
import io.streamsaga.jdbc.internal.SchemaCheck;
import io.streamsaga.spi.StoredKeys;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import javax.sql.DataSource;
import java.io.IOException;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Types;
import java.time.Instant;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.Collection;
import java.util.Collections;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Collectors;

/**
 * A {@link SagaStore} in a relational database (tables {@code ss_saga} and {@code ss_saga_transition},
 * schema version 4, the owner column since version 7): every saga survives a crash of every process, and a new orchestrator over the same
 * database resumes or compensates the unfinished ones.
 *
 * <p>Each {@link #insert} and {@link #update} is one transaction holding the instance row and its
 * transition; without a lifecycle topic or transactional messages the store takes transition batches
 * ({@link #insertAll}, {@link #updateAll}: the row and several history rows in one transaction), so a local
 * 3-step saga costs 4 transactions, not 8. Updates are version-checked ({@code UPDATE ... WHERE version = ?}), so of two orchestrators
 * driving one saga only one succeeds; the other gets {@link ConcurrentSagaUpdateException}. The saga data
 * is written as JSON under the instance's {@code dataType} (never a Java class name) with the configured
 * mapper and read back as a {@link JsonNode}, which the engine binds to the definition's data class (data that
 * cannot be written as JSON that reads back, a map key holding a lone surrogate say, is refused with a
 * {@link ConfigurationException} before anything is written).
 * Finished sagas are deleted in bounded batches ({@link #deleteFinishedBefore(Instant, int)}). Column widths:
 * saga ids, saga and step names up to 200 characters, business keys up to 500, data types up to 255; a
 * write with a longer value, or with U+0000 in one of them (PostgreSQL cannot store it) or a lone surrogate
 * (PostgreSQL's driver writes it as {@code '?'}: two saga ids differing only there would be one saga), is refused
 * with a {@link ConfigurationException} before anything is written; a read or a node's removal by a saga id, business
 * key or node id holding either so finds nothing, without a query. A failure message or a transition's detail is
 * stored cut to 4000 characters, each U+0000 and lone surrogate in it as U+FFFD.
 *
 * <p>It is also the {@link NodeRegistry} of orchestrators with saga ownership (schema version 7: the column
 * {@code ss_saga.owner} and the table {@code ss_saga_node}, one row per node, node ids up to 200 characters): a
 * heartbeat is one short transaction per node and interval. It keeps the definition versions a node advertises with
 * its heartbeat in {@code ss_saga_node.definitions} (schema version 9), as JSON.
 * Thread-safe.
 */
public final class JdbcSagaStore implements SagaStore, NodeRegistry {
    private static final Logger log = LoggerFactory.getLogger(JdbcSagaStore.class);
    private static final String HEARTBEAT_SQL = "MERGE INTO ss_saga_node t USING (VALUES (CAST(? AS VARCHAR(200)),"
            + " CAST(? AS TIMESTAMP WITH TIME ZONE), CAST(? AS VARCHAR))) AS s(node_id, heartbeat_at, definitions)"
            + " ON t.node_id = s.node_id"
            + " WHEN MATCHED THEN UPDATE SET heartbeat_at = s.heartbeat_at, definitions = s.definitions"
            + " WHEN NOT MATCHED THEN INSERT (node_id, heartbeat_at, definitions)"
            + " VALUES (s.node_id, s.heartbeat_at, s.definitions)";
    private static final String SELECT = "SELECT saga_id, saga_name, definition_version, business_key, data_type, data,"
            + " status, steps, failure_step, failure_class, failure_message, comp_failure_step, comp_failure_class,"
            + " comp_failure_message, owner, created_at, updated_at, version FROM ss_saga";
    private static final int DEFAULT_BATCH = 500;
    /** The saga name or data type of an unreadable row's instance where the row's own is blank ({@link #unreadable}). */
    private static final String UNREADABLE = "(unreadable)";
    /** The earliest instant {@link Sql#setInstant} writes: no stored time is before it. */
    private static final Instant EARLIEST_STORABLE = java.time.LocalDateTime.MIN.toInstant(java.time.ZoneOffset.UTC);

    private final JdbcTransactions tx;
    private final ObjectMapper mapper;
    /** Writes saga data with {@link #mapper}, refusing data that would not read back (see {@link #writeData}). */
    private final JsonEventCodec dataCodec;
    private final GroupCommit groupCommit;
    private final String lifecycleTopic;
    private final boolean transactionalMessages;
    /** Writes its outbox rows (lifecycle events, transactional messages); the store's own schema check covers them. */
    private final OutboxWriter outbox;
    /** The database, learnt on group commit's first batch (it picks the multi-row update on PostgreSQL). */
    private volatile Dialect dialect;
    /**
     * The unreadable {@code ss_saga_node.definitions} value of each node whose row held one at the last {@link #nodes}
     * read (node id to value), so that a row edited by hand is warned of once, not at every heartbeat; bounded by the
     * rows of that read.
     */
    private final Map<String, String> unreadableDefinitions = new java.util.concurrent.ConcurrentHashMap<>();

    private JdbcSagaStore(Builder b) {
        // Read committed whatever the pool's level: a version-checked update that waited for another orchestrator's
        // write then finds the version moved and the loser gets ConcurrentSagaUpdateException; at REPEATABLE READ it
        // got a serialization failure, a store failure left for recover() instead of the loser's stop.
        this.tx = new JdbcTransactions(b.dataSource).withIsolation(java.sql.Connection.TRANSACTION_READ_COMMITTED);
        this.mapper = b.mapper;
        this.dataCodec = new JsonEventCodec(b.mapper, TypeRegistry.empty());
        this.lifecycleTopic = b.lifecycleTopic;
        this.transactionalMessages = b.transactionalMessages;
        this.outbox = b.lifecycleTopic == null && !b.transactionalMessages ? null
                : new OutboxWriter(dataCodec);
        this.groupCommit = b.groupCommitBatch > 1 ? new GroupCommit(this, tx, b.groupCommitBatch,
                b.groupCommitLanes == null ? 4 : b.groupCommitLanes) : null;
    }

    /** A store writing saga data with the library's default JSON mapper (records, ISO dates). */
    public static JdbcSagaStore create(DataSource dataSource) {
        return builder(dataSource).build();
    }

    /** A store writing saga data with {@code mapper} (give it the orchestrator's mapper). */
    public static JdbcSagaStore create(DataSource dataSource, ObjectMapper mapper) {
        return builder(dataSource).mapper(mapper).build();
    }

    /** Starts configuring a store (mapper, group commit). */
    public static Builder builder(DataSource dataSource) {
        return new Builder(dataSource);
    }

    /**
     * One write of the store: a saga's insert or update with its transitions (one, or a batch), serialised
     * ahead of the transaction, and the messages the transition sends (empty unless transactional messages
     * are on; then there is exactly one transition). {@code withoutEvent}, null but for a needs-attention write made
     * again without its lifecycle event ({@link #write}), is that event's id, left out of the outbox.
     */
    record Write(boolean insert, SagaInstance instance, List<SagaTransition> transitions, byte[] data, byte[] steps,
                 List<Message> outgoing, String withoutEvent) {
        Write(boolean insert, SagaInstance instance, List<SagaTransition> transitions, byte[] data, byte[] steps,
              List<Message> outgoing) {
            this(insert, instance, transitions, data, steps, outgoing, null);
        }

        Write(boolean insert, SagaInstance instance, List<SagaTransition> transitions, byte[] data, byte[] steps) {
            this(insert, instance, transitions, data, steps, List.of(), null);
        }

        /** The last transition: the one a lifecycle event reports (lifecycle events come with single-transition writes). */
        SagaTransition last() {
            return transitions.get(transitions.size() - 1);
        }

        /** This write, with no message of id {@code eventId} to the outbox. */
        Write without(String eventId) {
            return new Write(insert, instance, transitions, data, steps, outgoing, eventId);
        }
    }

    /** The saga's primary key, whatever it is named. */
    private static final Sql.UniqueKey SAGA_KEY = new Sql.UniqueKey("ss_saga", "saga_id", "ss_saga_pkey");
    private static final String INSERT_SQL = "MERGE INTO ss_saga t USING (VALUES (CAST(? AS VARCHAR(200))))"
            + " AS s(saga_id) ON t.saga_id = s.saga_id WHEN NOT MATCHED THEN INSERT (saga_id, saga_name,"
            + " definition_version, business_key, data_type, data, status, steps, failure_step, failure_class,"
            + " failure_message, comp_failure_step, comp_failure_class, comp_failure_message, owner, created_at,"
            + " updated_at, version) VALUES (s.saga_id, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    private static final String UPDATE_SQL = "UPDATE ss_saga SET saga_name = ?, definition_version = ?,"
            + " business_key = ?, data_type = ?, data = ?, status = ?, steps = ?, failure_step = ?,"
            + " failure_class = ?, failure_message = ?, comp_failure_step = ?, comp_failure_class = ?,"
            + " comp_failure_message = ?, owner = ?, updated_at = ?, version = ? WHERE saga_id = ? AND version = ?";
    private static final String TRANSITION_SQL = "INSERT INTO ss_saga_transition (saga_id, version, at, type, step,"
            + " attempt, detail) VALUES (?, ?, ?, ?, ?, ?, ?)";

    /**
     * True without a lifecycle topic and transactional messages: a lifecycle event's id ends with its transition's
     * version ({@link SagaLifecycleEvent#messageId}), so a write that emits one holds one transition.
     */
    @Override
    public boolean writesTransitionBatches() {
        return lifecycleTopic == null && !transactionalMessages;
    }

    /** The instance row and its transitions' history rows, in one transaction (see {@link #writesTransitionBatches}). */
    @Override
    public void insertAll(SagaInstance instance, List<SagaTransition> transitions) {
        if (!writesTransitionBatches()) {
            SagaStore.super.insertAll(instance, transitions);
            return;
        }
        Objects.requireNonNull(instance, "instance");
        write(toWrite(true, instance, List.copyOf(transitions)));
    }

    /** The instance row and its transitions' history rows, in one transaction (see {@link #writesTransitionBatches}). */
    @Override
    public void updateAll(SagaInstance updated, List<SagaTransition> transitions) {
        if (!writesTransitionBatches()) {
            SagaStore.super.updateAll(updated, transitions);
            return;
        }
        Objects.requireNonNull(updated, "updated");
        write(toWrite(false, updated, List.copyOf(transitions)));
    }

    /** True when built with {@link Builder#transactionalMessages()}. */
    @Override
    public boolean storesOutgoingMessages() {
        return transactionalMessages;
    }

    /**
     * Writes the instance, its transition and {@code outgoing} (to the outbox) in one transaction.
     *
     * @throws ConcurrentSagaUpdateException when a saga with this id is stored already
     * @throws io.streamsaga.jdbc.CommitOutcomeUnknownException when the commit failed so that the write may be stored
     *                                       (read it back; alone or under group commit, never a conflict)
     * @throws SagaWriteRefusedException    when a row of the outbox has the id of a message of {@code outgoing} (or of
     *                                       the lifecycle event the store writes), which the same write would meet
     *                                       again: nothing of the write is stored; its message names the id and topic,
     *                                       its cause is the outbox's {@link DuplicateOutboxMessageException} (so too at
     *                                       every other insert, whose lifecycle event {@code lifecycleEventsToOutbox}
     *                                       writes). The engine fails the start with it, not retriable
     */
    @Override
    public void insert(SagaInstance instance, SagaTransition transition, List<Message> outgoing) {
        Objects.requireNonNull(instance, "instance");
        Objects.requireNonNull(transition, "transition");
        write(new Write(true, instance, List.of(transition), writeData(instance), writeSteps(instance.steps()),
                outgoing(outgoing)));
    }

    /**
     * Writes the instance, its transition and {@code outgoing} (to the outbox) in one transaction.
     *
     * @throws ConcurrentSagaUpdateException when the stored version is not the one before {@code updated}'s
     * @throws io.streamsaga.jdbc.CommitOutcomeUnknownException when the commit failed so that the write may be stored
     *                                       (read it back; alone or under group commit, never a conflict)
     * @throws SagaWriteRefusedException    when a row of the outbox has the id of a message of {@code outgoing} (or of
     *                                       the lifecycle event the store writes), which the same write would meet
     *                                       again: nothing of the write is stored; its message names the id and topic,
     *                                       its cause is the outbox's {@link DuplicateOutboxMessageException} (so too at
     *                                       every other update, whose lifecycle event {@code lifecycleEventsToOutbox}
     *                                       writes); but a {@code SAGA_NEEDS_ATTENTION} write whose own lifecycle event's
     *                                       id the outbox holds is stored without that event (logged at WARN), so that
     *                                       the saga the engine marks needing attention after a write refused for that
     *                                       id (the same version, so the same event id) does not stay running
     */
    @Override
    public void update(SagaInstance updated, SagaTransition transition, List<Message> outgoing) {
        Objects.requireNonNull(updated, "updated");
        Objects.requireNonNull(transition, "transition");
        write(new Write(false, updated, List.of(transition), writeData(updated), writeSteps(updated.steps()),
                outgoing(outgoing)));
    }

    private List<Message> outgoing(List<Message> outgoing) {
        if (outgoing.isEmpty()) {
            return List.of();
        }
        ConfigurationException.require(transactionalMessages, "this JdbcSagaStore was built without transactionalMessages(),"
                + " but was given %s outgoing message(s)", outgoing.size());
        return List.copyOf(outgoing);
    }

    @Override
    public void insert(SagaInstance instance, SagaTransition transition) {
        Objects.requireNonNull(instance, "instance");
        Objects.requireNonNull(transition, "transition");
        write(toWrite(true, instance, List.of(transition)));
    }

    @Override
    public void update(SagaInstance updated, SagaTransition transition) {
        Objects.requireNonNull(updated, "updated");
        Objects.requireNonNull(transition, "transition");
        write(toWrite(false, updated, List.of(transition)));
    }

    /** The write of an insert or update, with the data and step states serialised. */
    Write toWrite(boolean insert, SagaInstance instance, List<SagaTransition> transitions) {
        return new Write(insert, instance, transitions, writeData(instance), writeSteps(instance.steps()));
    }

    /**
     * Runs one write: in its own transaction, or batched with concurrent writes under group commit. A unique violation
     * of an insert on the saga's key is the saga id stored meanwhile by another writer ({@link ConcurrentSagaUpdateException}), unless
     * the outbox refused a message's id ({@link DuplicateOutboxMessageException}: thrown as the cause of a
     * {@link SagaWriteRefusedException}, but for a needs-attention write's own lifecycle event, written again without
     * it).
     */
    private void write(Write w) {
        checkWidths(w);
        try {
            if (groupCommit == null) {
                tx.run(c -> writeOne(c, w));
            } else {
                groupCommit.submit(w);
            }
        } catch (DuplicateOutboxMessageException e) {
            // An outgoing message's or lifecycle event's id the outbox holds, not the saga's: said as such, as a refusal
            // (SagaStore: refused writes). Thrown as it is, the engine would take it for a store failure: at a later
            // write recover() would make the same write, for ever; at a start the caller would be told to retry it.
            if (!w.insert() && w.withoutEvent() == null && w.last().type() == TransitionType.SAGA_NEEDS_ATTENTION
                    && e.messageId().equals(SagaLifecycleEvent.messageId(w.instance(), w.last().version()))) {
                // Its own lifecycle event's id, which the write the engine marks the saga needing attention after (of
                // the same version, so the same event id) met: refused, the saga would stay running for recover() to
                // meet the row for ever. The event is left out: a consumer telling events apart by id takes that row
                // for it anyway, and the saga parks for an operator as the engine means it to.
                log.warn("saga {}: the outbox holds a row with the id {} of its 'failed' lifecycle event already; the"
                        + " saga is stored needing attention without that event", w.instance().sagaId(),
                        StreamSagaException.quote(e.messageId()));
                write(w.without(e.messageId()));
                return;
            }
            throw refused(w, e);
        } catch (JdbcException e) {
            if (w.insert() && SAGA_KEY.violatedBy(e.sqlState(), e.getMessage())) { // inserted meanwhile by another writer
                throw new ConcurrentSagaUpdateException(w.instance().sagaId(), 0, 1);
            }
            throw e;
        }
    }

    /**
     * The write {@code w}, refused because the outbox holds the id of one of its messages: a
     * {@link SagaWriteRefusedException} naming the id and topic, the outbox's exception as its cause, so that the engine
     * does not retry the same write: it fails a start with it (nothing stored), and leaves a saga stored before needing
     * attention.
     */
    private static SagaWriteRefusedException refused(Write w, DuplicateOutboxMessageException e) {
        return new SagaWriteRefusedException("JdbcSagaStore refuses the " + (w.insert() ? "start" : "write") + " of saga "
                + StreamSagaException.quote(w.instance().sagaId()) + " at version " + w.instance().version()
                + ", and would refuse it again: the outbox holds a row with the id " + StreamSagaException.quote(e.messageId())
                + " of its message to topic " + e.topic() + " already (a restore of the outbox, or a row the application"
                + " wrote itself, say); repair or delete that row before " + (w.insert() ? "starting" : "retrying")
                + " the saga", e);
    }

    /**
     * Refuses a value longer than its column up front: the insert casts the saga id to its column's width,
     * which both databases cut to a prefix (an id sharing the first 200 characters of a stored one was taken
     * for it and refused as a concurrent update), and the other columns failed with "value too long".
     */
    private static void checkWidths(Write w) {
        SagaInstance s = w.instance();
        requireWidth(s.sagaId(), StoredKeys.MAX_SAGA_ID_LENGTH, "saga id");
        requireWidth(s.sagaName(), StoredKeys.MAX_SAGA_NAME_LENGTH, "saga name");
        requireWidth(s.businessKey(), StoredKeys.MAX_BUSINESS_KEY_LENGTH, "business key");
        requireWidth(s.dataType(), StoredKeys.MAX_DATA_TYPE_LENGTH, "data type");
        requireWidth(s.owner(), StoredKeys.MAX_NODE_ID_LENGTH, "owner node id");
        for (StepState step : s.steps()) {
            requireWidth(step.name(), StoredKeys.MAX_STEP_NAME_LENGTH, "step name");
        }
        for (SagaFailure failure : new SagaFailure[]{s.failure(), s.compensationFailure()}) {
            if (failure != null) {
                requireWidth(failure.step(), StoredKeys.MAX_STEP_NAME_LENGTH, "step name");
                requireWidth(failure.errorClass(), StoredKeys.MAX_FAILURE_CLASS_LENGTH, "failure class");
            }
        }
        for (SagaTransition t : w.transitions()) {
            requireWidth(t.step(), StoredKeys.MAX_STEP_NAME_LENGTH, "step name");
        }
    }

    /** Also refuses U+0000 and lone surrogates, which PostgreSQL cannot store as they are (H2 can: they differ). */
    private static void requireWidth(String value, int max, String what) {
        Columns.requireFits(value, max, what, " for JdbcSagaStore");
    }

    /** Writes one instance row and its transitions on {@code c}; refuses a stale version before changing anything. */
    void writeOne(Connection c, Write w) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(w.insert() ? INSERT_SQL : UPDATE_SQL)) {
            bindWrite(ps, w);
            if (ps.executeUpdate() != 1) {
                throw conflict(c, w);
            }
        }
        try (PreparedStatement ps = c.prepareStatement(TRANSITION_SQL)) {
            for (SagaTransition t : w.transitions()) {
                bindTransition(ps, t);
                ps.addBatch();
            }
            ps.executeBatch();
        }
        appendLifecycleEvent(c, w);
        appendOutgoing(c, w);
    }

    /**
     * Writes the transition's outgoing messages to the outbox in its transaction. A lifecycle event is
     * skipped when {@code lifecycleEventsToOutbox} writes its own, so each transition emits one event.
     */
    private void appendOutgoing(Connection c, Write w) {
        for (Message message : w.outgoing()) {
            if ((lifecycleTopic == null || !SagaLifecycleEvent.TYPE.equals(message.type()))
                    && !message.id().equals(w.withoutEvent())) {
                outbox.write(c, message);
            }
        }
    }

    /**
     * The lifecycle event names of the orchestrator's own {@code publishLifecycleEvents}, by transition and the status
     * it leaves the saga in.
     */
    private static String lifecycleEvent(TransitionType type, SagaStatus status) {
        return switch (type) {
            case SAGA_STARTED -> "started";
            case STEP_SUCCEEDED -> "step-completed";
            case SAGA_COMPENSATING -> "compensating";
            case SAGA_COMPLETED -> "completed";
            case SAGA_COMPENSATED -> "compensated";
            case SAGA_NEEDS_ATTENTION -> "failed";
            case SAGA_RESOLVED -> "resolved";
            // An operator's retry or skip that took the saga out of needing attention: compensating again, or running;
            // or a skip that left it needing attention for another failed compensation: failed again, naming that one
            case SAGA_RETRIED, COMPENSATION_SKIPPED -> switch (status) {
                case COMPENSATING -> "compensating";
                case RUNNING -> "retried";
                case FAILED_NEEDS_ATTENTION -> "failed";
                default -> null;
            };
            default -> null;
        };
    }

    /**
     * Writes the transition's lifecycle event to the outbox in the transition's own transaction. Its
     * message id is {@link SagaLifecycleEvent#messageId}, so a consumer can tell a re-sent event from a new one, and
     * a saga started under the id of a purged one does not repeat that one's ids (the outbox refused them).
     */
    private void appendLifecycleEvent(Connection c, Write w) {
        if (lifecycleTopic == null || w.withoutEvent() != null) {
            return;
        }
        String event = lifecycleEvent(w.last().type(), w.instance().status());
        if (event == null) {
            return;
        }
        SagaInstance s = w.instance();
        boolean attention = event.equals("failed") || event.equals("resolved");
        SagaFailure failure = s.compensationFailure() != null && attention ? s.compensationFailure() : s.failure();
        // A saga sent forward again keeps no failure: its retry's detail is the one it retries after, as the engine's
        // 'retried' names it
        SagaLifecycleEvent payload = new SagaLifecycleEvent(s.sagaId(), s.sagaName(), event,
                event.equals("step-completed") ? w.last().step() : null, s.status(),
                event.equals("compensating") || event.equals("compensated") || attention
                        ? (failure == null ? null : failure.toString())
                        : event.equals("retried") ? w.last().detail() : null);
        outbox.write(c, Message.builder(lifecycleTopic).id(SagaLifecycleEvent.messageId(s, w.last().version()))
                .key(s.sagaId()).type(SagaLifecycleEvent.TYPE).payload(payload)
                .header(MessageHeaders.SAGA_ID, s.sagaId()).timestamp(w.last().at()).build());
    }

    /**
     * Writes a batch on {@code c}; returns one entry per write: null when written, the conflict otherwise.
     * Inserts go first (one JDBC batch), so a saga inserted and updated in one batch keeps its order (one
     * saga's writes never share a batch anyway: its orchestrator waits for each before the next). Updates
     * are one multi-row statement on PostgreSQL and a JDBC batch on H2; the history rows one multi-row
     * INSERT: a few statements for the whole batch.
     */
    RuntimeException[] writeBatch(Connection c, List<Write> writes) throws SQLException {
        if (dialect == null) {
            dialect = Dialect.of(c);
        }
        RuntimeException[] errors = new RuntimeException[writes.size()];
        for (boolean inserts : new boolean[]{true, false}) {
            List<Integer> indexes = new ArrayList<>();
            for (int i = 0; i < writes.size(); i++) {
                if (writes.get(i).insert() == inserts) {
                    indexes.add(i);
                }
            }
            if (indexes.isEmpty()) {
                continue;
            }
            if (!inserts && dialect == Dialect.POSTGRESQL) {
                BitSet updated = MultiRowWrites.updatePostgres(c, writes, indexes);
                for (int i : indexes) {
                    if (!updated.get(i)) {
                        errors[i] = conflict(c, writes.get(i));
                    }
                }
                continue;
            }
            try (PreparedStatement ps = c.prepareStatement(inserts ? INSERT_SQL : UPDATE_SQL)) {
                for (int i : indexes) {
                    bindWrite(ps, writes.get(i));
                    ps.addBatch();
                }
                int[] counts = ps.executeBatch();
                for (int k = 0; k < counts.length; k++) {
                    if (counts[k] == 0) {
                        int i = indexes.get(k);
                        errors[i] = conflict(c, writes.get(i));
                    }
                }
            }
        }
        List<Integer> written = new ArrayList<>(writes.size());
        for (int i = 0; i < writes.size(); i++) {
            if (errors[i] == null) {
                written.add(i);
            }
        }
        MultiRowWrites.insertTransitions(c, writes, written);
        for (int i : written) {
            appendLifecycleEvent(c, writes.get(i));
            appendOutgoing(c, writes.get(i));
        }
        return errors;
    }

    /** Re-runs a write alone in its own transaction (after its batch failed as a whole). */
    void writeAlone(Write w) {
        tx.run(c -> writeOne(c, w));
    }

    private static void bindWrite(PreparedStatement ps, Write w) throws SQLException {
        SagaInstance s = w.instance();
        if (w.insert()) {
            ps.setString(1, s.sagaId());
            int i = bindColumns(ps, 2, s, w.data(), w.steps());
            Sql.setInstant(ps, i++, s.createdAt());
            Sql.setInstant(ps, i++, s.updatedAt());
            ps.setLong(i, s.version());
        } else {
            int i = bindColumns(ps, 1, s, w.data(), w.steps());
            Sql.setInstant(ps, i++, s.updatedAt());
            ps.setLong(i++, s.version());
            ps.setString(i++, s.sagaId());
            ps.setLong(i, s.version() - 1);
        }
    }

    private static ConcurrentSagaUpdateException conflict(Connection c, Write w) throws SQLException {
        String id = w.instance().sagaId();
        return new ConcurrentSagaUpdateException(id, w.insert() ? 0 : w.instance().version() - 1, storedVersion(c, id));
    }

    /** Binds saga_name ... comp_failure_message, owner from {@code first}; returns the next parameter index. */
    static int bindColumns(PreparedStatement ps, int first, SagaInstance s, byte[] data, byte[] steps)
            throws SQLException {
        int i = first;
        ps.setString(i++, s.sagaName());
        ps.setInt(i++, s.definitionVersion());
        ps.setString(i++, s.businessKey());
        ps.setString(i++, s.dataType());
        ps.setBytes(i++, data);
        ps.setString(i++, s.status().name());
        ps.setBytes(i++, steps);
        i = bindFailure(ps, i, s.failure());
        i = bindFailure(ps, i, s.compensationFailure());
        ps.setString(i++, s.owner());
        return i;
    }

    private static int bindFailure(PreparedStatement ps, int i, SagaFailure failure) throws SQLException {
        ps.setString(i++, failure == null ? null : failure.step());
        ps.setString(i++, failure == null ? null : failure.errorClass());
        ps.setString(i++, failure == null ? null : truncate(failure.message(), 4000));
        return i;
    }

    private static long storedVersion(Connection c, String sagaId) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT version FROM ss_saga WHERE saga_id = ?")) {
            ps.setString(1, sagaId);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? rs.getLong(1) : 0;
            }
        }
    }

    private static void bindTransition(PreparedStatement ps, SagaTransition t) throws SQLException {
        bindTransition(ps, 1, t);
    }

    /** Binds a transition's seven columns from {@code first}; returns the next parameter index. */
    static int bindTransition(PreparedStatement ps, int first, SagaTransition t) throws SQLException {
        int i = first;
        ps.setString(i++, t.sagaId());
        ps.setLong(i++, t.version());
        Sql.setInstant(ps, i++, t.at());
        ps.setString(i++, t.type().name());
        ps.setString(i++, t.step());
        ps.setInt(i++, t.attempt());
        ps.setString(i++, truncate(t.detail(), 4000));
        return i;
    }

    @Override
    public Optional<SagaInstance> find(String sagaId) {
        if (Columns.holdsUnstorable(sagaId)) {
            return Optional.empty(); // never written (refused): no query, which PostgreSQL would fail or answer for '?'
        }
        List<SagaInstance> found = query(SELECT + " WHERE saga_id = ?", sagaId);
        return found.isEmpty() ? Optional.empty() : Optional.of(found.get(0));
    }

    @Override
    public List<SagaInstance> findByBusinessKey(String businessKey) {
        if (Columns.holdsUnstorable(businessKey)) {
            return List.of(); // never written (refused): no query, which PostgreSQL would fail or answer for '?'
        }
        // oldest first, then by id, as findPage: the key, one value, is in the ORDER BY only so that H2 reads the index
        // ss_saga_business_key_created in its order instead of sorting every saga of the key
        return query(SELECT + " WHERE business_key = ? ORDER BY business_key, created_at, saga_id", businessKey);
    }

    @Override
    public List<SagaInstance> findByStatus(Set<SagaStatus> statuses) {
        if (statuses.isEmpty()) {
            return List.of();
        }
        return query(SELECT + " WHERE status IN (" + placeholders(statuses.size()) + ") ORDER BY created_at, saga_id",
                statuses.stream().map(Enum::name).toArray());
    }

    /**
     * Filters and pages in the database: one query per page, keyset-paged on {@code (created_at, saga_id)}, so that
     * only the instances a recovery may resume are read and decoded, a page at a time ({@link #recoveryPage}). A row
     * no instance can carry as it is stored (data or step states that do not parse; a blank saga name or data type, a
     * definition version or version below 1, a failure without class) is returned in its place with an
     * {@link UnreadableSagaData} as data ({@link #unreadable}), so that the recovery reports it unresolvable and pages
     * on past it; every other read of it ({@link #find} and the queries) fails as before. A row whose saga id is blank,
     * which no instance can carry at all, is logged at ERROR and passed over, the page filled up from after it.
     */
    @Override
    public List<SagaInstance> findRecoveryCandidates(RecoveryQuery query) {
        Instant updatedAtOrBefore = query.updatedAtOrBefore();
        if (updatedAtOrBefore != null && updatedAtOrBefore.isBefore(EARLIEST_STORABLE)) {
            return List.of(); // no instance is stored that old: its time could not have been written
        }
        List<SagaInstance> found = new ArrayList<>();
        RecoveryQuery.Position after = query.after();
        Place place = after == null ? null : new Place(after.createdAt(), after.sagaId());
        int limit = query.limit();
        while (true) {
            RecoveryRows page = recoveryRows(recoveryPage(query, place, limit));
            found.addAll(page.instances());
            if (page.rows() < limit || found.size() >= query.limit()) {
                return found;
            }
            // rows no instance can carry were passed over: the page is filled up from after its last row, so that it
            // holds the limit unless it is the last one (a short page ends the recovery's reading)
            place = page.last();
            limit = query.limit() - found.size();
        }
    }

    /**
     * A row's place in {@link RecoveryQuery#ORDER}, as {@link RecoveryQuery.Position} but for any stored saga id: the
     * place of a row passed over, whose id no position holds.
     */
    private record Place(Instant createdAt, String sagaId) {
    }

    /** The instances of one page's rows, how many rows it had, and the place of its last row. */
    private record RecoveryRows(List<SagaInstance> instances, int rows, Place last) {
    }

    /**
     * The instances of the rows of {@code page}. A row whose saga id no instance can carry (blank) or no write can
     * store (holding U+0000 or a lone surrogate: H2 rows of an earlier version) is logged at ERROR and passed over: in
     * a page, it would be the position the next page is asked after, which no {@link RecoveryQuery.Position} holds.
     */
    private RecoveryRows recoveryRows(PageQuery page) {
        return tx.inTransaction(c -> {
            try (PreparedStatement ps = c.prepareStatement(page.sql())) {
                bind(ps, page.params().toArray());
                List<SagaInstance> instances = new ArrayList<>();
                int rows = 0;
                Place last = null;
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        rows++;
                        String sagaId = rs.getString("saga_id");
                        last = new Place(Sql.getInstant(rs, "created_at"), sagaId);
                        if (sagaId.isBlank() || Columns.holdsUnstorable(sagaId)) {
                            log.error("saga recovery: the row of ss_saga with the saga id {} (created at {}) is passed"
                                    + " over, as {}; it stays in the store until repaired or deleted",
                                    StreamSagaException.quote(sagaId), last.createdAt(), sagaId.isBlank()
                                            ? "no saga instance can carry a blank id"
                                            : "its id holds U+0000 or a lone surrogate (stored by an earlier version),"
                                            + " which no write of it can store");
                        } else {
                            instances.add(read(rs, true));
                        }
                    }
                }
                return new RecoveryRows(instances, rows, last);
            }
        });
    }

    /** A statement and its parameters. */
    record PageQuery(String sql, List<Object> params) {
    }

    /**
     * The statement of one page of {@link #findRecoveryCandidates}: the first {@code limit} of each status, each read
     * in order from the index {@code ss_saga_status (status, created_at)} (an index range scan that stops at the
     * limit, the few equal creation times ordered by id on the way), then the first {@code limit} of both. One
     * statement over both statuses (a single {@code status IN (...)} range cannot be read in creation order: the
     * database would sort every unfinished saga for each page) keeps one snapshot: a saga turning compensating
     * meanwhile is read once. The position is written {@code created_at >= ? AND (created_at > ? OR saga_id > ?)}:
     * its first term bounds the index range. Each status's part is ordered by {@code status, created_at, saga_id}
     * (the same order, its status being one value): H2 reads a range in an index's order only for an
     * {@code ORDER BY} that starts with the index's columns, and otherwise reads and sorts the whole range after the
     * position for each page; PostgreSQL drops the constant column and plans it as before
     * ({@code H2RecoveryPagePlanTest}, {@code PostgresRecoveryPagePlanTest}). The page is of {@code query}'s criteria,
     * after {@code after} (null: from the first row), at most {@code limit} rows.
     */
    private static PageQuery recoveryPage(RecoveryQuery query, Place after, int limit) {
        StringBuilder filters = new StringBuilder();
        List<Object> params = new ArrayList<>();
        if (query.updatedAtOrBefore() != null) {
            filters.append(" AND updated_at <= ?");
            params.add(query.updatedAtOrBefore());
        }
        if (!query.excludedOwners().isEmpty()) {
            filters.append(" AND (owner IS NULL OR owner NOT IN (").append(placeholders(query.excludedOwners().size()))
                    .append("))");
            params.addAll(query.excludedOwners());
        }
        if (after != null) {
            filters.append(" AND created_at >= ? AND (created_at > ? OR saga_id > ?)");
            params.add(after.createdAt());
            params.add(after.createdAt());
            params.add(after.sagaId());
        }
        return statusPage(List.of(SagaStatus.RUNNING, SagaStatus.COMPENSATING), filters.toString(), params, limit);
    }

    /**
     * The statement of a page of the rows in any of {@code statuses} that match {@code filters} (each a
     * {@code " AND ..."}, of {@code params}): the first {@code limit} of each status, each read in order from the
     * index {@code ss_saga_status (status, created_at)}, then the first {@code limit} of them all, in one statement
     * (one snapshot: a row changing status meanwhile is read once), as {@link #recoveryPage} tells.
     */
    private static PageQuery statusPage(Collection<SagaStatus> statuses, String filters, List<Object> params,
                                        int limit) {
        String limited = " LIMIT " + limit;
        String statusOrder = " ORDER BY status, created_at, saga_id" + limited;
        StringBuilder sql = new StringBuilder("SELECT * FROM (");
        List<Object> all = new ArrayList<>();
        String union = "";
        for (SagaStatus status : statuses) {
            sql.append(union);
            union = " UNION ALL ";
            // the status a literal (an enum constant's name), as the index range's first column
            sql.append('(').append(SELECT).append(" WHERE status = '").append(status.name()).append('\'')
                    .append(filters).append(statusOrder).append(')');
            all.addAll(params);
        }
        sql.append(") page ORDER BY created_at, saga_id").append(limited);
        return new PageQuery(sql.toString(), all);
    }

    /**
     * Filters and pages in the database, keyset-paged on {@code (created_at, saga_id)} as {@link #findRecoveryCandidates}
     * is: with a business key, read in that order from the index {@code ss_saga_business_key_created (business_key,
     * created_at, saga_id)} of schema version 10, stopping at the page's end; without, the first {@code limit} of
     * each status, each read in order from {@code ss_saga_status (status, created_at)}, then the first {@code limit}
     * of them all ({@link #statusPage}). A last-update bound (the orchestrator's {@code findIdleLongerThan}) filters
     * the rows of the active statuses' ranges on the way, as a recovery's does. A row no instance can carry fails the
     * page, as it fails {@link #findByStatus}.
     */
    @Override
    public List<SagaInstance> findPage(SagaQuery query) {
        Instant updatedBefore = query.updatedBefore();
        if (updatedBefore != null && !updatedBefore.isAfter(EARLIEST_STORABLE)) {
            return List.of(); // no instance is stored that old: its time could not have been written
        }
        StringBuilder filters = new StringBuilder();
        List<Object> params = new ArrayList<>();
        if (updatedBefore != null) {
            filters.append(" AND updated_at < ?");
            params.add(updatedBefore);
        }
        RecoveryQuery.Position after = query.after();
        if (after != null) {
            filters.append(" AND created_at >= ? AND (created_at > ? OR saga_id > ?)");
            params.add(after.createdAt());
            params.add(after.createdAt());
            params.add(after.sagaId());
        }
        if (query.businessKey() == null) {
            PageQuery page = statusPage(query.statuses(), filters.toString(), params, query.limit());
            return query(page.sql(), page.params().toArray());
        }
        List<Object> keyed = new ArrayList<>();
        keyed.add(query.businessKey());
        String statuses = "";
        if (query.statuses().size() < SagaStatus.values().length) {
            statuses = " AND status IN (" + placeholders(query.statuses().size()) + ")";
            query.statuses().forEach(status -> keyed.add(status.name()));
        }
        keyed.addAll(params);
        // ordered by the key too, one value: H2 reads the index in its order only for an ORDER BY of its columns
        return query(SELECT + " WHERE business_key = ?" + statuses + filters
                + " ORDER BY business_key, created_at, saga_id LIMIT " + query.limit(), keyed.toArray());
    }

    /**
     * One statement, {@code SELECT status, COUNT(*) ... WHERE status IN (...) GROUP BY status}, the statuses literals
     * (enum constants' names, as {@link #statusPage} writes them), served by an index, not by reading every saga
     * retention keeps: H2 counts the entries of the statuses asked for in {@code ss_saga_status (status, created_at)}
     * of schema version 4; PostgreSQL finds their rows by a bitmap scan of it or, where its planner finds that cheaper,
     * counts every entry of version 11's compact {@code ss_saga_name_status} in an index-only scan, reading no row
     * ({@code H2RecoveryPagePlanTest}, {@code PostgresRecoveryPagePlanTest}).
     */
    @Override
    public Map<SagaStatus, Long> countByStatus(Set<SagaStatus> statuses) {
        Set<SagaStatus> asked = EnumSet.copyOf(statuses); // in the enum's order: a stable SQL text
        String in = statusLiterals(asked);
        return tx.inTransaction(c -> {
            Map<SagaStatus, Long> counts = new EnumMap<>(SagaStatus.class);
            asked.forEach(status -> counts.put(status, 0L));
            try (PreparedStatement ps = c.prepareStatement("SELECT status, COUNT(*) FROM ss_saga WHERE status IN ("
                    + in + ") GROUP BY status");
                 ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    counts.put(SagaStatus.valueOf(rs.getString(1)), rs.getLong(2));
                }
            }
            return Collections.unmodifiableMap(counts);
        });
    }

    /** {@code statuses} as SQL literals, {@code 'RUNNING', 'COMPENSATING'}, in their set's order. */
    private static String statusLiterals(Set<SagaStatus> statuses) {
        return statuses.stream().map(status -> "'" + status.name() + "'").collect(Collectors.joining(", "));
    }

    /**
     * One statement, {@code SELECT saga_name, status, COUNT(*) ... WHERE status IN (...) GROUP BY saga_name, status},
     * as {@link #countByStatus}'s, served by the index of schema version 11 that holds the name beside the status, so
     * that no saga's row is read for its name: H2 reads the entries of the statuses asked for from
     * {@code ss_saga_status_name (status, saga_name)}; PostgreSQL counts in an index-only scan of
     * {@code ss_saga_name_status (saga_name, status)}, in its order, the entries of other statuses passed over in the
     * index (led by the name so that the pages of a status keep to version 4's status index), unless finding the few
     * sagas of the statuses asked for by the status index and reading their rows costs less (a few unfinished sagas
     * among millions kept) ({@code H2RecoveryPagePlanTest}, {@code PostgresRecoveryPagePlanTest}).
     */
    @Override
    public Map<String, Map<SagaStatus, Long>> countBySagaAndStatus(Set<SagaStatus> statuses) {
        Set<SagaStatus> asked = EnumSet.copyOf(statuses); // in the enum's order: a stable SQL text
        String in = statusLiterals(asked);
        return tx.inTransaction(c -> {
            Map<String, Map<SagaStatus, Long>> counts = new TreeMap<>();
            try (PreparedStatement ps = c.prepareStatement("SELECT saga_name, status, COUNT(*) FROM ss_saga"
                    + " WHERE status IN (" + in + ") GROUP BY saga_name, status");
                 ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    counts.computeIfAbsent(rs.getString(1), name -> {
                        Map<SagaStatus, Long> ofName = new EnumMap<>(SagaStatus.class);
                        asked.forEach(status -> ofName.put(status, 0L));
                        return ofName;
                    }).put(SagaStatus.valueOf(rs.getString(2)), rs.getLong(3));
                }
            }
            counts.replaceAll((name, ofName) -> Collections.unmodifiableMap(ofName));
            return Collections.unmodifiableMap(counts);
        });
    }

    @Override
    public List<SagaInstance> findActiveCreatedBefore(Instant createdBefore) {
        return query(SELECT + " WHERE status IN ('RUNNING', 'COMPENSATING') AND created_at < ? ORDER BY created_at, saga_id",
                createdBefore);
    }

    @Override
    public List<SagaTransition> history(String sagaId) {
        if (Columns.holdsUnstorable(sagaId)) {
            return List.of(); // never written (refused): no query, which PostgreSQL would fail or answer for '?'
        }
        return tx.inTransaction(c -> {
            try (PreparedStatement ps = c.prepareStatement("SELECT saga_id, version, at, type, step, attempt, detail"
                    + " FROM ss_saga_transition WHERE saga_id = ? ORDER BY seq")) {
                ps.setString(1, sagaId);
                List<SagaTransition> result = new ArrayList<>();
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        result.add(new SagaTransition(rs.getString("saga_id"), rs.getLong("version"),
                                Sql.getInstant(rs, "at"), TransitionType.valueOf(rs.getString("type")),
                                rs.getString("step"), rs.getInt("attempt"), rs.getString("detail")));
                    }
                }
                return result;
            }
        });
    }

    /** Deletes every finished saga last updated before {@code cutoff}, batch after bounded batch. */
    @Override
    public int deleteFinishedBefore(Instant cutoff) {
        Objects.requireNonNull(cutoff, "cutoff");
        int total = 0;
        while (true) {
            int deleted = deleteFinishedBefore(cutoff, DEFAULT_BATCH);
            total += deleted;
            if (deleted < DEFAULT_BATCH) {
                return total;
            }
        }
    }

    /**
     * Deletes at most {@code maxSagas} finished sagas (completed, compensated, resolved) last updated before
     * {@code cutoff}, oldest first, with their history, in one short transaction; returns how many.
     */
    @Override
    public int deleteFinishedBefore(Instant cutoff, int maxSagas) {
        Objects.requireNonNull(cutoff, "cutoff"); // as NULL in SQL it would match no row: nothing deleted
        ConfigurationException.require(maxSagas > 0, "maxSagas must be positive, but was %s", maxSagas);
        return tx.inTransaction(c -> {
            List<String> ids = new ArrayList<>();
            try (PreparedStatement ps = c.prepareStatement("SELECT saga_id FROM ss_saga WHERE status IN"
                    + " ('COMPLETED', 'COMPENSATED', 'RESOLVED') AND updated_at < ? ORDER BY updated_at LIMIT ? FOR UPDATE")) {
                Sql.setInstant(ps, 1, cutoff);
                ps.setInt(2, maxSagas);
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        ids.add(rs.getString(1));
                    }
                }
            }
            if (ids.isEmpty()) {
                return 0;
            }
            String in = " WHERE saga_id IN (" + placeholders(ids.size()) + ")";
            for (String table : List.of("ss_saga_transition", "ss_saga")) {
                try (PreparedStatement ps = c.prepareStatement("DELETE FROM " + table + in)) {
                    for (int i = 0; i < ids.size(); i++) {
                        ps.setString(i + 1, ids.get(i));
                    }
                    ps.executeUpdate();
                }
            }
            return ids.size();
        });
    }

    @Override
    public void heartbeat(String nodeId, Instant at) {
        heartbeat(nodeId, at, null);
    }

    /** Writes the heartbeat with {@code definitions} as JSON in {@code ss_saga_node.definitions} (schema version 9). */
    @Override
    public void heartbeat(String nodeId, Instant at, Map<String, Set<Integer>> definitions) {
        requireWidth(Objects.requireNonNull(nodeId, "nodeId"), StoredKeys.MAX_NODE_ID_LENGTH, "node id");
        Objects.requireNonNull(at, "at");
        String advertised;
        try {
            // through the record: sorted, and its saga names checked not null
            advertised = definitions == null ? null
                    : mapper.writeValueAsString(new NodeHeartbeat(at, definitions).definitions());
        } catch (IOException e) {
            throw new IllegalArgumentException("the definitions of node " + StreamSagaException.quote(nodeId)
                    + " cannot be written as JSON: " + e.getMessage(), e);
        }
        tx.run(c -> {
            try (PreparedStatement ps = c.prepareStatement(HEARTBEAT_SQL)) {
                ps.setString(1, nodeId);
                Sql.setInstant(ps, 2, at);
                ps.setString(3, advertised);
                ps.executeUpdate();
            }
        });
    }

    @Override
    public Map<String, NodeHeartbeat> nodes() {
        return tx.inTransaction(c -> {
            Map<String, NodeHeartbeat> result = new HashMap<>();
            try (PreparedStatement ps = c.prepareStatement("SELECT node_id, heartbeat_at, definitions FROM ss_saga_node");
                 ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    String node = rs.getString("node_id");
                    result.put(node, new NodeHeartbeat(Sql.getInstant(rs, "heartbeat_at"),
                            readDefinitions(node, rs.getString("definitions"))));
                }
            }
            unreadableDefinitions.keySet().retainAll(result.keySet()); // a removed node's row: forgotten
            return Map.copyOf(result);
        });
    }

    /**
     * A node's advertised definitions, or null for none (a node of an earlier release) or a value no node of this
     * release wrote (edited by hand: not JSON, not an object of arrays of versions, or a version not a JSON integer in
     * int range, such as {@code 1.5}), logged at WARN when first read for that node, at DEBUG while it stays: the start
     * guard then takes that node's versions as unknown.
     */
    private Map<String, Set<Integer>> readDefinitions(String node, String json) {
        if (json == null) {
            unreadableDefinitions.remove(node);
            return null;
        }
        try {
            JsonNode tree = mapper.readTree(json);
            if (tree != null && tree.isObject()) {
                Map<String, Set<Integer>> definitions = new HashMap<>();
                boolean readable = true;
                for (Map.Entry<String, JsonNode> saga : tree.properties()) {
                    Set<Integer> versions = new java.util.HashSet<>();
                    readable &= saga.getValue().isArray();
                    for (JsonNode version : saga.getValue()) {
                        // canConvertToInt() alone takes 1.5, which asInt() truncates to 1
                        readable &= version.isIntegralNumber() && version.canConvertToInt();
                        versions.add(version.asInt());
                    }
                    definitions.put(saga.getKey(), versions);
                }
                if (readable) {
                    unreadableDefinitions.remove(node);
                    return definitions;
                }
            }
        } catch (IOException e) {
            // logged below, as a value of the wrong shape
        }
        // every node reads every row at each heartbeat: warned of once per node and value, not at each heartbeat
        boolean first = !json.equals(unreadableDefinitions.put(node, json));
        if (first || log.isDebugEnabled()) {
            String format = "saga ownership: the definitions advertised by node {} are unreadable ({}): taken as unknown";
            if (first) {
                log.warn(format, StreamSagaException.quote(node), StreamSagaException.quote(json));
            } else {
                log.debug(format, StreamSagaException.quote(node), StreamSagaException.quote(json));
            }
        }
        return null;
    }

    @Override
    public Map<String, Instant> heartbeats() {
        return tx.inTransaction(c -> {
            Map<String, Instant> result = new HashMap<>();
            try (PreparedStatement ps = c.prepareStatement("SELECT node_id, heartbeat_at FROM ss_saga_node");
                 ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    result.put(rs.getString("node_id"), Sql.getInstant(rs, "heartbeat_at"));
                }
            }
            return Map.copyOf(result);
        });
    }

    @Override
    public void remove(String nodeId) {
        Objects.requireNonNull(nodeId, "nodeId");
        if (Columns.holdsUnstorable(nodeId)) {
            return; // heartbeat refuses such a node id: no row has it
        }
        tx.run(c -> {
            try (PreparedStatement ps = c.prepareStatement("DELETE FROM ss_saga_node WHERE node_id = ?")) {
                ps.setString(1, nodeId);
                ps.executeUpdate();
            }
        });
    }

    @Override
    public boolean remove(String nodeId, Instant at) {
        Objects.requireNonNull(nodeId, "nodeId");
        Objects.requireNonNull(at, "at");
        if (Columns.holdsUnstorable(nodeId)) {
            return false; // heartbeat refuses such a node id: no row has it
        }
        return tx.inTransaction(c -> {
            try (PreparedStatement ps = c.prepareStatement(
                    // rounded to the column as the heartbeat's write rounded it (H2 compares a parameter unrounded)
                    "DELETE FROM ss_saga_node WHERE node_id = ? AND heartbeat_at = CAST(? AS TIMESTAMP WITH TIME ZONE)")) {
                ps.setString(1, nodeId);
                Sql.setInstant(ps, 2, at);
                return ps.executeUpdate() > 0;
            }
        });
    }

    private List<SagaInstance> query(String sql, Object... params) {
        return tx.inTransaction(c -> {
            try (PreparedStatement ps = c.prepareStatement(sql)) {
                bind(ps, params);
                List<SagaInstance> result = new ArrayList<>();
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        result.add(read(rs, false));
                    }
                }
                return result;
            }
        });
    }

    private static void bind(PreparedStatement ps, Object[] params) throws SQLException {
        for (int i = 0; i < params.length; i++) {
            if (params[i] instanceof Instant instant) {
                Sql.setInstant(ps, i + 1, instant);
            } else {
                ps.setObject(i + 1, params[i], Types.VARCHAR);
            }
        }
    }

    /**
     * The instance of the current row. A row no instance can carry as it is stored (data or step states that do not
     * parse; a blank saga name or data type, a definition version or version below 1, a failure without class: corrupt
     * outside its JSON) fails the read, unless {@code marked}: then it is {@link #unreadable}.
     */
    private SagaInstance read(ResultSet rs, boolean marked) throws SQLException {
        String sagaId = rs.getString("saga_id");
        try {
            byte[] bytes = rs.getBytes("data");
            JsonNode tree = bytes == null ? null : readData(sagaId, bytes);
            return new SagaInstance(sagaId, rs.getString("saga_name"), rs.getInt("definition_version"),
                    rs.getString("business_key"), rs.getString("data_type"), tree == null || tree.isNull() ? null : tree,
                    SagaStatus.valueOf(rs.getString("status")), readSteps(sagaId, rs.getBytes("steps")),
                    readFailure(rs, "failure_"), readFailure(rs, "comp_failure_"), Sql.getInstant(rs, "created_at"),
                    Sql.getInstant(rs, "updated_at"), rs.getLong("version"), rs.getString("owner"));
        } catch (UnreadableJson e) {
            if (!marked) {
                throw e;
            }
            return unreadable(rs, sagaId, e.getMessage());
        } catch (RuntimeException e) { // a field an instance (or a failure) refuses, a status the enum does not know
            if (!marked) {
                throw e;
            }
            return unreadable(rs, sagaId, "unreadable row of saga " + sagaId + ": " + e.getMessage());
        }
    }

    /**
     * The current row as an instance whose data is an {@link UnreadableSagaData} saying why: its id, status, owner,
     * times (its place in the pages) and business key as stored, no steps and no failures, its saga name, data type,
     * definition version and version as stored where an instance can carry them, else {@value #UNREADABLE} and 1.
     */
    private static SagaInstance unreadable(ResultSet rs, String sagaId, String reason) throws SQLException {
        String sagaName = rs.getString("saga_name");
        String dataType = rs.getString("data_type");
        int definitionVersion = rs.getInt("definition_version");
        long version = rs.getLong("version");
        return new SagaInstance(sagaId, sagaName == null || sagaName.isBlank() ? UNREADABLE : sagaName,
                Math.max(definitionVersion, 1), rs.getString("business_key"),
                dataType == null || dataType.isBlank() ? UNREADABLE : dataType, new UnreadableSagaData(reason),
                SagaStatus.valueOf(rs.getString("status")), List.of(), null, null, Sql.getInstant(rs, "created_at"),
                Sql.getInstant(rs, "updated_at"), Math.max(version, 1), rs.getString("owner"));
    }

    /** A row's data or step states that do not parse (a failure of the row, not of the database). */
    private static final class UnreadableJson extends SQLException {
        private static final long serialVersionUID = 1L;

        UnreadableJson(String message, Exception cause) {
            super(message, cause);
        }
    }

    /** The data's JSON tree. */
    private JsonNode readData(String sagaId, byte[] bytes) throws UnreadableJson {
        try {
            return mapper.readTree(bytes);
        } catch (IOException e) {
            throw new UnreadableJson("unreadable data of saga " + sagaId + ": " + e.getMessage(), e);
        }
    }

    private static SagaFailure readFailure(ResultSet rs, String prefix) throws SQLException {
        String errorClass = rs.getString(prefix + "class");
        return errorClass == null ? null
                : new SagaFailure(rs.getString(prefix + "step"), errorClass, rs.getString(prefix + "message"));
    }

    /**
     * The data as JSON bytes, by {@link JsonEventCodec#encode}: data that would not read back (a map key holding a lone
     * surrogate, an escape Jackson reads back in a value but refuses in a field name) is refused here, before any SQL,
     * rather than stored as a row that no read (find, a recovery page) could parse.
     */
    private byte[] writeData(SagaInstance instance) {
        try {
            Object data = instance.data();
            // encode passes a byte[] through as it is; the mapper writes one as a base64 string, as it always did
            return dataCodec.encode(data instanceof byte[] raw ? mapper.getNodeFactory().binaryNode(raw) : data);
        } catch (EncodingException e) {
            throw new ConfigurationException("data of saga " + instance.sagaId() + " (type '" + instance.dataType()
                    + "') cannot be written as JSON: " + e.getMessage());
        }
    }

    private byte[] writeSteps(List<StepState> steps) {
        ArrayNode array = mapper.createArrayNode();
        for (StepState step : steps) {
            ObjectNode node = array.addObject();
            node.put("name", step.name());
            node.put("status", step.status().name());
            node.put("attempts", step.attempts());
            node.put("compensationAttempts", step.compensationAttempts());
            node.put("dueAt", step.dueAt() == null ? null : step.dueAt().toString());
        }
        try {
            return mapper.writeValueAsBytes(array);
        } catch (IOException e) {
            throw new IllegalStateException("step states cannot be written as JSON", e);
        }
    }

    /** The step states. */
    private List<StepState> readSteps(String sagaId, byte[] bytes) throws UnreadableJson {
        try {
            List<StepState> steps = new ArrayList<>();
            for (JsonNode node : mapper.readTree(bytes)) {
                JsonNode due = node.get("dueAt");
                steps.add(new StepState(node.get("name").asText(), StepStatus.valueOf(node.get("status").asText()),
                        node.get("attempts").asInt(), node.get("compensationAttempts").asInt(),
                        due == null || due.isNull() ? null : Instant.parse(due.asText())));
            }
            return steps;
        } catch (IOException | RuntimeException e) { // a field missing (null) or not a status or an instant
            throw new UnreadableJson("unreadable step states of saga " + sagaId + ": " + e, e);
        }
    }

    private static String placeholders(int n) {
        return java.util.stream.Stream.generate(() -> "?").limit(n).collect(Collectors.joining(", "));
    }

    /** Free text (a failure message, a detail): cut to the column, a U+0000 or lone surrogate stored as U+FFFD. */
    private static String truncate(String s, int max) {
        return Columns.text(s, max);
    }

    /** Builds a {@link JdbcSagaStore}; not thread-safe. */
    public static final class Builder {
        private final DataSource dataSource;
        private ObjectMapper mapper = JsonEventCodec.defaultMapper();
        private int groupCommitBatch = 1;
        /** Null until given: then it needs group commit, which it configures. */
        private Integer groupCommitLanes;
        private String lifecycleTopic;
        private boolean transactionalMessages;

        private Builder(DataSource dataSource) {
            this.dataSource = Objects.requireNonNull(dataSource, "dataSource");
        }

        /** The JSON mapper for saga data (give it the orchestrator's mapper). */
        public Builder mapper(ObjectMapper mapper) {
            this.mapper = Objects.requireNonNull(mapper, "mapper");
            return this;
        }

        /**
         * Group commit: concurrent {@code insert}/{@code update} calls (from different sagas, on different
         * threads) are written together, up to {@code maxBatch} per transaction and with one statement per
         * kind (multi-row update on PostgreSQL, multi-row history insert), so one commit, one log flush and a
         * few round trips serve many transitions. Each call still returns only after its transition is
         * committed, and a version conflict fails only its own call. Worth it with many sagas in flight
         * (see docs/benchmarks.md); 1 (the default) writes each in its own transaction.
         */
        public Builder groupCommit(int maxBatch) {
            ConfigurationException.require(maxBatch >= 1, "group commit batch must be 1 or more, but was %s", maxBatch);
            this.groupCommitBatch = maxBatch;
            return this;
        }

        /**
         * How many group-commit batches may be in flight at once, on as many connections (default 4). A
         * saga always uses the same lane, so its writes stay in order. Only with {@link #groupCommit} above 1:
         * without it {@link #build()} refuses it rather than ignore it.
         */
        public Builder groupCommitLanes(int lanes) {
            ConfigurationException.require(lanes >= 1, "group commit lanes must be 1 or more, but was %s", lanes);
            this.groupCommitLanes = lanes;
            return this;
        }

        /**
         * Writes a {@link SagaLifecycleEvent} ({@code started}, {@code step-completed}, {@code compensating},
         * {@code completed}, {@code compensated}, {@code failed}, {@code resolved}, and for an operator's retry or skip
         * that takes a saga out of needing attention {@code compensating} again or {@code retried}, for a skip that
         * leaves another compensation failed {@code failed} again, as the orchestrator's) for each matching transition to the
         * transactional outbox, in the transition's own transaction, for an {@code OutboxRelay} to publish
         * on {@code topic}: no event is lost or invented by a crash between the two. Use it instead of the
         * orchestrator's {@code publishLifecycleEvents}, which publishes after the write.
         *
         * @param topic a legal topic name (letters, digits, {@code .}, {@code _}, {@code -}) of at most 255
         *              characters, the outbox's width; refused here otherwise, not at every saga write
         */
        public Builder lifecycleEventsToOutbox(String topic) {
            this.lifecycleTopic = OutboxWriter.requireTopic(topic, "lifecycle topic");
            return this;
        }

        /**
         * Transactional messages: the orchestrator hands each transition's outgoing messages (remote-step
         * commands, and lifecycle events when it has {@code publishLifecycleEvents}) to this store, which
         * writes them to the transactional outbox in the transition's own transaction; an {@code OutboxRelay}
         * publishes them, at least once and in order per saga. A crash can then neither lose a command whose
         * step is stored as waiting, nor send one whose transition was not stored. The orchestrator stops
         * publishing them itself (and does not re-send a waiting step's command on recovery: the outbox has it),
         * so a relay must run for sagas with remote steps to progress.
         */
        public Builder transactionalMessages() {
            this.transactionalMessages = true;
            return this;
        }

        /**
         * The store.
         *
         * @throws ConfigurationException when {@link #groupCommitLanes} was given without {@link #groupCommit} above 1
         *                                (each write in its own transaction: the lanes would be ignored), or the schema
         *                                is older
         */
        public JdbcSagaStore build() {
            ConfigurationException.require(groupCommitLanes == null || groupCommitBatch > 1,
                    "groupCommitLanes(%s) is for group commit, but groupCommit is %s (each write in its own transaction):"
                            + " set groupCommit(n) above 1, or leave groupCommitLanes out", groupCommitLanes, groupCommitBatch);
            SchemaCheck.requireMigrated(dataSource, "JdbcSagaStore");
            return new JdbcSagaStore(this);
        }
    }
}
