package io.streamsaga.inmemory.saga;

import io.streamsaga.ConfigurationException;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.saga.SagaDataUpcaster;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaException;
import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.TransitionType;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A recovery that cannot resume a saga reports it unresolvable; why was only in its ERROR log, so an operator (and the
 * test kit's upgrade) reading the {@link SagaOrchestrator.RecoveryReport} could not tell a missing upcaster from one
 * that threw, data the new version cannot read, or a started step the new version no longer has. The report now
 * gives the reason of each unresolvable saga by its id ({@code unresolvableReasons}), the ids still in
 * {@code unresolvable()}.
 */
class RecoveryReportReasonsTest {
    record OrderV1(String id) {
    }

    record OrderV2(String id, int quantity) {
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemorySagaStore store = new InMemorySagaStore();

    /** Starts saga {@code id} under version 1, shipping (a stage still open) when the application stops. */
    private void startUnderVersionOne(String... ids) {
        SagaDefinition<OrderV1> v1 = SagaDefinition.builder("order", OrderV1.class).dataType("order-data")
                .step("pay").action((d, ctx) -> d)
                .step("ship").asyncAction((d, ctx) -> new CompletableFuture<>())
                .build();
        try (SagaOrchestrator first = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(v1).build()) {
            for (String id : ids) {
                first.start(v1, id, null, new OrderV1("o-" + id));
            }
        }
    }

    private SagaOrchestrator.RecoveryReport recover(SagaDefinition<OrderV2> v2, SagaDataUpcaster upcaster) {
        SagaOrchestrator.Builder builder = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(v2);
        if (upcaster != null) {
            builder.dataUpcaster("order", 1, upcaster);
        }
        try (SagaOrchestrator second = builder.build()) {
            return second.recover();
        }
    }

    private static SagaDefinition<OrderV2> versionTwo() {
        return SagaDefinition.builder("order", OrderV2.class).version(2).dataType("order-data")
                .step("pay").action((d, ctx) -> d)
                .step("ship").action((d, ctx) -> d)
                .build();
    }

    @Test
    void eachUnresolvableSagaIsReportedWithWhyTheRecoveryCouldNotMigrateIt() {
        startUnderVersionOne("throws", "no-data", "unfit", "good");

        SagaOrchestrator.RecoveryReport report = recover(versionTwo(), json -> switch (json.get("id").asText()) {
            case "o-throws" -> throw new IllegalStateException("no quantity for o-throws");
            case "o-no-data" -> null;
            case "o-unfit" -> json.put("quantity", "a dozen");
            default -> json.put("quantity", 1);
        });

        assertEquals(List.of("good"), report.resumed());
        assertEquals(Set.of("throws", "no-data", "unfit"), Set.copyOf(report.unresolvable())); // in the store's order
        assertEquals(report.unresolvable(), List.copyOf(report.unresolvableReasons().keySet()));
        assertEquals("the upcaster of 'order' from version 1 threw java.lang.IllegalStateException: no quantity for"
                + " o-throws", report.unresolvableReasons().get("throws"));
        assertEquals("the upcaster of 'order' from version 1 returned no data", report.unresolvableReasons().get("no-data"));
        String unfit = report.unresolvableReasons().get("unfit");
        assertTrue(unfit.startsWith("saga data of type 'order-data' cannot be read as " + OrderV2.class.getName() + ": "),
                unfit);
        assertTrue(unfit.contains("a dozen"), unfit);
    }

    @Test
    void aStartedStepTheNewVersionNoLongerHasAndAMissingUpcasterAreEachReportedAsTheReason() {
        startUnderVersionOne("s-1");
        SagaDefinition<OrderV2> withoutShipping = SagaDefinition.builder("order", OrderV2.class).version(2)
                .dataType("order-data")
                .step("pay").action((d, ctx) -> d)
                .step("deliver").action((d, ctx) -> d)
                .build();

        assertEquals(Map.of("s-1", "step 'ship' (RUNNING) no longer exists in 'order' version 2"),
                recover(withoutShipping, json -> json.put("quantity", 1)).unresolvableReasons());
        assertEquals(Map.of("s-1", "'order' version 1 is not registered and no upcaster migrates its data from"
                + " version 1"), recover(versionTwo(), null).unresolvableReasons());
    }

    @Test
    void aReportMadeWithoutReasonsHasNoneAndAReasonForASagaNotReportedUnresolvableIsRefused() {
        SagaOrchestrator.RecoveryReport byHand = new SagaOrchestrator.RecoveryReport(List.of("a"), List.of("b"));
        assertEquals(Map.of(), byHand.unresolvableReasons());
        assertEquals(List.of("b"), byHand.unresolvable());

        ConfigurationException refused = assertThrows(ConfigurationException.class,
                () -> new SagaOrchestrator.RecoveryReport(List.of(), List.of("b"), List.of(), List.of(),
                        Map.of("c", "why")));
        assertEquals("a reason is given for saga c, which is not reported unresolvable", refused.getMessage());
    }

    @Test
    void aStoreFailureWithoutAMessageIsReportedByItsClassNotByTheGenericReason() {
        startUnderVersionOne("silent", "good");
        // An application's store may throw the SPI's SagaException without a message: the reason taken was its null
        // message, which the generic "it cannot be resumed here" then replaced (putIfAbsent), the store failure lost.
        ForwardingSagaStore silent = new ForwardingSagaStore(store) {
            @Override
            public void update(SagaInstance updated, SagaTransition transition) {
                if (transition.type() == TransitionType.SAGA_MIGRATED && updated.sagaId().equals("silent")) {
                    throw new SagaException(updated.sagaId(), null, null, null, true);
                }
                delegate.update(updated, transition);
            }
        };
        SagaOrchestrator.RecoveryReport report;
        try (SagaOrchestrator second = SagaOrchestrator.builder().store(silent).scheduler(scheduler).register(versionTwo())
                .dataUpcaster("order", 1, json -> json.put("quantity", 1)).build()) {
            report = second.recover();
        }

        assertEquals(List.of("good"), report.resumed());
        assertEquals(Map.of("silent", SagaException.class.getName()), report.unresolvableReasons());
    }
}
