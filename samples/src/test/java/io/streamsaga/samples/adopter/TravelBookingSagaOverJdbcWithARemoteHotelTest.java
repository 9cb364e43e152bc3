package io.streamsaga.samples.adopter;

import io.streamsaga.bus.DeadLetterRedrive;
import io.streamsaga.bus.EventBus;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.jdbc.JdbcException;
import io.streamsaga.jdbc.JdbcSchema;
import io.streamsaga.jdbc.JdbcTransactions;
import io.streamsaga.jdbc.inbox.JdbcInbox;
import io.streamsaga.jdbc.outbox.JdbcOutbox;
import io.streamsaga.jdbc.outbox.OutboxRelay;
import io.streamsaga.jdbc.saga.JdbcSagaStore;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaListener;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaPage;
import io.streamsaga.saga.SagaPageRequest;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.StepStatus;
import org.h2.jdbcx.JdbcDataSource;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import javax.sql.DataSource;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLTransientConnectionException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A travel booking service built the way an adopter builds one from the docs alone: an orchestrated saga (book
 * flight, book hotel, charge card as the pivot, send the confirmation as a retriable step) whose hotel is a remote
 * participant with a database of its own, answering over the bus from its transactional outbox behind an idempotent
 * inbox; the saga in a {@link JdbcSagaStore} on H2 with its commands in the orchestrator's outbox; a per-step timeout
 * and retry policy, a listener, the operator queries, a declined card that compensates, an orchestrator closed
 * mid-saga and replaced, and a reply dead-lettered by an orchestrator that could not read it, redriven once one that
 * can runs. Everything runs on the in-memory transport and a virtual clock.
 */
class TravelBookingSagaOverJdbcWithARemoteHotelTest {
    static final String DECLINED_CARD = "4000-0000-0000-0002";

    /** The saga data. */
    record Trip(String tripId, String customer, String card, long amountCents, String flightRef, String hotelRef,
                String chargeId, boolean confirmed) {
        Trip withFlightRef(String ref) {
            return new Trip(tripId, customer, card, amountCents, ref, hotelRef, chargeId, confirmed);
        }

        Trip withHotelRef(String ref) {
            return new Trip(tripId, customer, card, amountCents, flightRef, ref, chargeId, confirmed);
        }

        Trip withChargeId(String id) {
            return new Trip(tripId, customer, card, amountCents, flightRef, hotelRef, id, confirmed);
        }

        Trip withConfirmed() {
            return new Trip(tripId, customer, card, amountCents, flightRef, hotelRef, chargeId, true);
        }
    }

    /** The hotel's command. */
    record BookHotel(String tripId, String customer) {
    }

    /** The hotel's reply, version 1. */
    record HotelBooked(String hotelRef) {
    }

    /** The hotel's reply of its next release, version 2: the same booking, the room named too. */
    record HotelBookedV2(String hotelRef, String room) {
    }

    /** The hotel's compensation command. */
    record CancelHotel(String tripId) {
    }

    /** The hotel's answer to a cancellation. */
    record HotelCancelled(boolean cancelled) {
    }

    /** A card the payment provider declines: the pivot fails for good. */
    static final class CardDeclined extends RuntimeException {
        CardDeclined(String card) {
            super("card " + card + " declined");
        }
    }

    /** The flight provider, local: bookings by idempotency key, so that a re-run books nothing twice. */
    static final class Flights {
        final Map<String, String> booked = new ConcurrentHashMap<>();
        final Set<String> cancelled = ConcurrentHashMap.newKeySet();

        String book(String key) {
            return booked.computeIfAbsent(key, k -> "FL-" + booked.size());
        }

        void cancel(String key) {
            if (booked.containsKey(key)) {
                cancelled.add(key);
            }
        }
    }

    /** The payment provider, local (the pivot): charges by idempotency key. */
    static final class Payments {
        final Map<String, String> charges = new ConcurrentHashMap<>();

        String charge(String key, String card, long amountCents) {
            if (card.equals(DECLINED_CARD)) {
                throw new CardDeclined(card);
            }
            return charges.computeIfAbsent(key, k -> "CH-" + amountCents + "-" + charges.size());
        }
    }

    /** The mail server: down for its first {@code failures} calls. */
    static final class Mailer {
        final AtomicInteger failuresLeft = new AtomicInteger();
        final List<String> sent = new CopyOnWriteArrayList<>();

