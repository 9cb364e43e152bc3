package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaOutcome;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.spi.SimulatedProcessCrash;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * docs/sagas.md, "Versions": a saga migrated to a version that adds a step before steps it already did (steps are
 * matched by name) runs the new step next, before the step that was in flight resumes; the new step sees the done
 * steps' results, and a later failure compensates in the new version's reverse order.
 */
class MigrationAddingAStepBeforeDoneOnesTest {
    record Order(String id, String trail) {
        Order then(String step) {
            return new Order(id, trail + step);
        }
    }

    static final class Crash extends SimulatedProcessCrash {
        Crash() {
            super("the node died in step b");
        }
    }

    private final VirtualScheduler scheduler = new VirtualScheduler();
    private final InMemorySagaStore store = new InMemorySagaStore();
    private final List<String> effects = new CopyOnWriteArrayList<>();

    /** v1: a then b; b's first run dies with its node. */
    private SagaDefinition<Order> v1() {
        return SagaDefinition.builder("order-saga", Order.class).version(1).dataType("order")
                .step("a").action((o, ctx) -> {
                    effects.add("a");
                    return o.then("a");
                })
                .step("b").action((o, ctx) -> {
                    effects.add("b v1");
                    throw new Crash();
                })
                .build();
    }

    /** v2: x (new, before a), a, b; b fails for good when {@code bFails}. */
    private SagaDefinition<Order> v2(boolean bFails) {
        return SagaDefinition.builder("order-saga", Order.class).version(2).dataType("order")
                .step("x").action((o, ctx) -> {
                    effects.add("x saw " + o.trail());
                    return o.then("x");
                }).compensation((o, ctx) -> effects.add("undo x"))
                .step("a").action((o, ctx) -> {
                    effects.add("a again");
                    return o.then("a");
                }).compensation((o, ctx) -> effects.add("undo a"))
                .step("b").action((o, ctx) -> {
                    effects.add("b v2 saw " + o.trail());
                    if (bFails) {
                        throw new IllegalStateException("declined");
                    }
                    return o.then("b");
                }).retry(RetryPolicy.NONE)
                .build();
    }

    private SagaOrchestrator upgraded(boolean bFails) {
        SagaOrchestrator old = SagaOrchestrator.builder().store(store).scheduler(scheduler).register(v1()).build();
        assertThrows(Crash.class, () -> old.start(v1(), "o-1", null, new Order("o-1", "")));
        return SagaOrchestrator.builder().store(store).scheduler(scheduler).register(v2(bFails))
                .dataUpcaster("order-saga", 1, json -> json).build();
    }

    @Test
    void theAddedStepRunsNextBeforeTheStepInFlightResumesAndSeesTheDoneStepsResults() {
        SagaOrchestrator next = upgraded(false);

        assertEquals(List.of("o-1"), next.recover().resumed());

        SagaResult<Object> result = next.result("o-1").toCompletableFuture().join();
        assertEquals(SagaOutcome.COMPLETED, result.outcome());
        assertEquals(List.of("a", "b v1", "x saw a", "b v2 saw ax"), effects);
        assertEquals(new Order("o-1", "axb"), result.data());
        next.close();
    }

    @Test
    void aLaterFailureCompensatesInTheNewVersionsReverseOrderTheAddedStepLast() {
        SagaOrchestrator next = upgraded(true);

        next.recover();

        assertEquals(SagaOutcome.COMPENSATED, next.result("o-1").toCompletableFuture().join().outcome());
        assertEquals(List.of("a", "b v1", "x saw a", "b v2 saw ax", "undo a", "undo x"), effects);
        next.close();
    }
}
