package io.streamsaga.inmemory.saga;

import io.streamsaga.ConfigurationException;
import io.streamsaga.inmemory.saga.SagaTestKitAdvanceTest.Airline;
import io.streamsaga.inmemory.saga.SagaTestKitAdvanceTest.Book;
import io.streamsaga.inmemory.saga.SagaTestKitAdvanceTest.Booked;
import io.streamsaga.inmemory.saga.SagaTestKitAdvanceTest.Trip;
import io.streamsaga.inmemory.saga.testkit.FailureInjection;
import io.streamsaga.inmemory.saga.testkit.FailureMode;
import io.streamsaga.inmemory.saga.testkit.SagaRunReport;
import io.streamsaga.inmemory.saga.testkit.SagaTestKit;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.TransitionType;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The test kit tests versioned definitions and data upcasters (docs/sagas.md, "The test kit", "Versions"): a saga
 * started under one version, upgraded with {@code upgradeTo} (the process restarts with a newer version registered
 * and the kit's upcasters), is migrated and finishes under the new version; one that cannot be migrated fails the
 * upgrade naming why. Before, the kit registered one definition and no upcaster, and had no restart under another.
 */
class SagaTestKitUpgradeTest {
    record OrderV1(String id) {
    }

    record OrderV2(String id, String currency) {
    }

    /** The application's shipping service, which outlives the upgrade as its database would. */
    static final class Shipping {
        final List<String> shipped = new CopyOnWriteArrayList<>();
        final List<String> refunded = new CopyOnWriteArrayList<>();
        volatile boolean refundsDown = true;
    }

    /**
     * Pays (refunding fails while the refunds are down), then fails to ship: under {@code version}, over data
     * {@code type}, naming what it refunds with {@code what}.
     */
    private static <D> SagaDefinition<D> refundedWhenShippingFails(Shipping shipping, Class<D> type, int version,
                                                                   Function<D, String> what) {
        return SagaDefinition.builder("order", type).version(version).dataType("order-data")
                .step("pay").action((order, ctx) -> order).compensation((order, ctx) -> {
                    if (shipping.refundsDown) {
                        throw new IllegalStateException("refunds are down");
                    }
                    shipping.refunded.add(what.apply(order));
                })
                .compensationRetry(RetryPolicy.NONE)
                .step("ship").action((order, ctx) -> {
                    throw new IllegalStateException("no carrier");
                })
                .build();
    }

    /** Version 1: pays, then ships on a stage that is still open when the application is upgraded. */
    static final class OrderSagaV1 {
        static SagaDefinition<OrderV1> definition(Shipping shipping) {
            return SagaDefinition.builder("order", OrderV1.class).dataType("order-data")
                    .step("pay").action((order, ctx) -> order)
                    .step("ship").asyncAction((order, ctx) -> new CompletableFuture<>())
                    .build();
        }
    }

    /** Version 2: the data gains a currency; shipping names it. */
    static final class OrderSagaV2 {
        static SagaDefinition<OrderV2> definition(Shipping shipping) {
            return SagaDefinition.builder("order", OrderV2.class).version(2).dataType("order-data")
                    .step("pay").action((order, ctx) -> order)
                    .step("ship").action((order, ctx) -> {
                        shipping.shipped.add(order.id() + " in " + order.currency());
                        return order;
                    })
                    .build();
        }
    }

    /** Version 3: as version 2, the data unchanged; only the version moves. */
    private static SagaDefinition<OrderV2> versionThree(Shipping shipping) {
        return SagaDefinition.builder("order", OrderV2.class).version(3).dataType("order-data")
                .step("pay").action((order, ctx) -> order)
                .step("ship").action((order, ctx) -> order)
                .build();
    }

    @Test
    void aSagaStartedUnderVersionOneIsMigratedByTheUpcasterAndFinishedByVersionTwoAfterTheUpgrade() {
        SagaRunReport<Shipping, OrderV1> v1 = SagaTestKit.given(env -> new Shipping(), OrderSagaV1::definition, new OrderV1("o-1"))
            .dataUpcaster(1, json -> json.put("currency", "EUR"))
            .whenStarted()
            .expectStatus(SagaStatus.RUNNING);
        SagaRunReport<Shipping, OrderV2> v2 = v1.upgradeTo(OrderSagaV2::definition)
            .expectCompleted()
            .expectSteps("pay", "ship")
            .expectAttempts("ship", 2);
        assertEquals(2, v2.instance().orElseThrow().definitionVersion());
        assertEquals(List.of("o-1 in EUR"), v2.fixture().shipped);

        assertEquals(new OrderV2("o-1", "EUR"), v2.result().data());
        assertTrue(v2.history().stream().anyMatch(t -> t.type() == TransitionType.SAGA_MIGRATED
                && "version 1 -> 2".equals(t.detail())), v2.sequenceDiagram());
        assertTrue(v2.isClosed(), "the upgraded run finished and was not closed");
        IllegalStateException old = assertThrows(IllegalStateException.class, () -> v1.advance(Duration.ofMinutes(1)));
        assertTrue(old.getMessage().contains("upgradeTo"), old.getMessage());
        v1.expectStatus(SagaStatus.COMPLETED); // the previous report still reads the run
    }

    /** A reply class the kit's TypeRegistry (empty unless given) does not have. */
    record Shipped(String id) {
    }

    /** Version 2 whose shipping is a remote step waiting for a {@link Shipped} reply. */
    private static SagaDefinition<OrderV2> shippedRemotely(Shipping shipping) {
        return SagaDefinition.builder("order", OrderV2.class).version(2).dataType("order-data")
                .step("pay").action((order, ctx) -> order)
                .step("ship").command("shipments", (order, ctx) -> order).onReply(Shipped.class, (order, reply) -> order)
                .build();
    }

    @Test
    void anUpgradeToADefinitionTheOrchestratorRefusesForItsReplyClassLeavesTheRunOpenAsItWas() {
        SagaRunReport<Shipping, OrderV1> v1 = SagaTestKit.given(env -> new Shipping(), OrderSagaV1::definition, new OrderV1("o-4"))
                .dataUpcaster(1, json -> json.put("currency", "EUR"))
                .whenStarted();

        ConfigurationException refused = assertThrows(ConfigurationException.class,
                () -> v1.upgradeTo(SagaTestKitUpgradeTest::shippedRemotely));

        assertTrue(refused.getMessage().contains(Shipped.class.getName()), refused.getMessage());
        assertFalse(v1.isClosed(), "a refused upgrade closed the run");
        v1.upgradeTo(OrderSagaV2::definition).expectCompleted().expectSteps("pay", "ship");
    }

    @Test
    void anUpgradeWithoutTheUpcasterOfTheSagasVersionFailsNamingTheMissingVersionAndLeavesTheSagaAsStored() {
        List<Shipping> fixtures = new CopyOnWriteArrayList<>();
        SagaRunReport<Shipping, OrderV1> v1 = SagaTestKit.given(env -> {
                    Shipping shipping = new Shipping();
                    fixtures.add(shipping);
                    return shipping;
                }, OrderSagaV1::definition, new OrderV1("o-2"))
                .whenStarted();

        AssertionError refused = assertThrows(AssertionError.class, () -> v1.upgradeTo(OrderSagaV2::definition));

        assertEquals("the upgrade left saga test-saga-1 unresolvable, stored as 'order' version 1, not migrated to"
                + " 'order' version 2, the one registered: no data upcaster from version 1 is registered"
                + " (SagaTestKit.dataUpcaster(fromVersion, upcaster), one for each version on the way)", refused.getMessage());
        assertEquals(1, v1.instance().orElseThrow().definitionVersion());
        assertEquals(new OrderV1("o-2"), v1.instance().orElseThrow().data());
        assertEquals(List.of(), fixtures.get(0).shipped);
    }

    @Test
    void anUpgradeSkippingAVersionNeedsAnUpcasterFromEachVersionOnTheWayAndNamesTheOneMissing() {
        AssertionError refused = assertThrows(AssertionError.class, () -> SagaTestKit.given(env -> new Shipping(),
                        OrderSagaV1::definition, new OrderV1("o-3"))
                .dataUpcaster(1, json -> json.put("currency", "EUR"))
                .whenStarted()
                .upgradeTo(SagaTestKitUpgradeTest::versionThree));
        assertTrue(refused.getMessage().contains("not migrated to 'order' version 3, the one registered: no data upcaster"
                + " from version 2 is registered"), refused.getMessage());

        SagaTestKit.given(env -> new Shipping(), OrderSagaV1::definition, new OrderV1("o-3"))
                .dataUpcaster(1, json -> json.put("currency", "EUR"))
                .dataUpcaster(2, json -> json)
                .whenStarted()
                .upgradeTo(SagaTestKitUpgradeTest::versionThree)
                .expectCompleted()
                .expectSteps("pay", "ship");
    }

    @Test
    void anUpcasterThatThrowsFailsTheUpgradeQuotingTheReasonTheOrchestratorGave() {
        AssertionError refused = assertThrows(AssertionError.class, () -> SagaTestKit.given(env -> new Shipping(),
                        OrderSagaV1::definition, new OrderV1("o-4"))
                .dataUpcaster(1, json -> {
                    throw new IllegalStateException("no currency for o-4");
                })
                .whenStarted()
                .upgradeTo(OrderSagaV2::definition));

        assertEquals("the upgrade left saga test-saga-1 unresolvable, stored as 'order' version 1, not migrated to"
                + " 'order' version 2, the one registered: the orchestrator refused the migration: the upcaster of"
                + " 'order' from version 1 threw java.lang.IllegalStateException: no currency for o-4",
                refused.getMessage());
    }

    @Test
    void aStartedStepTheNewVersionNoLongerHasFailsTheUpgradeQuotingTheReasonTheOrchestratorGave() {
        AssertionError refused = assertThrows(AssertionError.class, () -> SagaTestKit.given(env -> new Shipping(),
                        OrderSagaV1::definition, new OrderV1("o-8"))
                .dataUpcaster(1, json -> json.put("currency", "EUR"))
                .whenStarted()
                .upgradeTo(shipping -> SagaDefinition.builder("order", OrderV2.class).version(2).dataType("order-data")
                        .step("pay").action((order, ctx) -> order)
                        .step("deliver").action((order, ctx) -> order)
                        .build()));

        assertTrue(refused.getMessage().endsWith("the one registered: the orchestrator refused the migration: step"
                + " 'ship' (RUNNING) no longer exists in 'order' version 2"), refused.getMessage());
    }

    /** Data whose id is a number: what version 1's data class became without a new version. */
    record NumberedOrder(long id) {
    }

    @Test
    void anUpgradeUnderTheSameVersionWhoseDataClassCannotReadTheStoredDataQuotesThatReasonNotAStepMismatch() {
        // The kit said of every saga left unresolvable under its own version that its stored steps were not those of
        // the definition, then quoted the orchestrator's reason, here one about its data: a reason it had not checked.
        AssertionError refused = assertThrows(AssertionError.class, () -> SagaTestKit.given(env -> new Shipping(),
                        OrderSagaV1::definition, new OrderV1("o-12"))
                .whenStarted()
                .upgradeTo(shipping -> SagaDefinition.builder("order", NumberedOrder.class).dataType("order-data")
                        .step("pay").action((order, ctx) -> order)
                        .step("ship").action((order, ctx) -> order)
                        .build()));

        assertTrue(refused.getMessage().startsWith("the upgrade left saga test-saga-1 unresolvable, stored as 'order'"
                + " version 1, not migrated to 'order' version 1, the one registered: the orchestrator could not resume"
                + " it under the version it is stored with: saga data of type 'order-data' cannot be read as "
                + NumberedOrder.class.getName() + ": "), refused.getMessage());
        assertTrue(!refused.getMessage().contains("stored steps"), refused.getMessage());
    }

    @Test
    void anUpgradeUnderTheSameVersionWithOtherStepsQuotesTheStepMismatchTheOrchestratorFound() {
        AssertionError refused = assertThrows(AssertionError.class, () -> SagaTestKit.given(env -> new Shipping(),
                        OrderSagaV1::definition, new OrderV1("o-13"))
                .whenStarted()
                .upgradeTo(shipping -> SagaDefinition.builder("order", OrderV1.class).dataType("order-data")
                        .step("pay").action((order, ctx) -> order)
                        .step("deliver").action((order, ctx) -> order)
                        .build()));

        assertEquals("the upgrade left saga test-saga-1 unresolvable, stored as 'order' version 1, not migrated to"
                + " 'order' version 1, the one registered: the orchestrator could not resume it under the version it is"
                + " stored with: its stored step states [pay, ship] are not those of the steps of 'order' version 1"
                + " [pay, deliver] (a definition changed without a new version?); change steps under a new version,"
                + " with an upcaster", refused.getMessage());
    }

    @Test
    void aSagaNeedingAttentionIsLeftByTheUpgradesRecoveryAndMigratedByTheOperatorCallOnTheUpgradedRun() {
        SagaRunReport<Shipping, OrderV2> v2 = SagaTestKit.given(env -> new Shipping(),
                        shipping -> refundedWhenShippingFails(shipping, OrderV1.class, 1, OrderV1::id), new OrderV1("o-6"))
                .dataUpcaster(1, json -> json.put("currency", "EUR"))
                .whenRun()
                .expectNeedsAttention()
                .upgradeTo(shipping -> refundedWhenShippingFails(shipping, OrderV2.class, 2,
                        order -> order.id() + " in " + order.currency()))
                .expectNeedsAttention();
        assertEquals(1, v2.instance().orElseThrow().definitionVersion(), "the recovery migrated a saga needing attention");

        v2.fixture().refundsDown = false;
        v2.retryCompensation()
                .expectCompensated()
                .expectCompensations("pay");
        assertEquals(2, v2.instance().orElseThrow().definitionVersion());
        assertEquals(List.of("o-6 in EUR"), v2.fixture().refunded);
    }

    @Test
    void anUpcasterOfAVersionBelowOneOrNullIsRefusedWhereItIsGiven() {
        SagaTestKit<Shipping, OrderV1> kit = SagaTestKit.given(env -> new Shipping(), OrderSagaV1::definition,
                new OrderV1("o-5"));

        ConfigurationException zero = assertThrows(ConfigurationException.class, () -> kit.dataUpcaster(0, json -> json));
        assertEquals("fromVersion must be 1 or more, but was 0", zero.getMessage());
        assertEquals("upcaster", assertThrows(NullPointerException.class, () -> kit.dataUpcaster(1, null)).getMessage());
    }

    @Test
    void aFailedUpgradeLeavesThePreviousReportSayingTheRunIsClosedNotThatAnUpgradedReportDrivesIt() {
        SagaRunReport<Shipping, OrderV1> v1 = SagaTestKit.given(env -> new Shipping(), OrderSagaV1::definition,
                        new OrderV1("o-7"))
                .whenStarted();
        assertThrows(AssertionError.class, () -> v1.upgradeTo(OrderSagaV2::definition)); // no upcaster: no report

        IllegalStateException refused = assertThrows(IllegalStateException.class, v1::settle);
        assertEquals("the run is closed (the saga is RUNNING): it can be read, not driven", refused.getMessage());
        assertTrue(v1.isClosed());
    }

    @Test
    void aReplyToTheCommandOfARemoteStepWaitingAcrossTheUpgradeIsTakenByTheUpgradedRunOnTheSameClock() {
        // The airline answers each command 30 s later; the application is upgraded 10 s after the command left.
        Instant start = Instant.parse("2026-01-01T00:00:00Z");
        SagaRunReport<Airline, Trip> v1 = SagaTestKit.given(env -> new Airline(env, Duration.ofSeconds(30), attempt -> true),
                        airline -> SagaTestKitAdvanceTest.booking(Duration.ofSeconds(45), RetryPolicy.NONE), new Trip("t-6"))
                .types(SagaTestKitAdvanceTest.TYPES)
                .dataUpcaster(1, json -> json)
                .whenStarted()
                .advance(Duration.ofSeconds(10));

        SagaRunReport<Airline, Trip> v2 = v1.upgradeTo(airline -> SagaDefinition.builder("trip", Trip.class).version(2)
                        .step("book").command("book-commands", (trip, ctx) -> new Book(trip.id()))
                        .onReply(Booked.class, (trip, reply) -> trip)
                        .timeout(Duration.ofSeconds(45))
                        .build())
                .expectStatus(SagaStatus.RUNNING);
        assertEquals(start.plusSeconds(10), v2.environment().scheduler().now(), "the upgrade moved the clock");
        assertEquals(List.of("1", "1"), v2.fixture().attempts, "the recovery re-sends the waiting attempt's command");

        v2.advance(Duration.ofSeconds(20)).expectCompleted(); // the first command's reply, at 30 s
        assertEquals(start.plusSeconds(30), v2.history().get(v2.history().size() - 1).at());
        assertEquals(2, v2.instance().orElseThrow().definitionVersion());
        v2.expectAttempts("book", 2); // one attempt of the engine, its command sent twice: the airline saw both
        v2.advance(Duration.ofSeconds(10)); // the reply to the command re-sent, at 40 s: ignored
        assertTrue(v2.isClosed(), "the upgraded run finished and was not closed");
        assertTrue(v2.history().stream().noneMatch(t -> t.type() == TransitionType.STEP_TIMED_OUT), v2.sequenceDiagram());
    }

    /** The application's stock and payments, which outlive the upgrade; what each compensation undid, as it saw it. */
    static final class Shop {
        final List<String> undone = new CopyOnWriteArrayList<>();
    }

    /** Version 1: reserves, then charges on a stage still open when the application is upgraded. */
    private static SagaDefinition<OrderV1> reserveThenCharge(Shop shop) {
        return SagaDefinition.builder("order", OrderV1.class).dataType("order-data")
                .step("reserve").action((order, ctx) -> order)
                .compensation((order, ctx) -> shop.undone.add("reserve " + order.id()))
                .step("charge").asyncAction((order, ctx) -> new CompletableFuture<>())
                .compensation((order, ctx) -> shop.undone.add("charge " + order.id()))
                .build();
    }

    /** Version 2: charges in the order's currency, then notifies the customer, a step version 1 does not have. */
    private static SagaDefinition<OrderV2> reserveChargeThenNotify(Shop shop) {
        return SagaDefinition.builder("order", OrderV2.class).version(2).dataType("order-data")
                .step("reserve").action((order, ctx) -> order)
                .compensation((order, ctx) -> shop.undone.add("reserve " + order.id()))
                .step("charge").action((order, ctx) -> order)
                .compensation((order, ctx) -> shop.undone.add("charge " + order.id() + " in " + order.currency()))
                .step("notify").action((order, ctx) -> order)
                .compensation((order, ctx) -> shop.undone.add("notify " + order.id()))
                .build();
    }

    @Test
    void aStepOnlyTheNewVersionHasFailsWhenTheUpgradeInjectsItsFailureAndTheMigratedSagaCompensatesUnderTheNewVersion() {
        SagaTestKit<Shop, OrderV1> kit = SagaTestKit.given(env -> new Shop(),
                        SagaTestKitUpgradeTest::reserveThenCharge, new OrderV1("o-9"))
                .dataUpcaster(1, json -> json.put("currency", "EUR"));
        // The kit checks its failures against the definition the run starts with: a typo must not inject nothing.
        assertThrows(ConfigurationException.class, () -> kit.failStep("notify", FailureMode.always()).whenStarted());

        SagaRunReport<Shop, OrderV2> v2 = SagaTestKit.given(env -> new Shop(),
                        SagaTestKitUpgradeTest::reserveThenCharge, new OrderV1("o-9"))
                .dataUpcaster(1, json -> json.put("currency", "EUR"))
                .whenStarted()
                .upgradeTo(SagaTestKitUpgradeTest::reserveChargeThenNotify,
                        FailureInjection.step("notify", FailureMode.always()))
                .expectCompensated()
                .expectFailureAt("notify")
                .expectSteps("reserve", "charge")
                .expectAttempts("notify", 1)
                .expectCompensations("charge", "reserve");
        assertEquals(2, v2.instance().orElseThrow().definitionVersion());
        assertEquals(List.of("charge o-9 in EUR", "reserve o-9"), v2.fixture().undone);
        assertTrue(v2.isClosed(), "the upgraded run finished and was not closed");
    }

    @Test
    void aCompensationOnlyTheNewVersionHasFailsWhenTheUpgradeInjectsItsFailureAndTheSagaThenNeedsAttention() {
        SagaRunReport<Shop, OrderV2> v2 = SagaTestKit.given(env -> new Shop(),
                        SagaTestKitUpgradeTest::reserveThenCharge, new OrderV1("o-10"))
                .dataUpcaster(1, json -> json.put("currency", "EUR"))
                .whenStarted()
                .upgradeTo(shop -> SagaDefinition.builder("order", OrderV2.class).version(2).dataType("order-data")
                                .step("reserve").action((order, ctx) -> order)
                                .compensation((order, ctx) -> shop.undone.add("reserve " + order.id()))
                                .step("charge").action((order, ctx) -> order)
                                .compensation((order, ctx) -> shop.undone.add("charge " + order.id()))
                                .step("hold").action((order, ctx) -> order)
                                .compensation((order, ctx) -> shop.undone.add("hold " + order.id()))
                                .compensationRetry(RetryPolicy.NONE)
                                .step("ship").action((order, ctx) -> {
                                    throw new IllegalStateException("no carrier");
                                })
                                .build(),
                        FailureInjection.compensation("hold", FailureMode.once()))
                .expectNeedsAttention()
                .expectFailureAt("ship");
        assertEquals(List.of(), v2.fixture().undone, "a compensation ran before the one of hold that failed");

        v2.retryCompensation()
                .expectCompensated()
                .expectCompensations("hold", "charge", "reserve");
        assertEquals(List.of("hold o-10", "charge o-10", "reserve o-10"), v2.fixture().undone);
    }

    @Test
    void aFailureTheUpgradeInjectsIntoAStepOrCompensationTheNewVersionLacksIsRefusedAndLeavesTheRunAsItWas() {
        SagaRunReport<Shop, OrderV1> v1 = SagaTestKit.given(env -> new Shop(),
                        SagaTestKitUpgradeTest::reserveThenCharge, new OrderV1("o-11"))
                .dataUpcaster(1, json -> json.put("currency", "EUR"))
                .whenStarted();

        assertThrows(ConfigurationException.class, () -> v1.upgradeTo(SagaTestKitUpgradeTest::reserveChargeThenNotify,
                FailureInjection.step("notfy", FailureMode.always())));
        AssertionError noCompensation = assertThrows(AssertionError.class, () -> v1.upgradeTo(
                shop -> SagaDefinition.builder("order", OrderV2.class).version(2).dataType("order-data")
                        .step("reserve").action((order, ctx) -> order)
                        .compensation((order, ctx) -> shop.undone.add("reserve " + order.id()))
                        .step("charge").action((order, ctx) -> order)
                        .compensation((order, ctx) -> shop.undone.add("charge " + order.id()))
                        .step("notify").action((order, ctx) -> order)
                        .build(),
                FailureInjection.compensation("notify", FailureMode.always())));
        assertEquals("step 'notify' has no compensation to fail", noCompensation.getMessage());

        assertTrue(!v1.isClosed(), "a refused injection closed the run");
        v1.upgradeTo(SagaTestKitUpgradeTest::reserveChargeThenNotify).expectCompleted();
    }

    @Test
    void twoFailuresOneUpgradeInjectsIntoTheSameStepAreRefusedAsConflictingAndLeaveTheRunAsItWas() {
        // The last of the two was taken without a word, the first silently dropped.
        SagaRunReport<Shop, OrderV1> v1 = SagaTestKit.given(env -> new Shop(),
                        SagaTestKitUpgradeTest::reserveThenCharge, new OrderV1("o-12"))
                .dataUpcaster(1, json -> json.put("currency", "EUR"))
                .whenStarted();

        ConfigurationException conflicting = assertThrows(ConfigurationException.class, () -> v1.upgradeTo(
                SagaTestKitUpgradeTest::reserveChargeThenNotify, FailureInjection.step("notify", FailureMode.always()),
                FailureInjection.step("notify", FailureMode.once())));
        assertTrue(conflicting.getMessage().contains("'notify'"), conflicting.getMessage());
        assertTrue(!v1.isClosed(), "a refused injection closed the run");
        // The action and the compensation of one step are two places to fail, not a conflict.
        try (SagaRunReport<Shop, OrderV2> v2 = v1.upgradeTo(SagaTestKitUpgradeTest::reserveChargeThenNotify,
                FailureInjection.step("notify", FailureMode.always()),
                FailureInjection.compensation("charge", FailureMode.always()))) {
            assertEquals("notify", v2.instance().orElseThrow().failure().step(), "the step's failure was injected");
        }
    }
}