        void send(String key, String customer) {
            if (failuresLeft.getAndDecrement() > 0) {
                throw new IllegalStateException("mail server unavailable");
            }
            if (!sent.contains(key)) {
                sent.add(key);
            }
        }
    }

    /**
     * The hotel service, a process of its own: its database, its bus on the shared transport, its inbox (a command
     * delivered again is skipped) and its outbox, to which each reply is appended in the booking's transaction.
     */
    static final class HotelService implements AutoCloseable {
        final DataSource db;
        final EventBus bus;
        final JdbcInbox inbox;
        final JdbcOutbox outbox;
        final OutboxRelay relay;
        final AtomicInteger bookings = new AtomicInteger();
        final AtomicInteger cancellations = new AtomicInteger();
        final boolean repliesV2;
        /** While set, bookings wait for the front desk ({@link #confirmWaiting()}) before they are answered. */
        volatile boolean manualConfirmation;
        final List<Message> waiting = new CopyOnWriteArrayList<>();

        HotelService(InMemoryTransport transport, VirtualScheduler scheduler, boolean repliesV2) {
            this.repliesV2 = repliesV2;
            db = h2("hotel");
            TypeRegistry.Builder types = TypeRegistry.builder()
                    .register("book-hotel", 1, BookHotel.class)
                    .register("cancel-hotel", 1, CancelHotel.class)
                    .register("hotel-cancelled", 1, HotelCancelled.class);
            types = repliesV2 ? types.register("hotel-booked", 2, HotelBookedV2.class)
                    : types.register("hotel-booked", 1, HotelBooked.class);
            bus = EventBus.builder(transport).scheduler(scheduler).types(types.build()).build();
            new JdbcTransactions(db).run(c -> c.createStatement().execute("CREATE TABLE hotel_booking ("
                    + "booking_key VARCHAR(500) PRIMARY KEY, trip_id VARCHAR(100) NOT NULL, status VARCHAR(20) NOT NULL)"));
            inbox = JdbcInbox.create(db, scheduler.clock());
            outbox = JdbcOutbox.builder(db).eventBus(bus).build();
            relay = OutboxRelay.builder(db).eventBus(bus).executor(Runnable::run).build();
            bus.subscribe("hotel-service", "hotel-commands", BookHotel.class,
                    inbox.handler((command, ctx, connection) -> book(command, ctx.message(), connection)));
            bus.subscribe("hotel-service", "hotel-cancel-commands", CancelHotel.class,
                    inbox.handler((command, ctx, connection) -> cancel(command, ctx.message(), connection)));
        }

        private void book(BookHotel command, Message message, Connection connection) throws Exception {
            bookings.incrementAndGet();
            String key = message.header(SagaMessages.IDEMPOTENCY_KEY).orElseThrow();
            // A cancellation that overtook its booking left a tombstone: the booking is refused, nothing is held.
            boolean cancelledFirst = "CANCELLED".equals(status(connection, key));
            if (!cancelledFirst) {
                try (PreparedStatement ps = connection.prepareStatement("MERGE INTO hotel_booking (booking_key, trip_id,"
                        + " status) KEY (booking_key) VALUES (?, ?, 'BOOKED')")) {
                    ps.setString(1, key);
                    ps.setString(2, command.tripId());
                    ps.executeUpdate();
                }
            }
            if (manualConfirmation) {
                waiting.add(message);
                return;
            }
            answerBooking(connection, message);
        }

        private void answerBooking(Connection connection, Message command) {
            String ref = "HT-" + command.header(SagaMessages.IDEMPOTENCY_KEY).orElseThrow().hashCode();
            Object reply = repliesV2 ? new HotelBookedV2(ref, "101") : new HotelBooked(ref);
            outbox.append(connection, command.header(SagaMessages.REPLY_TOPIC).orElseThrow(), command.key(), reply,
                    SagaMessages.replyHeaders(command));
        }

        /** The front desk confirms the bookings that wait, each reply in a transaction of its own. */
        void confirmWaiting() {
            JdbcTransactions tx = new JdbcTransactions(db);
            for (Message command : waiting) {
                tx.run(c -> answerBooking(c, command));
            }
            waiting.clear();
        }

