package io.streamsaga.jdbc.outbox;

import io.streamsaga.jdbc.internal.Sql;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.streamsaga.ConfigurationException;
import io.streamsaga.StreamSagaException;
import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.EventCodec;
import io.streamsaga.codec.EventTypeId;
import io.streamsaga.jdbc.JdbcException;
import io.streamsaga.jdbc.JdbcTransactions;
import io.streamsaga.message.Message;
import io.streamsaga.jdbc.internal.OutboxWriter;
import io.streamsaga.jdbc.internal.SchemaCheck;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import javax.sql.DataSource;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The transactional outbox: the application writes an outgoing message in the same JDBC transaction as
 * its own entity, so either both are committed or neither is. An {@link OutboxRelay} publishes the
 * committed rows later, at least once and in order per key.
 *
 * <pre>{@code
 * try (Connection c = dataSource.getConnection()) {
 *     c.setAutoCommit(false);
 *     insertOrder(c, order);                                     // the application's own table
 *     outbox.append(c, "order-created", order.id(), new OrderCreated(order.id(), order.total()));
 *     c.commit();                                                // both, or neither
 * }
 * }</pre>
 *
 * <p>Payloads are stored encoded (bytes) with the codec given to the builder, so the stored row does not
 * depend on Java class names; the type id and version go in their own columns. {@link #append} never
 * commits, rolls back or closes the caller's connection. Thread-safe.
 */
public final class JdbcOutbox {
    static final TypeReference<Map<String, String>> HEADERS = new TypeReference<>() { };
    private static final Logger log = LoggerFactory.getLogger(JdbcOutbox.class);
    /** The rows {@link #unreadableRows} reads at a time, and a listing after its first page (see {@link #scan}). */
    private static final int UNREADABLE_PAGE = 100;
    /** How many poison rows' sequences an outbox remembers having warned of (see {@link #rows(OutboxRow.Status, long, int)}). */
    private static final int WARNED_ROWS = 1000;

    private final DataSource dataSource;
    private final JdbcTransactions tx;
    private final EventCodec codec;
    private final Clock clock;
    /** The bus whose handled message ({@code currentMessage()}) an append inside a handler inherits from; or null. */
    private final EventBus bus;
    private final OutboxWriter writer;
    private final ObjectMapper json = new ObjectMapper();
    /**
     * The sequences of the poison rows a listing warned of, the last {@link #WARNED_ROWS} (eldest dropped first), so
     * that each is logged at WARN once rather than at every listing; guarded by itself.
     */
    private final java.util.Set<Long> warned = java.util.Collections.newSetFromMap(new java.util.LinkedHashMap<>() {
        private static final long serialVersionUID = 1L;

        @Override
        protected boolean removeEldestEntry(Map.Entry<Long, Boolean> eldest) {
            return size() > WARNED_ROWS;
        }
    });

    private JdbcOutbox(Builder b) {
        this.dataSource = b.dataSource;
        this.tx = new JdbcTransactions(b.dataSource);
        this.codec = b.codec != null ? b.codec : b.bus.codec();
        this.writer = new OutboxWriter(codec);
        this.clock = b.clock;
        this.bus = b.bus;
    }

    /** Starts an outbox over the tables of {@code dataSource} (created by {@code JdbcSchema.migrate()}). */
    public static Builder builder(DataSource dataSource) {
        return new Builder(dataSource);
    }

    /**
     * Writes {@code event} as a message to {@code topic}, under the type id and version registered for its
     * class, in the caller's transaction.
     *
     * @param key the partitioning key, or null for none
     * @return the message written (its id is the idempotency key consumers see)
     * @throws ConfigurationException before any SQL when an argument but the key is null, or the topic or key does
     *                                not fit its column or the key holds U+0000 or a lone surrogate, as
     *                                {@link #append(Connection, Message)}
     */
    public Message append(Connection connection, String topic, String key, Object event) {
        return append(connection, topic, key, event, Map.of());
    }

    /**
     * As {@link #append(Connection, String, String, Object)}, with extra headers; inside a handler of the outbox's
     * bus they win over the headers inherited from the handled message.
     *
     * <p>A null header value is refused, as {@link Message} refuses one: it does not remove an inherited header
     * (such as the correlation id); to write a message without one, build it and use
     * {@link #append(Connection, Message)}.
     *
     * @throws ConfigurationException before any SQL (the caller's transaction can go on) when an argument but the key
     *                                is null ({@code Map.of()} for no headers), the connection is in auto-commit mode,
     *                                a header name or value is null, a
     *                                header name holds a lone surrogate, or the topic or key does not fit its column
     */
    public Message append(Connection connection, String topic, String key, Object event, Map<String, String> headers) {
        requireArgument(connection, "connection");
        requireArgument(topic, "topic");
        requireArgument(event, "event");
        ConfigurationException.require(headers != null, "headers must not be null (Map.of() for none)");
        Sql.requireTransaction(connection, "JdbcOutbox.append");
        EventTypeId id = codec.types().idOf(event.getClass());
        Message message = Message.builder(topic).key(key).type(id.type()).version(id.version())
                .payload(event).headers(withCause(headers)).timestamp(clock.instant()).build();
        writer.write(connection, message);
        return message;
    }

    /**
     * Refuses a null argument of {@code append} as {@code EventBus.publish} refuses its own: bad input to the
     * outbox's publish gets the same typed error, naming the argument, before any SQL.
     */
    private static void requireArgument(Object value, String name) {
        ConfigurationException.require(value != null, "%s must not be null", name);
    }

    /**
     * {@code headers} with, inside a handler of the outbox's bus, what a publish there would inherit from the message
     * handled: its correlation id (else its id), saga id and traceparent, and its id as causation id; the
     * application's headers win.
     */
    private Map<String, String> withCause(Map<String, String> headers) {
        Message cause = bus == null ? null : bus.currentMessage().orElse(null);
        if (cause == null) {
            return headers;
        }
        Map<String, String> all = cause.inheritedHeaders();
        all.putAll(headers);
        return all;
    }

    /**
     * Writes a fully built message in the caller's transaction. Its payload may be the event object (encoded
     * here) or already encoded bytes. A message id already in the outbox is rejected by the unique key
     * ({@link DuplicateOutboxMessageException}).
     *
     * <p>Inside a handler of the bus given to {@link Builder#eventBus}, the message written also carries what it
     * inherits from the message handled, as with the bus's {@code publish(Message)}: the handled message's
     * correlation id (else its id), saga id and traceparent, and its id as causation id; headers the message
     * already has win. Outside a handler, or with an outbox built with only a codec, it is written as given
     * (a relay publishing through a bus then adds the correlation id a publish adds outside a handler: the
     * message's own id).
     *
     * @throws ConfigurationException before any SQL (the caller's transaction can go on) when {@code connection} or
     *                                {@code message} is null, or {@code connection} is in auto-commit mode (no
     *                                transaction of the caller's: the row would be committed alone, and published
     *                                whatever became of the rest; taken when PostgreSQL's driver says a transaction is
     *                                open on it, an XA branch say), or a value does not fit its column: a message id over
     *                                500 characters, a topic or event type over 255, a
     *                                key over 1000, or an id, key or type holding U+0000 (PostgreSQL cannot store it)
     *                                or a lone surrogate (PostgreSQL's driver writes it as {@code '?'}: two ids
     *                                differing only there would be one); a header value may hold either: the headers
     *                                are stored as JSON, where both are escapes; a header name may hold a NUL but not a
     *                                lone surrogate, whose escape JSON does not read back in a name
     * @throws ConfigurationException before any SQL when the payload is an object of a class the codec's registry
     *                                knows but the message's type or version is not the one registered for it (as the
     *                                bus's {@code publish(Message)} refuses it, see
     *                                {@link io.streamsaga.codec.TypeRegistry#requireRegisteredTypeOf}): the relay would
     *                                send the encoded payload under the wrong type id, and consumers would upcast it as
     *                                another version; bytes, JSON trees and classes the registry does not know are
     *                                written as given
     * @throws io.streamsaga.codec.EncodingException before any SQL when the payload cannot be encoded as JSON that
     *                                reads back (a lone surrogate in a field name: see {@link io.streamsaga.codec.JsonEventCodec#encode})
     * @throws DuplicateOutboxMessageException when a row of the outbox has the message's id already; the caller should
     *                                roll back
     * @throws JdbcException          when the insert fails otherwise; the caller should roll back
     */
    public void append(Connection connection, Message message) {
        requireArgument(connection, "connection");
        requireArgument(message, "message");
        Sql.requireTransaction(connection, "JdbcOutbox.append");
        // As the bus's publish(Message): the relay sends the row under its stored type and version, whatever its bytes.
        codec.types().requireRegisteredTypeOf(message);
        Map<String, String> headers = withCause(message.headers());
        writer.write(connection, headers == message.headers() ? message : message.withHeaders(headers));
    }

    /** Rows not yet published. */
    public long pendingCount() {
        return count("PENDING");
    }

    /** Rows the transport rejected with a non-retriable error (kept for an operator). */
    public long failedCount() {
        return count("FAILED");
    }

    /**
     * The rows in {@code status} that hold a message, oldest first, at most {@code limit}: the first page of
     * {@link #rows(OutboxRow.Status, long, int)}.
     */
    public List<OutboxRow> rows(OutboxRow.Status status, int limit) {
        return rows(status, Long.MIN_VALUE, limit);
    }

    /**
     * The rows in {@code status} that hold a message whose {@link OutboxRow#sequence() sequence} is after
     * {@code afterSequence}, oldest first, at most {@code limit}: the page after the one whose last row had that sequence
     * (a row's sequence never changes, so pages never repeat a row, and a row in {@code status} from the first page's
     * read to the last's is listed once, whatever else is written, marked or deleted meanwhile; a row that enters
     * {@code status} meanwhile with a sequence before the last page read, such as an older row a relay marks
     * {@code FAILED} or one whose transaction commits late, is listed by the next pass from the start, not by this one).
     * It holds fewer than {@code limit} rows only when no later row in {@code status} holds a message; so the
     * listing is read page by page, each after the last row of the one before, until a page holds fewer than the limit.
     * A row that holds none this library can build (see {@link UnreadableOutboxRow}: a poison row, which a relay marks
     * {@code FAILED}) is left out, and the page filled up from the rows after it; such rows are listed by
     * {@link #unreadableRows}. Such a row is logged at WARN (its sequence, message id and reason) by the first listing of
     * this outbox that meets it, at DEBUG by the later ones, so that a listing read again and again (a dashboard's) does
     * not log it each time: this outbox remembers the sequences of the last 1000 such rows it warned of
     * and no more, so that with more poison rows than that one may be warned of again.
     */
    public List<OutboxRow> rows(OutboxRow.Status status, long afterSequence, int limit) {
        ConfigurationException.require(limit > 0, "limit must be positive, but was %s", limit);
        List<OutboxRow> rows = new ArrayList<>();
        scan(status, afterSequence, limit, (row, unreadable) -> {
            if (row != null) {
                rows.add(row);
            } else {
                warnOnce(status, unreadable);
            }
            return rows.size() < limit;
        });
        return rows;
    }

    /** Logs {@code unreadable}, left out of a listing of {@code status} rows: at WARN the first time (see {@link #rows}). */
    private void warnOnce(OutboxRow.Status status, UnreadableOutboxRow unreadable) {
        boolean first;
        synchronized (warned) {
            first = warned.add(unreadable.sequence());
        }
        if (first || log.isDebugEnabled()) {
            String format = "outbox row {} (message id {}, {}) holds no message and is left out of the listing of {} rows"
                    + " (JdbcOutbox.unreadableRows lists it): {}";
            Object[] arguments = {unreadable.sequence(), StreamSagaException.quote(unreadable.messageId()),
                    unreadable.status(), status, unreadable.reason()};
            if (first) {
                log.warn(format, arguments);
            } else {
                log.debug(format, arguments);
            }
        }
    }

    /**
     * The rows in {@code status} that hold no message this library can build, oldest first, at most {@code limit}: the
     * first page of {@link #unreadableRows(OutboxRow.Status, long, int)}.
     */
    public List<UnreadableOutboxRow> unreadableRows(OutboxRow.Status status, int limit) {
        return unreadableRows(status, Long.MIN_VALUE, limit);
    }

    /**
     * The rows in {@code status} that hold no message this library can build whose sequence is after
     * {@code afterSequence}, oldest first, at most {@code limit} (pages as {@link #rows(OutboxRow.Status, long, int)}'s),
     * each with the columns every row has, as stored, and the reason, for an operator to repair or delete
     * ({@link #retryFailed} puts one back to {@code PENDING}, where a relay marks it {@code FAILED} again). It reads the
     * rows of {@code status} after {@code afterSequence} until it found {@code limit} of them, all of them when there
     * are fewer: meant for {@code FAILED}, where a relay puts each such row it meets.
     */
    public List<UnreadableOutboxRow> unreadableRows(OutboxRow.Status status, long afterSequence, int limit) {
        ConfigurationException.require(limit > 0, "limit must be positive, but was %s", limit);
        List<UnreadableOutboxRow> rows = new ArrayList<>();
        scan(status, afterSequence, UNREADABLE_PAGE, (row, unreadable) -> {
            if (unreadable != null) {
                rows.add(unreadable);
            }
            return rows.size() < limit;
        });
        return rows;
    }

    /** Takes each row of a {@link #scan}: as read, or (then {@code row} is null) as unreadable; false to stop. */
    @FunctionalInterface
    private interface RowSink {
        boolean take(OutboxRow row, UnreadableOutboxRow unreadable);
    }

    /**
     * Reads the rows in {@code status} after {@code afterSequence} in sequence order into {@code sink} until it says
     * stop or none is left: first a page of {@code firstPage} rows, then pages of at least {@link #UNREADABLE_PAGE}
     * (each a query with a limit, as the listing always was: the database reads a range of its index and stops, where
     * one query without a limit was planned for the whole table). A listing of n rows with poison rows among them so
     * costs one query for the first n rows and one for each further 100 or n, not one per poison row with n = 1.
     */
    private void scan(OutboxRow.Status status, long afterSequence, int firstPage, RowSink sink) {
        Objects.requireNonNull(status, "status");
        long[] after = {afterSequence};
        int[] pageSize = {firstPage};
        boolean more = true;
        while (more) {
            more = tx.inTransaction(c -> {
                try (PreparedStatement ps = c.prepareStatement(OutboxRows.SELECT
                        + " WHERE status = ? AND seq > ? ORDER BY seq LIMIT ?")) {
                    ps.setString(1, status.name());
                    ps.setLong(2, after[0]);
                    ps.setInt(3, pageSize[0]);
                    int read = 0;
                    try (ResultSet rs = ps.executeQuery()) {
                        while (rs.next()) {
                            read++;
                            after[0] = rs.getLong("seq");
                            if (!take(rs, status, sink)) {
                                return false;
                            }
                        }
                    }
                    boolean full = read == pageSize[0];
                    pageSize[0] = Math.max(pageSize[0], UNREADABLE_PAGE);
                    return full;
                } catch (SQLException e) {
                    throw JdbcException.of("cannot read outbox rows", e);
                }
            });
        }
    }

    /** Hands the row at {@code rs}'s cursor to {@code sink}, read or as unreadable; returns what the sink says. */
    private boolean take(ResultSet rs, OutboxRow.Status status, RowSink sink) throws SQLException {
        OutboxRow row;
        String reason;
        try {
            row = OutboxRows.read(rs, json);
            reason = null;
        } catch (OutboxRows.UnreadableRow e) {
            reason = e.getMessage();
            row = null;
        } catch (RuntimeException e) { // values a Message refuses, as the relay finds them
            reason = OutboxRows.unreadable(rs.getLong("seq"), e).getMessage();
            row = null;
        }
        if (row != null) {
            return sink.take(row, null);
        }
        return sink.take(null, new UnreadableOutboxRow(rs.getLong("seq"), rs.getString("message_id"),
                rs.getString("topic"), status, rs.getInt("attempts"), rs.getString("last_error"), reason));
    }

    /** Puts FAILED rows back to PENDING (after an operator fixed the cause), in a transaction of its own; returns how many. */
    public int retryFailed() {
        return write("cannot put failed outbox rows back", "UPDATE ss_outbox SET status = 'PENDING', attempts = 0"
                + " WHERE status = 'FAILED'", ps -> { });
    }

    /**
     * Deletes at most {@code maxRows} rows sent before {@code sentBefore}, oldest first, and returns how
     * many, in a transaction of its own. Bounded, so a periodic clean-up never holds long locks; call it until it returns 0,
     * or have the relay do so ({@link OutboxRelay.Builder#purgeEvery}).
     */
    public int purgeSent(Instant sentBefore, int maxRows) {
        return OutboxRows.purgeSent(tx, sentBefore, maxRows);
    }

    private long count(String status) {
        try (Connection c = dataSource.getConnection();
             PreparedStatement ps = c.prepareStatement("SELECT COUNT(*) FROM ss_outbox WHERE status = ?")) {
            ps.setString(1, status);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getLong(1);
            }
        } catch (SQLException e) {
            throw JdbcException.of("cannot count outbox rows", e);
        }
    }

    /** Sets the parameters of a statement. */
    @FunctionalInterface
    private interface Parameters {
        void set(PreparedStatement ps) throws SQLException;
    }

    /**
     * Runs one UPDATE or DELETE in a transaction of its own, committed: run on a bare connection of a pool handing out
     * connections with auto-commit off (HikariCP's {@code autoCommit=false}), it was rolled back when the connection
     * went back, and reported the rows it had changed all the same.
     */
    private int write(String operation, String sql, Parameters parameters) {
        return tx.inTransaction(c -> {
            try (PreparedStatement ps = c.prepareStatement(sql)) {
                parameters.set(ps);
                return ps.executeUpdate();
            } catch (SQLException e) {
                throw JdbcException.of(operation, e);
            }
        });
    }

    /**
     * Builds a {@link JdbcOutbox}; not thread-safe. Give it {@link #eventBus} (the usual case) or {@link #codec};
     * both only with the bus's own codec, in either order.
     */
    public static final class Builder {
        private final DataSource dataSource;
        private EventCodec codec;
        private EventBus bus;
        private Clock clock = Clock.systemUTC();

        private Builder(DataSource dataSource) {
            this.dataSource = Objects.requireNonNull(dataSource, "dataSource");
        }

        /**
         * The codec that encodes event objects and knows their type ids, for an outbox without a bus. With
         * {@link #eventBus} it must be the bus's {@code codec()}: another one is refused at {@link #build}.
         */
        public Builder codec(EventCodec codec) {
            this.codec = Objects.requireNonNull(codec, "codec");
            return this;
        }

        /**
         * The application's bus: its codec encodes the events, and an event appended inside one of its handlers
         * inherits the handled message's correlation id, saga id and traceparent and takes its id as causation id,
         * as a publish from the handler would (headers given to {@code append} win). A different codec given to
         * {@link #codec}, before or after, is refused at {@link #build}: the bus's consumers decode with the bus's.
         */
        public Builder eventBus(EventBus bus) {
            this.bus = Objects.requireNonNull(bus, "bus");
            return this;
        }

        /** The clock stamping messages built by {@code append(connection, topic, key, event)}. */
        public Builder clock(Clock clock) {
            this.clock = Objects.requireNonNull(clock, "clock");
            return this;
        }

        /**
         * The outbox.
         *
         * @throws ConfigurationException when neither a bus nor a codec was set, or both with a codec that is not the
         *                                bus's
         */
        public JdbcOutbox build() {
            ConfigurationException.require(codec != null || bus != null,
                    "an outbox needs a codec (eventBus(bus) or codec(...)), but none was set");
            if (bus != null && codec != null && codec != bus.codec()) {
                throw new ConfigurationException("an outbox built with eventBus(bus) encodes with the bus's codec, but"
                        + " codec(...) was given another one (" + codec + "): set one of the two");
            }
            SchemaCheck.requireMigrated(dataSource, "JdbcOutbox");
            return new JdbcOutbox(this);
        }
    }
}
