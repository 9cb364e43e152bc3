package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.saga.SagaTestKitAdvanceTest.Airline;
import io.streamsaga.inmemory.saga.SagaTestKitAdvanceTest.Book;
import io.streamsaga.inmemory.saga.SagaTestKitAdvanceTest.Booked;
import io.streamsaga.inmemory.saga.SagaTestKitAdvanceTest.Trip;
import io.streamsaga.inmemory.saga.testkit.SagaRunReport;
import io.streamsaga.inmemory.saga.testkit.SagaTestKit;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaStatus;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;

import static io.streamsaga.inmemory.saga.SagaTestKitAdvanceTest.TYPES;

class ZzScratchTest {
    @Test
    void parallelRemote() {
        var run = SagaTestKit.given(TripSagaFixture::trip, TripSagaFixture::definition,
                new TripSagaFixture.TripData("ann", null, null, null, false)).types(TripSagaFixture.types()).whenRun();
        System.out.println("PAR status " + run.status() + " " + run.invocations());
        for (String s : List.of("validate-trip", "book-hotel", "book-flight", "charge-card", "send-confirmation")) {
            try { run.expectAttempts(s, 1); System.out.println("PAR " + s + " ok"); } catch (AssertionError e) { System.out.println("PAR " + e.getMessage()); }
        }
    }

    @Test
    void commandFactoryThrows() {
        var run = SagaTestKit.given(env -> new Airline(env, Duration.ZERO, a -> true),
                a -> SagaDefinition.builder("trip", Trip.class)
                        .remoteStep("book").command("book-commands", (trip, ctx) -> { throw new IllegalStateException("no command"); })
                        .onReply(Booked.class, (trip, reply) -> trip)
                        .timeout(Duration.ofSeconds(10)).retry(RetryPolicy.builder().maxAttempts(3).noBackoff().build())
                        .build(), new Trip("t")).types(TYPES).whenRun();
        System.out.println("CF status " + run.status() + " " + run.history().stream().map(t -> t.type() + "/" + t.attempt()).toList());
        try { run.expectAttempts("book", 0); System.out.println("CF passes 0 attempts"); } catch (AssertionError e) { System.out.println("CF " + e.getMessage()); }
    }

    @Test
    void upgradeWhileWaiting() {
        SagaRunReport<Airline, Trip> v1 = SagaTestKit.given(env -> new Airline(env, Duration.ofSeconds(30), a -> true),
                a -> SagaTestKitAdvanceTest.booking(Duration.ofSeconds(45), RetryPolicy.NONE), new Trip("t-1")).types(TYPES)
                .whenStarted();
        var v2 = v1.upgradeTo(a -> SagaDefinition.builder("trip", Trip.class).version(1)
                .remoteStep("book").command("book-commands", (trip, ctx) -> new Book(trip.id()))
                .onReply(Booked.class, (trip, reply) -> trip)
                .timeout(Duration.ofSeconds(45)).retry(RetryPolicy.NONE).build());
        System.out.println("UW after upgrade " + v2.status() + " attempts " + v2.fixture().attempts + " now " + v2.environment().scheduler().now());
        v2.advance(Duration.ofSeconds(30));
        System.out.println("UW after advance " + v2.status() + " " + v2.history().stream().map(t -> t.type() + "/" + t.attempt()).toList() + " closed " + v2.isClosed());
        try { v2.expectAttempts("book", 1); System.out.println("UW 1 attempt"); } catch (AssertionError e) { System.out.println("UW " + e.getMessage()); }
        try { System.out.println("UW v1.result " + v1.result()); } catch (Throwable e) { System.out.println("UW v1.result threw " + e); }
        try { System.out.println("UW v2.result " + v2.result()); } catch (Throwable e) { System.out.println("UW v2.result threw " + e); }
        try { v1.close(); System.out.println("UW v1.close ok"); } catch (Throwable e) { System.out.println("UW v1.close threw " + e); }
        try { v1.settle(); } catch (Throwable e) { System.out.println("UW v1.settle threw " + e); }
        try { v1.cancel(); } catch (Throwable e) { System.out.println("UW v1.cancel threw " + e); }
        try { v1.upgradeTo(a -> v2.definition()); } catch (Throwable e) { System.out.println("UW v1.upgradeTo threw " + e); }
    }

    @Test
    void threads() {
        int before = Thread.activeCount();
        for (int i = 0; i < 200; i++) {
            SagaTestKit.given(env -> new Airline(env, Duration.ofSeconds(30), a -> true),
                            a -> SagaTestKitAdvanceTest.booking(Duration.ofSeconds(45), RetryPolicy.NONE), new Trip("t-1")).types(TYPES)
                    .whenStarted().upgradeTo(a -> SagaTestKitAdvanceTest.booking(Duration.ofSeconds(45), RetryPolicy.NONE)).advance(Duration.ofMinutes(1));
        }
        System.out.println("TH threads before " + before + " after " + Thread.activeCount());
        Thread.getAllStackTraces().keySet().forEach(t -> System.out.println("TH " + t.getName()));
    }

    @Test
    void staleTimers() {
        SagaRunReport<Airline, Trip> v1 = SagaTestKit.given(env -> new Airline(env, Duration.ofSeconds(30), a -> false),
                a -> SagaTestKitAdvanceTest.booking(Duration.ofSeconds(45), RetryPolicy.NONE), new Trip("t-1")).types(TYPES)
                .whenStarted();
        System.out.println("ST pending before " + v1.environment().scheduler().pendingTasks());
        var v2 = v1.upgradeTo(a -> SagaTestKitAdvanceTest.booking(Duration.ofSeconds(45), RetryPolicy.NONE));
        System.out.println("ST pending after " + v2.environment().scheduler().pendingTasks());
        v2.advance(Duration.ofMinutes(2));
        System.out.println("ST " + v2.status() + " " + v2.history().stream().map(t -> t.type() + "/" + t.attempt()).toList() + " closed " + v2.isClosed());
    }
}