        private void cancel(CancelHotel command, Message message, Connection connection) throws Exception {
            cancellations.incrementAndGet();
            // The compensation's key is the step's plus /compensation: the booking's own key is the step's.
            String bookingKey = SagaMessages.stepIdempotencyKey(message);
            try (PreparedStatement ps = connection.prepareStatement("MERGE INTO hotel_booking (booking_key, trip_id,"
                    + " status) KEY (booking_key) VALUES (?, ?, 'CANCELLED')")) {
                ps.setString(1, bookingKey);
                ps.setString(2, command.tripId());
                ps.executeUpdate();
            }
            outbox.append(connection, message.header(SagaMessages.REPLY_TOPIC).orElseThrow(), message.key(),
                    new HotelCancelled(true), SagaMessages.replyHeaders(message));
        }

        String status(Connection connection, String bookingKey) throws Exception {
            try (PreparedStatement ps = connection.prepareStatement(
                    "SELECT status FROM hotel_booking WHERE booking_key = ?")) {
                ps.setString(1, bookingKey);
                try (ResultSet rs = ps.executeQuery()) {
                    return rs.next() ? rs.getString(1) : null;
                }
            }
        }

        String bookingStatus(String tripId) {
            return new JdbcTransactions(db).inTransaction(c -> status(c, "trip-" + tripId + "/book-hotel"));
        }

        @Override
        public void close() {
            relay.close();
            bus.close();
        }
    }

    /** What the listener heard, in order. */
    static final class Journal implements SagaListener {
        final List<String> events = new CopyOnWriteArrayList<>();

        @Override
        public void onStepCompleted(SagaInstance instance, String step) {
            events.add(instance.sagaId() + " completed " + step);
        }

        @Override
        public void onCompensationStarting(SagaInstance instance) {
            events.add(instance.sagaId() + " compensating after " + instance.failure().step());
        }

        @Override
        public void onStepCompensated(SagaInstance instance, String step) {
            events.add(instance.sagaId() + " compensated " + step);
        }

        @Override
        public void onCompleted(SagaInstance instance) {
            events.add(instance.sagaId() + " COMPLETED");
        }

        @Override
        public void onCompensated(SagaInstance instance) {
            events.add(instance.sagaId() + " COMPENSATED");
        }
    }

    final VirtualScheduler scheduler = new VirtualScheduler();
    final InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
    final Flights flights = new Flights();
    final Payments payments = new Payments();
    final Mailer mailer = new Mailer();
    final Journal journal = new Journal();
    final List<AutoCloseable> toClose = new ArrayList<>();
    final AtomicBoolean agencyDbDown = new AtomicBoolean();
    DataSource agencyDb;
    JdbcSagaStore store;
    EventBus agencyBus;
    OutboxRelay agencyRelay;
    HotelService hotel;
    SagaDefinition<Trip> travel;

    @BeforeEach
    void setUp() {
        agencyDb = outageProne(h2("agency"));
        store = JdbcSagaStore.builder(agencyDb).transactionalMessages().build();
        travel = SagaDefinition.builder("travel-booking", Trip.class)
                .version(1)
                .dataType("travel-booking-data")
                .step("book-flight")
                    .action((trip, ctx) -> trip.withFlightRef(flights.book(ctx.idempotencyKey())))
                    .compensation((trip, ctx) -> flights.cancel(ctx.idempotencyKey()))
                .step("book-hotel")
                    .command("hotel-commands", (trip, ctx) -> new BookHotel(trip.tripId(), trip.customer()))
                    .onReply(HotelBooked.class, (trip, reply) -> trip.withHotelRef(reply.hotelRef()))
                    .compensationCommand("hotel-cancel-commands", (trip, ctx) -> new CancelHotel(trip.tripId()))
                    .onCompensationReply(HotelCancelled.class, (trip, reply) -> {
                        if (!reply.cancelled()) {
                            throw new IllegalStateException("the hotel refused the cancellation");
                        }
                    })
                    .timeout(Duration.ofMinutes(30))
                    .retry(RetryPolicy.builder().maxAttempts(2).initialBackoff(Duration.ofMinutes(1)).jitter(0).build())
                .pivot("charge-card")
                    .action((trip, ctx) -> trip.withChargeId(payments.charge(ctx.idempotencyKey(), trip.card(),
                            trip.amountCents())))
                .retriable("send-confirmation")
                    .action((trip, ctx) -> {
                        mailer.send(ctx.idempotencyKey(), trip.customer());
                        return trip.withConfirmed();
                    })
                    .retry(RetryPolicy.builder().maxAttempts(Integer.MAX_VALUE).initialBackoff(Duration.ofSeconds(10))
                            .jitter(0).build())
                .build();
        agencyBus = agencyBus(false);
        hotel = new HotelService(transport, scheduler, false);
    }

