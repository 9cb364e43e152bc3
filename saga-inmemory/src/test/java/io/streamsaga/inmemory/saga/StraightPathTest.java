package io.streamsaga.inmemory.saga;

import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaListener;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaTransition;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A definition whose steps are all local and synchronous runs on the engine's straight path when nobody
 * listens to each transition, and on the general path when a listener does. Whatever happens on the way,
 * both store the same transitions, call the application the same way and end the same.
 */
class StraightPathTest {

    record Data(String id) {
    }

    enum Scenario {
        ALL_SUCCEED, LAST_STEP_FAILS, FIRST_STEP_FAILS, A_STEP_IS_RETRIED_THEN_SUCCEEDS, A_COMPENSATION_FAILS,
        AN_ACTION_CANCELS_ITS_OWN_SAGA, AN_ACTION_CANCELS_ITS_OWN_SAGA_AND_FAILS, THE_RETRIABLE_STEP_FAILS_FOR_GOOD
    }

    /** One run: the calls the application saw, the stored history and the result. */
    private record Run(List<String> calls, List<String> history, String outcome, long writes) {
    }

    @ParameterizedTest
    @EnumSource(Scenario.class)
    void theStraightPathStoresAndCallsExactlyWhatTheGeneralPathDoes(Scenario scenario) {
        Run straight = run(scenario, false);
        Run general = run(scenario, true);

        assertEquals(general.calls(), straight.calls());
        assertEquals(general.history(), straight.history());
        assertEquals(general.outcome(), straight.outcome());
        assertTrue(straight.writes() <= general.writes(), "a listener only adds writes");
    }

    private Run run(Scenario scenario, boolean withListener) {
        List<String> calls = new ArrayList<>();
        AtomicReference<SagaOrchestrator> self = new AtomicReference<>();
        SagaDefinition<Data> definition = SagaDefinition.builder("straight", Data.class)
                .step("a").action((d, ctx) -> call(calls, "a", ctx.attempt(), scenario == Scenario.FIRST_STEP_FAILS, d))
                .compensation((d, ctx) -> {
                    calls.add("undo-a/" + ctx.attempt());
                    if (scenario == Scenario.A_COMPENSATION_FAILS) {
                        throw new IllegalStateException("refund refused");
                    }
                }).compensationRetry(RetryPolicy.NONE)
                .step("b").action((d, ctx) -> {
                    if (scenario == Scenario.AN_ACTION_CANCELS_ITS_OWN_SAGA) {
                        self.get().cancel(ctx.sagaId());
                    }
                    return call(calls, "b", ctx.attempt(), false, d);
                }) // no compensation: skipped when compensating
                .step("c").action((d, ctx) -> {
                    if (scenario == Scenario.AN_ACTION_CANCELS_ITS_OWN_SAGA_AND_FAILS) {
                        self.get().cancel(ctx.sagaId()); // then fails: not retried, the saga compensates
                    }
                    return call(calls, "c", ctx.attempt(), scenario == Scenario.AN_ACTION_CANCELS_ITS_OWN_SAGA_AND_FAILS
                            || scenario == Scenario.A_STEP_IS_RETRIED_THEN_SUCCEEDS && ctx.attempt() == 1, d);
                })
                .retry(RetryPolicy.builder().maxAttempts(2).noBackoff().build())
                .compensation((d, ctx) -> calls.add("undo-c/" + ctx.attempt()))
                .step("d").action((d, ctx) -> call(calls, "d", ctx.attempt(),
                        scenario == Scenario.LAST_STEP_FAILS || scenario == Scenario.A_COMPENSATION_FAILS, d))
                .compensation((d, ctx) -> calls.add("undo-d/" + ctx.attempt()))
                .retriable("e").action((d, ctx) -> call(calls, "e", ctx.attempt(),
                        scenario == Scenario.THE_RETRIABLE_STEP_FAILS_FOR_GOOD, d))
                .retry(RetryPolicy.NONE) // exhausted at once: the saga needs attention, nothing is compensated
                .build();
        InMemorySagaStore store = new InMemorySagaStore();
        VirtualScheduler scheduler = new VirtualScheduler(Instant.EPOCH);
        SagaOrchestrator.Builder builder = SagaOrchestrator.builder().store(store).scheduler(scheduler);
        if (withListener) {
            builder.listener(new SagaListener() {
            });
        }
        try (SagaOrchestrator orchestrator = builder.build()) {
            self.set(orchestrator);
            CompletableFuture<SagaResult<Data>> result = orchestrator.start(definition, "s-1", null, new Data("d-1"))
                    .toCompletableFuture();
            while (!result.isDone() && scheduler.nextDueAt().isPresent()) {
                scheduler.advanceTo(scheduler.nextDueAt().get()); // retries without waiting
            }
            List<String> history = new ArrayList<>();
            for (SagaTransition t : store.history("s-1")) {
                history.add(t.type() + " " + t.step() + " " + t.attempt() + " " + t.detail());
            }
            return new Run(calls, history, result.join().outcome().name(), store.find("s-1").orElseThrow().version());
        }
    }

    private static Data call(List<String> calls, String step, int attempt, boolean fail, Data data) {
        calls.add(step + "/" + attempt);
        if (fail) {
            throw new IllegalStateException(step + " declined");
        }
        return data;
    }
}
