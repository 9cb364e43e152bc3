package io.streamsaga.saga;

import io.streamsaga.ConfigurationException;
import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SagaDefinitionTest {
    record Data(String id) {
    }

    record Reply(boolean ok) {
    }

    private static SagaDefinition.Builder<Data> saga() {
        return SagaDefinition.builder("order-saga", Data.class);
    }

    @Test
    void compensatableStepAfterThePivotIsRejectedWithAClearMessage() {
        ConfigurationException e = assertThrows(ConfigurationException.class, () -> saga()
                .step("create-order").action((d, c) -> d).compensation((d, c) -> { })
                .pivot("process-payment").action((d, c) -> d)
                .step("reserve-inventory").action((d, c) -> d).compensation((d, c) -> { })
                .build());

        assertEquals("saga 'order-saga': compensatable step 'reserve-inventory' comes after the pivot step "
                + "'process-payment'; steps after the pivot cannot be undone and must be retriable "
                + "(declare it with retriable(\"reserve-inventory\"))", e.getMessage());
    }

    @Test
    void compensatableStepAfterARetriableStepIsRejected() {
        ConfigurationException e = assertThrows(ConfigurationException.class, () -> saga()
                .retriable("notify").action((d, c) -> d)
                .step("charge").action((d, c) -> d)
                .build());
        assertTrue(e.getMessage().contains("after the retriable step 'notify'"), e.getMessage());
    }

    @Test
    void onlyOnePivotIsAllowedAndItMustPrecedeRetriableSteps() {
        assertThrows(ConfigurationException.class, () -> saga()
                .pivot("a").action((d, c) -> d).pivot("b").action((d, c) -> d).build());
        ConfigurationException e = assertThrows(ConfigurationException.class, () -> saga()
                .retriable("a").action((d, c) -> d).pivot("b").action((d, c) -> d).build());
        assertTrue(e.getMessage().contains("pivot step 'b' comes after the retriable step 'a'"), e.getMessage());
    }

    @Test
    void pivotAndRetriableStepsCannotHaveCompensations() {
        ConfigurationException e = assertThrows(ConfigurationException.class, () -> saga()
                .pivot("pay").action((d, c) -> d).compensation((d, c) -> { }).build());
        assertEquals("saga 'order-saga': pivot step 'pay' cannot have a compensation (only compensatable steps are undone)",
                e.getMessage());
        assertThrows(ConfigurationException.class, () -> saga()
                .retriable("ship").action((d, c) -> d).compensation((d, c) -> { }).build());
        assertThrows(ConfigurationException.class, () -> saga()
                .pivot("pay").action((d, c) -> d).asyncCompensation((d, c) -> CompletableFuture.completedFuture(null)).build());
    }

    @Test
    void aStepHasAtMostOneCompensationSynchronousOrAsynchronous() {
        ConfigurationException e = assertThrows(ConfigurationException.class, () -> saga()
                .step("ship").action((d, c) -> d).compensation((d, c) -> { })
                .asyncCompensation((d, c) -> CompletableFuture.completedFuture(null))
                .build());
        assertEquals("saga 'order-saga': step 'ship' needs at most one of compensation(...), asyncCompensation(...) "
                + "or compensationCommand(...), but has 2", e.getMessage());

        SagaDefinition<?> definition = saga().step("ship").action((d, c) -> d)
                .asyncCompensation((d, c) -> CompletableFuture.completedFuture(null)).build();
        SagaStep<?> ship = definition.step("ship");
        assertTrue(ship.hasCompensation());
        assertNull(ship.compensation());
        assertNotNull(ship.asyncCompensation());
        assertFalse(saga().step("ship").action((d, c) -> d).build().step("ship").hasCompensation());
    }

    @Test
    void aRemoteCompensationNeedsItsCommandAndItsReplyHandler() {
        ConfigurationException e = assertThrows(ConfigurationException.class, () -> saga()
                .step("reserve").action((d, c) -> d).compensationCommand("stock-commands", (d, c) -> "release")
                .build());
        assertEquals("saga 'order-saga': step 'reserve' needs both compensationCommand(...) and onCompensationReply(...) "
                + "for a remote compensation", e.getMessage());

        SagaDefinition<?> definition = saga().step("reserve").action((d, c) -> d)
                .compensationCommand("stock-commands", (d, c) -> "release")
                .onCompensationReply(String.class, (d, reply) -> { })
                .build();
        SagaStep<?> reserve = definition.step("reserve");
        assertTrue(reserve.hasCompensation());
        assertTrue(reserve.usesBus());
        assertFalse(reserve.isRemote());
        assertEquals("stock-commands", reserve.remoteCompensation().orElseThrow().commandTopic());
        assertTrue(definition.toMermaid().contains("undone by command to stock-commands"), definition.toMermaid());
    }

    @Test
    void aStepNeedsExactlyOneKindOfActionAndARemoteStepNeedsItsReplyHandler() {
        assertThrows(ConfigurationException.class, () -> saga().step("empty").build());
        assertThrows(ConfigurationException.class, () -> saga().step("both").action((d, c) -> d)
                .command("payment-commands", (d, c) -> d).onReply(Reply.class, (d, r) -> d).build());
        ConfigurationException e = assertThrows(ConfigurationException.class, () -> saga().step("pay")
                .command("payment-commands", (d, c) -> d).build());
        assertTrue(e.getMessage().contains("needs both command(...) and onReply(...)"), e.getMessage());
    }

    /** remoteStep(...) is deprecated for step(...), which declares local and remote steps alike: it still builds the same. */
    @Test
    @SuppressWarnings("deprecation")
    void theDeprecatedRemoteStepDeclaresTheSameCompensatableStepAsStep() {
        SagaDefinition<Data> saga = saga()
                .remoteStep("hold").command("hold-commands", (d, c) -> d).onReply(Reply.class, (d, r) -> d)
                .remoteStep("pay").command("payment-commands", (d, c) -> d).onReply(Reply.class, (d, r) -> d)
                .parallel(g -> g.remoteStep("ship").command("shipping-commands", (d, c) -> d)
                        .onReply(Reply.class, (d, r) -> d))
                .build();

        assertEquals(List.of(StepRole.COMPENSATABLE, StepRole.COMPENSATABLE, StepRole.COMPENSATABLE),
                saga.steps().stream().map(SagaStep::role).toList());
        assertTrue(saga.steps().stream().allMatch(SagaStep::isRemote));
        assertEquals(List.of(List.of("hold"), List.of("pay"), List.of("ship")),
                saga.groups().stream().map(g -> g.stream().map(SagaStep::name).toList()).toList());
    }

    @Test
    void aCompensationTimeoutMustBePositiveAndBoundACompensationTheEngineDoesNotBlockOn() {
        ConfigurationException zero = assertThrows(ConfigurationException.class, () -> saga()
                .step("ship").action((d, c) -> d).compensationTimeout(java.time.Duration.ZERO));
        assertEquals("step 'ship': compensationTimeout must be positive, but was PT0S", zero.getMessage());
        assertThrows(ConfigurationException.class, () -> saga()
                .step("ship").action((d, c) -> d).compensationTimeout(java.time.Duration.ofSeconds(-1)));
        assertThrows(ConfigurationException.class, () -> saga().step("ship").action((d, c) -> d).compensationTimeout(null));

        ConfigurationException none = assertThrows(ConfigurationException.class, () -> saga()
                .step("ship").action((d, c) -> d).compensationTimeout(java.time.Duration.ofMinutes(5)).build());
        assertEquals("saga 'order-saga': step 'ship' has a compensationTimeout (PT5M) but no compensation", none.getMessage());
        ConfigurationException blocking = assertThrows(ConfigurationException.class, () -> saga()
                .step("ship").action((d, c) -> d).compensation((d, c) -> { })
                .compensationTimeout(java.time.Duration.ofMinutes(5)).build());
        assertTrue(blocking.getMessage().startsWith("saga 'order-saga': step 'ship' has a compensationTimeout (PT5M) but "
                + "a synchronous compensation"), blocking.getMessage());

        SagaDefinition<Data> definition = saga() // ship's timeout bounds its asynchronous action, the other its undo
                .step("ship").asyncAction((d, c) -> CompletableFuture.completedFuture(d))
                .asyncCompensation((d, c) -> CompletableFuture.completedFuture(null))
                .timeout(java.time.Duration.ofSeconds(30)).compensationTimeout(java.time.Duration.ofMinutes(5))
                .step("pack").action((d, c) -> d).asyncCompensation((d, c) -> CompletableFuture.completedFuture(null))
                .timeout(java.time.Duration.ofSeconds(30))
                .step("label").action((d, c) -> d)
                .build();
        assertEquals(java.time.Duration.ofSeconds(30), definition.step("ship").timeout());
        assertEquals(java.time.Duration.ofMinutes(5), definition.step("ship").compensationTimeout());
        assertEquals(java.time.Duration.ofSeconds(30), definition.step("pack").compensationTimeout()); // the step's
        assertNull(definition.step("label").compensationTimeout());
    }

    @Test
    void aCompensationRetryPolicyOnAStepWithoutACompensationIsRefusedAsACompensationTimeoutIs() {
        ConfigurationException pivot = assertThrows(ConfigurationException.class, () -> saga()
                .step("reserve").action((d, c) -> d).compensation((d, c) -> { })
                .pivot("charge").action((d, c) -> d).compensationRetry(io.streamsaga.retry.RetryPolicy.NONE)
                .build());
        assertEquals("saga 'order-saga': step 'charge' has a compensationRetry policy but no compensation", pivot.getMessage());
        assertThrows(ConfigurationException.class, () -> saga()
                .step("ship").action((d, c) -> d).compensationRetry(io.streamsaga.retry.RetryPolicy.DEFAULT).build());

        SagaDefinition<Data> definition = saga()
                .step("ship").action((d, c) -> d).compensation((d, c) -> { })
                .compensationRetry(io.streamsaga.retry.RetryPolicy.NONE)
                .step("label").action((d, c) -> d)
                .build();
        assertEquals(io.streamsaga.retry.RetryPolicy.NONE, definition.step("ship").compensationRetryPolicy());
        assertEquals(io.streamsaga.retry.RetryPolicy.DEFAULT, definition.step("label").compensationRetryPolicy());
    }

    @Test
    void aTimeoutThatWouldBoundNothingIsRefusedAsACompensationTimeoutIs() {
        // A synchronous action outside a parallel group of two or more runs to its end on the driving thread, and a
        // synchronous compensation there too: a timeout on such a step bounded nothing, silently (a hanging call hung
        // the saga for ever, its timeout notwithstanding).
        java.time.Duration tenSeconds = java.time.Duration.ofSeconds(10);
        ConfigurationException lone = assertThrows(ConfigurationException.class, () -> saga()
                .step("reserve").action((d, c) -> d).compensation((d, c) -> { }).timeout(tenSeconds).build());
        assertTrue(lone.getMessage().startsWith("saga 'order-saga': step 'reserve' has a timeout (PT10S) but a "
                + "synchronous action"), lone.getMessage());
        assertThrows(ConfigurationException.class, () -> saga()
                .pivot("charge").action((d, c) -> d).timeout(tenSeconds).build());
        assertThrows(ConfigurationException.class, () -> saga()
                .step("reserve").action((d, c) -> d).compensation((d, c) -> { })
                .retriable("ship").action((d, c) -> d).timeout(tenSeconds).build());
        assertThrows(ConfigurationException.class, () -> saga()
                .parallel(g -> g.step("ship").action((d, c) -> d).timeout(tenSeconds)).build());

        // Where it bounds something: an asynchronous or remote compensation, a member of a group of two, an async action.
        SagaDefinition<Data> definition = saga()
                .step("reserve").action((d, c) -> d)
                .asyncCompensation((d, c) -> java.util.concurrent.CompletableFuture.completedFuture(null))
                .timeout(tenSeconds)
                .parallel(g -> {
                    g.step("hotel").action((d, c) -> d).timeout(tenSeconds);
                    g.step("flight").action((d, c) -> d);
                })
                .step("label").asyncAction((d, c) -> java.util.concurrent.CompletableFuture.completedFuture(d))
                .timeout(tenSeconds)
                .build();
        assertEquals(tenSeconds, definition.step("reserve").timeout());
        assertEquals(tenSeconds, definition.step("hotel").timeout());
    }

    @Test
    void aTimeoutThatACompensationTimeoutOverridesOnASynchronousActionIsRefusedAsBoundingNothing() {
        // The compensation's own timeout bounds the asynchronous or remote compensation, and the synchronous action
        // runs to its end on the driving thread: the step's timeout was left to bound nothing, silently.
        java.time.Duration tenSeconds = java.time.Duration.ofSeconds(10);
        ConfigurationException overridden = assertThrows(ConfigurationException.class, () -> saga()
                .step("reserve").action((d, c) -> d)
                .asyncCompensation((d, c) -> java.util.concurrent.CompletableFuture.completedFuture(null))
                .timeout(tenSeconds).compensationTimeout(java.time.Duration.ofMinutes(1))
                .build());
        assertTrue(overridden.getMessage().startsWith("saga 'order-saga': step 'reserve' has a timeout (PT10S) but a "
                + "synchronous action"), overridden.getMessage());

        // Either alone bounds the compensation; on an asynchronous action both apply.
        SagaDefinition<Data> definition = saga()
                .step("reserve").action((d, c) -> d)
                .asyncCompensation((d, c) -> java.util.concurrent.CompletableFuture.completedFuture(null))
                .compensationTimeout(java.time.Duration.ofMinutes(1))
                .step("label").asyncAction((d, c) -> java.util.concurrent.CompletableFuture.completedFuture(d))
                .asyncCompensation((d, c) -> java.util.concurrent.CompletableFuture.completedFuture(null))
                .timeout(tenSeconds).compensationTimeout(java.time.Duration.ofMinutes(1))
                .build();
        assertEquals(java.time.Duration.ofMinutes(1), definition.step("reserve").compensationTimeout());
        assertEquals(tenSeconds, definition.step("label").timeout());
    }

    @Test
    void aLoneMemberOfAParallelGroupRefusesACompensationTimeoutOnItsSynchronousCompensation() {
        // A group of one runs its member's synchronous compensation on the driving thread, to its end: the
        // timeout would be silently ignored. Two members compensate on the parallel executor: bounded.
        ConfigurationException lone = assertThrows(ConfigurationException.class, () -> saga()
                .parallel(g -> g.step("ship").action((d, c) -> d).compensation((d, c) -> { })
                        .compensationTimeout(java.time.Duration.ofMinutes(5)))
                .build());
        assertTrue(lone.getMessage().startsWith("saga 'order-saga': step 'ship' has a compensationTimeout (PT5M) but "
                + "a synchronous compensation"), lone.getMessage());

        SagaDefinition<Data> definition = saga()
                .parallel(g -> {
                    g.step("ship").action((d, c) -> d).compensation((d, c) -> { })
                            .compensationTimeout(java.time.Duration.ofMinutes(5));
                    g.step("bill").action((d, c) -> d);
                })
                .build();
        assertEquals(java.time.Duration.ofMinutes(5), definition.step("ship").compensationTimeout());
    }

    @Test
    void stepNamesMustBeUniqueAndTheSagaMustHaveSteps() {
        assertThrows(ConfigurationException.class, () -> saga().build());
        ConfigurationException e = assertThrows(ConfigurationException.class, () -> saga()
                .step("a").action((d, c) -> d).step("a").action((d, c) -> d).build());
        assertEquals("saga 'order-saga': step name 'a' is used twice", e.getMessage());
        assertThrows(ConfigurationException.class, () -> saga().version(0));
        assertThrows(ConfigurationException.class, () -> saga().dataType(" "));
    }

    @Test
    void aSlashInAStepNameIsRejectedBecauseItWouldShareIdsAndKeysWithAnotherStepsCompensation() {
        // 'x/compensation' would get the command ids and idempotency key of step x's compensation
        ConfigurationException e = assertThrows(ConfigurationException.class, () -> saga()
                .step("x").action((d, c) -> d).compensation((d, c) -> { })
                .step("x/compensation").action((d, c) -> d));
        assertEquals("saga 'order-saga': step name 'x/compensation' must not contain '/' (it separates the step from "
                + "the rest of its command ids and idempotency keys)", e.getMessage());
        assertThrows(ConfigurationException.class, () -> saga().pivot("a/b"));
        assertThrows(ConfigurationException.class, () -> saga().retriable("a/b"));
        assertThrows(ConfigurationException.class, () -> saga().parallel(g -> g.step("a/b")));
    }

    @Test
    void chainingTheNextStepFromAParallelMemberIsRejectedInsteadOfLeavingTheGroupSilently() {
        ConfigurationException e = assertThrows(ConfigurationException.class, () -> saga()
                .parallel(g -> g.step("a").action((d, c) -> d).step("b")));
        assertTrue(e.getMessage().contains("member of a parallel group"), e.getMessage());
    }

    @Test
    void defaultsAreExplicitTypeIdAndRetryPoliciesByRole() {
        SagaDefinition<Data> definition = saga()
                .step("reserve").action((d, c) -> d).compensation((d, c) -> { })
                .pivot("pay").action((d, c) -> d)
                .retriable("ship").action((d, c) -> d)
                .build();

        assertEquals("order-saga-data", definition.dataType());
        assertEquals(1, definition.version());
        assertEquals(1, definition.step("reserve").retryPolicy().maxAttempts());
        assertEquals(Integer.MAX_VALUE, definition.step("ship").retryPolicy().maxAttempts());
        assertEquals(List.of(StepRole.COMPENSATABLE, StepRole.PIVOT, StepRole.RETRIABLE),
                definition.steps().stream().map(SagaStep::role).toList());
        assertThrows(ConfigurationException.class, () -> definition.step("missing"));
    }

    @Test
    void parallelMembersShareAGroupAndKeepTheirOrder() {
        SagaDefinition<Data> definition = saga()
                .step("validate").action((d, c) -> d)
                .parallel(g -> {
                    g.step("hotel").action((d, c) -> d).compensation((d, c) -> { });
                    g.step("flight").command("flight-commands", (d, c) -> d).onReply(Reply.class, (d, r) -> d);
                })
                .pivot("charge").action((d, c) -> d)
                .build();

        assertEquals(3, definition.groups().size());
        assertEquals(List.of("hotel", "flight"), definition.groups().get(1).stream().map(SagaStep::name).toList());
        assertEquals(1, definition.step("flight").group());
        assertEquals(2, definition.step("flight").index());
        assertTrue(definition.step("flight").isRemote());
        assertFalse(definition.step("hotel").isRemote());
    }

    @Test
    void definitionExportsAMermaidFlowchartWithCompensationsInReverse() {
        String mermaid = saga()
                .step("create-order").action((d, c) -> d).compensation((d, c) -> { })
                .step("reserve-inventory").action((d, c) -> d).compensation((d, c) -> { })
                .pivot("process-payment").action((d, c) -> d)
                .retriable("schedule-shipping").action((d, c) -> d)
                .build().toMermaid();

        assertTrue(mermaid.startsWith("flowchart TD\n"), mermaid);
        assertTrue(mermaid.contains("s0[\"create-order\"] --> s1[\"reserve-inventory\"]") || mermaid.contains("s0 --> s1"), mermaid);
        assertTrue(mermaid.contains("s2{\"process-payment<br/>(pivot)\"}"), mermaid);
        assertTrue(mermaid.contains("c1[/\"undo reserve-inventory\"/] --> c0"), mermaid);
        assertTrue(mermaid.contains("c0[/\"undo create-order\"/] --> compensated([compensated])"), mermaid);
        assertTrue(mermaid.contains("s2 -. fails .-> c1"), mermaid);
        assertTrue(mermaid.contains("s3 -. retry .-> s3"), mermaid);
    }

    @Test
    void flowchartOfAParallelGroupForksJoinsAndUndoesCompletedMembersTogether() {
        String mermaid = saga()
                .step("validate").action((d, c) -> d).compensation((d, c) -> { })
                .parallel(g -> {
                    g.step("hotel").action((d, c) -> d).compensation((d, c) -> { });
                    g.step("flight").command("flight-commands", (d, c) -> d).onReply(Reply.class, (d, r) -> d)
                            .compensation((d, c) -> { });
                })
                .pivot("charge").action((d, c) -> d)
                .build().toMermaid();

        assertTrue(mermaid.contains("s0 --> fork1{{fork}}"), mermaid);
        assertTrue(mermaid.contains("fork1 --> s2[\"flight<br/>command to flight-commands\"]"), mermaid);
        assertTrue(mermaid.contains("join1 --> s3{\"charge<br/>(pivot)\"}"), mermaid);
        assertTrue(mermaid.contains("c1[/\"undo completed of hotel, flight\"/] --> c0"), mermaid);
        assertTrue(mermaid.contains("s1 -. fails .-> c1"), mermaid);
        assertTrue(mermaid.contains("s3 -. fails .-> c1"), mermaid);
        assertTrue(mermaid.contains("s0 -. fails .-> compensated"), mermaid);
    }

    @Test
    void recordedRunExportsAMermaidSequenceDiagramInOrder() {
        Instant t = Instant.parse("2026-01-01T00:00:00Z");
        List<SagaTransition> history = List.of(
                new SagaTransition("s", 1, t, TransitionType.SAGA_STARTED, null, 0, null),
                new SagaTransition("s", 2, t, TransitionType.STEP_STARTED, "reserve", 1, null),
                new SagaTransition("s", 3, t, TransitionType.STEP_SUCCEEDED, "reserve", 1, null),
                new SagaTransition("s", 4, t, TransitionType.STEP_STARTED, "pay", 1, null),
                new SagaTransition("s", 5, t, TransitionType.STEP_FAILED, "pay", 1, "IllegalStateException: declined"),
                new SagaTransition("s", 6, t, TransitionType.SAGA_COMPENSATING, null, 0, null),
                new SagaTransition("s", 7, t, TransitionType.COMPENSATION_STARTED, "reserve", 1, null),
                new SagaTransition("s", 8, t, TransitionType.COMPENSATION_SUCCEEDED, "reserve", 1, null),
                new SagaTransition("s", 9, t, TransitionType.SAGA_COMPENSATED, null, 0, null));

        String diagram = SagaDiagrams.sequence("order-saga", history);

        assertEquals("""
                sequenceDiagram
                  participant O as order-saga
                  participant reserve as reserve
                  participant pay as pay
                  Note over O: started
                  O->>reserve: execute (attempt 1)
                  reserve-->>O: succeeded
                  O->>pay: execute (attempt 1)
                  pay--xO: failed: IllegalStateException: declined
                  Note over O: compensating
                  O->>reserve: compensate (attempt 1)
                  reserve-->>O: compensated
                  Note over O: compensated
                """, diagram);
    }
}