    @AfterEach
    void tearDown() throws Exception {
        for (int i = toClose.size() - 1; i >= 0; i--) {
            toClose.get(i).close();
        }
        hotel.close();
        transport.close();
    }

    /** The agency's bus; {@code readsHotelV2}: of the release that reads the hotel's version 2 replies. */
    EventBus agencyBus(boolean readsHotelV2) {
        TypeRegistry.Builder types = TypeRegistry.builder()
                .register("book-hotel", 1, BookHotel.class)
                .register("cancel-hotel", 1, CancelHotel.class)
                .register("hotel-cancelled", 1, HotelCancelled.class);
        if (readsHotelV2) { // version 2 adds the room, which the saga does not read; version 1 replies still upcast
            types.register("hotel-booked", 2, HotelBooked.class).upcaster("hotel-booked", 1, v1 -> v1.put("room", ""));
        } else {
            types.register("hotel-booked", 1, HotelBooked.class);
        }
        EventBus bus = EventBus.builder(transport).scheduler(scheduler).types(types.build()).build();
        agencyRelay = OutboxRelay.builder(agencyDb).eventBus(bus).executor(Runnable::run).build();
        toClose.add(bus);
        toClose.add(agencyRelay);
        return bus;
    }

    SagaOrchestrator orchestrator() {
        SagaOrchestrator orchestrator = SagaOrchestrator.builder()
                .store(store).bus(agencyBus).scheduler(scheduler)
                .register(travel)
                .listener(journal)
                .build();
        toClose.add(orchestrator);
        orchestrator.recover();
        return orchestrator;
    }

    /** Relays both outboxes and delivers what they published until nothing moves. */
    void pump() {
        int moved;
        do {
            moved = agencyRelay.relayPending() + hotel.relay.relayPending() + transport.drainAll();
        } while (moved > 0);
    }

    static Trip trip(String id, String card) {
        return new Trip(id, "ada@example.com", card, 120_000, null, null, null, false);
    }

    static DataSource h2(String name) {
        JdbcDataSource ds = new JdbcDataSource();
        ds.setURL("jdbc:h2:mem:" + name + "-" + UUID.randomUUID()
                + ";MODE=PostgreSQL;DATABASE_TO_LOWER=TRUE;DEFAULT_NULL_ORDERING=HIGH;DB_CLOSE_DELAY=-1");
        JdbcSchema.of(ds).migrate();
        return ds;
    }

    /** {@code db} as the agency sees it: no connection while {@link #agencyDbDown} is set (an outage). */
    DataSource outageProne(DataSource db) {
        return (DataSource) Proxy.newProxyInstance(getClass().getClassLoader(), new Class<?>[]{DataSource.class},
                (proxy, method, args) -> {
                    if (method.getName().equals("getConnection") && agencyDbDown.get()) {
                        throw new SQLTransientConnectionException("agency database unreachable", "08001");
                    }
                    try {
                        return method.invoke(db, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
    }

    @Test
    void aTripIsBookedWithTheHotelAnsweringFromItsOutboxAndTheConfirmationRetriedUntilTheMailServerIsBack() {
        SagaOrchestrator orchestrator = orchestrator();
        mailer.failuresLeft.set(2);

        var result = orchestrator.start(travel, "trip-1", "ada", trip("1", "4111")).toCompletableFuture();
        pump();
        assertFalse(result.isDone(), "the confirmation waits for its retry");
        scheduler.advance(Duration.ofSeconds(10));
        scheduler.advance(Duration.ofSeconds(30));
        pump();

        SagaResult<Trip> done = result.join();
        assertEquals(SagaOutcome.COMPLETED, done.outcome());
        assertTrue(done.data().confirmed());
        assertEquals(List.of("trip-1/send-confirmation"), mailer.sent);
        assertEquals("BOOKED", hotel.bookingStatus("1"));
        assertTrue(done.data().hotelRef().startsWith("HT-"));
        assertEquals(List.of("trip-1 completed book-flight", "trip-1 completed book-hotel",
                "trip-1 completed charge-card", "trip-1 completed send-confirmation", "trip-1 COMPLETED"),
                journal.events);
    }

    @Test
    void aDeclinedCardCancelsTheHotelRemotelyAndTheFlightLocallyInReverseOrder() {
        SagaOrchestrator orchestrator = orchestrator();

        var result = orchestrator.start(travel, "trip-2", "ada", trip("2", DECLINED_CARD)).toCompletableFuture();
        pump();

        SagaResult<Trip> done = result.join();
        assertEquals(SagaOutcome.COMPENSATED, done.outcome());
        assertEquals("charge-card", done.failure().step());
        assertEquals(CardDeclined.class.getName(), done.failure().errorClass());
        assertEquals("CANCELLED", hotel.bookingStatus("2"));
        assertEquals(1, hotel.cancellations.get());
        assertEquals(Set.of("trip-2/book-flight"), flights.cancelled);
        assertTrue(payments.charges.isEmpty());
        assertEquals(List.of("trip-2 completed book-flight", "trip-2 completed book-hotel",
                "trip-2 compensating after charge-card", "trip-2 compensated book-hotel",
                "trip-2 compensated book-flight", "trip-2 COMPENSATED"), journal.events);
    }

    @Test
    void aSilentHotelShowsInTheOperatorsQueriesTimesOutAndItsRetryIsAnswered() {
        SagaOrchestrator orchestrator = orchestrator();
        hotel.manualConfirmation = true;
        var first = orchestrator.start(travel, "trip-3", "ada", trip("3", "4111")).toCompletableFuture();
        scheduler.advance(Duration.ofMinutes(1));
        var second = orchestrator.start(travel, "trip-4", "ada", trip("4", "4111")).toCompletableFuture();
        pump();
        scheduler.advance(Duration.ofMinutes(20));

        SagaPage idle = orchestrator.findIdleLongerThan(Duration.ofMinutes(15), SagaPageRequest.first(100));
        assertEquals(List.of("trip-3", "trip-4"), idle.sagas().stream().map(SagaInstance::sagaId).toList());
        assertNull(idle.next());
        List<String> running = new ArrayList<>();
        SagaPageRequest request = SagaPageRequest.first(1);
        int pages = 0;
        while (request != null) {
            SagaPage page = orchestrator.findByStatus(Set.of(SagaStatus.RUNNING), request);
            page.sagas().forEach(saga -> running.add(saga.sagaId()));
            request = page.next();
            pages++;
        }
        assertEquals(List.of("trip-3", "trip-4"), running);
        assertTrue(pages >= 2, "a page of one saga holds one");

        // trip-3's wait for the hotel times out (30 minutes): its retry sends a second command, answered at once.
        hotel.manualConfirmation = false;
        scheduler.advance(Duration.ofMinutes(10));
        assertEquals(2, orchestrator.find("trip-3").orElseThrow().step("book-hotel").orElseThrow().attempts());
        scheduler.advance(Duration.ofMinutes(1));
        pump();
        assertEquals(SagaOutcome.COMPLETED, first.join().outcome());
        assertEquals(SagaOutcome.COMPLETED, second.join().outcome());
        // The front desk's late confirmations of the first attempts are ignored: both sagas finished already.
        hotel.confirmWaiting();
        pump();
        assertEquals(SagaStatus.COMPLETED, orchestrator.find("trip-3").orElseThrow().status());
        assertTrue(transport.messages("saga-replies.DLT").isEmpty(), "a superseded attempt's reply is no dead letter");
        assertTrue(orchestrator.findIdleLongerThan(Duration.ZERO, SagaPageRequest.first(10)).sagas().isEmpty());
    }

    @Test
    void anOrchestratorClosedWhileTheHotelBooksIsReplacedByOneOverTheSameStoreThatCompletesTheTrip() {
        SagaOrchestrator crashed = orchestrator();
        hotel.manualConfirmation = true;
        var lost = crashed.start(travel, "trip-5", "ada", trip("5", "4111")).toCompletableFuture();
        pump();
        assertEquals(StepStatus.WAITING, crashed.find("trip-5").orElseThrow().step("book-hotel").orElseThrow().status());
        crashed.close();
        assertTrue(lost.isCompletedExceptionally(), "a closed orchestrator's result fails; the saga stays in the store");

        SagaOrchestrator restarted = orchestrator(); // recover() in it
        hotel.manualConfirmation = false;
        hotel.confirmWaiting();
        pump();

        SagaResult<Object> done = restarted.result("trip-5").toCompletableFuture().join();
        assertEquals(SagaOutcome.COMPLETED, done.outcome());
        assertEquals(1, hotel.bookings.get(), "the recovery did not send the command again: the outbox had it");
        assertEquals(List.of("trip-5/send-confirmation"), mailer.sent);
    }

    @Test
    void aHotelReplyOfAVersionTheAgencyCannotReadYetIsDeadLetteredAndRedrivenOnceTheAgencyReadsIt() {
        hotel.close();
        hotel = new HotelService(transport, scheduler, true); // the hotel's next release answers in version 2
        SagaOrchestrator old = orchestrator();
        var lost = old.start(travel, "trip-6", "ada", trip("6", "4111")).toCompletableFuture();
        pump();

        List<Message> deadLetters = transport.messages("saga-replies.DLT");
        assertEquals(1, deadLetters.size(), "the reply the agency cannot read is dead-lettered, not taken");
        assertEquals(StepStatus.WAITING, old.find("trip-6").orElseThrow().step("book-hotel").orElseThrow().status());
        assertEquals("BOOKED", hotel.bookingStatus("6"), "nothing cancelled");

        // The agency's release that reads version 2, over the same store and reply group, within the step's timeout.
        old.close();
        assertTrue(lost.isCompletedExceptionally());
        agencyBus.close();
        agencyBus = agencyBus(true);
        SagaOrchestrator upgraded = orchestrator();
        pump();
        assertEquals(1, hotel.bookings.get(), "the recovery sent nothing again: the agency's outbox had the command");
        DeadLetterRedrive.Run run = DeadLetterRedrive.builder(agencyBus, "saga-replies.DLT").build().start();
        pump();

        assertEquals(1, run.finished().toCompletableFuture().join().redriven());
        SagaResult<Trip> done = upgraded.result("trip-6", Trip.class).toCompletableFuture().join();
        assertEquals(SagaOutcome.COMPLETED, done.outcome());
        assertTrue(done.data().hotelRef().startsWith("HT-"));
        assertEquals(0, hotel.cancellations.get());
    }

    @Test
    void aHotelReplyDeadLetteredWhileTheAgencyDatabaseWasDownIsRedrivenOnceItIsBackAndCompletesTheTrip() {
        SagaOrchestrator orchestrator = orchestrator();
        hotel.manualConfirmation = true;
        var result = orchestrator.start(travel, "trip-7", "ada", trip("7", "4111")).toCompletableFuture();
        pump();

        agencyDbDown.set(true);
        hotel.confirmWaiting();
        hotel.relay.relayPending();
        transport.drainAll(); // the reply's attempts all fail on the database: it is dead-lettered
        agencyDbDown.set(false);
        List<Message> deadLetters = transport.messages("saga-replies.DLT");
        assertEquals(1, deadLetters.size());
        assertEquals("trip-7", deadLetters.get(0).sagaId().orElseThrow());
        assertEquals(JdbcException.class.getName(), deadLetters.get(0).headers().get(MessageHeaders.DLT_ERROR_CLASS));
        assertEquals(StepStatus.WAITING, orchestrator.find("trip-7").orElseThrow().step("book-hotel").orElseThrow().status());

        DeadLetterRedrive.Run run = DeadLetterRedrive.builder(agencyBus, "saga-replies.DLT")
                .filter(letter -> JdbcException.class.getName().equals(letter.headers().get(MessageHeaders.DLT_ERROR_CLASS)))
                .build()
                .start();
        pump();
        DeadLetterRedrive.Report report = run.finished().toCompletableFuture().join();
        assertEquals(1, report.redriven());
        assertEquals(SagaStatus.COMPLETED, orchestrator.find("trip-7").orElseThrow().status());
        assertEquals(1, hotel.bookings.get(), "the hotel booked once");
    }
}
