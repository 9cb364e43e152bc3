package io.streamsaga.inmemory.saga;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.saga.testkit.ExplorationReport;
import io.streamsaga.inmemory.saga.testkit.ExplorationReport.Kind;
import io.streamsaga.inmemory.saga.testkit.SagaCrashExplorer;
import io.streamsaga.inmemory.saga.testkit.SagaRunReport;
import io.streamsaga.inmemory.saga.testkit.SagaTestEnvironment;
import io.streamsaga.message.Message;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaStep;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.function.Function;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The crash explorer on saga shapes an adopter writes and the other exploration tests do not: a pivot first, only
 * retriable steps, parallel groups first, last and back to back, remote members with compensation replies, steps
 * without compensation between compensatable ones, asynchronous actions and compensations with timeouts and retries on
 * the virtual clock, effects keyed by the business key, and a long saga; each correct one passes with every effect
 * undone exactly once, in reverse order, the compensation seeing its step's result, and a broken application fails it.
 */
class CrashExplorerShapesTest {

    /** The saga data: the marks the steps left, one per step, so a compensation can tell what it sees. */
    record Doc(List<String> marks) {
        Doc with(String mark) {
            List<String> next = new ArrayList<>(marks);
            next.add(mark);
            return new Doc(next);
        }
    }

    static final Doc START = new Doc(List.of());

    record Hold(String item) {
    }

    record Held(String holdId) {
    }

    record Release(String holdId) {
    }

    record Released(String holdId) {
    }

    static TypeRegistry types() {
        return TypeRegistry.builder()
                .register("hold", 1, Hold.class)
                .register("held", 1, Held.class)
                .register("release", 1, Release.class)
                .register("released", 1, Released.class)
                .build();
    }

    /**
     * The application: effects applied and undone by idempotency key; a warehouse participant on the bus that holds
     * and releases idempotently (a release that comes first leaves a tombstone). {@code careless} undoes without
     * looking at the key, as a broken application would.
     */
    static final class Ledger {
        final SagaTestEnvironment env;
        final Map<String, Integer> applied = new HashMap<>();
        final Set<String> live = new LinkedHashSet<>();
        final List<String> undone = new ArrayList<>();
        final Map<String, Doc> seenByUndo = new HashMap<>();
        boolean careless;

        Ledger(SagaTestEnvironment env) {
            this.env = env;
            EventBus bus = env.bus();
            bus.subscribe("warehouse", "hold-commands", Hold.class, (command, ctx) -> {
                String key = ctx.message().header(SagaMessages.IDEMPOTENCY_KEY).orElseThrow();
                synchronized (this) {
                    if (!applied.containsKey("release:" + key)) {
                        apply(key);
                    }
                    SagaMessages.reply(bus, ctx.message(), new Held(key));
                }
            });
            bus.subscribe("warehouse", "release-commands", Release.class, SubscriptionOptions.fromEarliest(), (command, ctx) -> {
                Message message = ctx.message();
                String key = message.header(SagaMessages.IDEMPOTENCY_KEY).orElseThrow();
                String stepKey = key.substring(0, key.length() - "/compensation".length());
                synchronized (this) {
                    applied.putIfAbsent("release:" + stepKey, 1);
                    undo(stepKey, null);
                    SagaMessages.reply(bus, message, new Released(command.holdId()));
                }
            });
        }

        synchronized String apply(String key) {
            if (applied.putIfAbsent(key, 1) == null) { // idempotent: a repeat under the same key does nothing
                live.add(key);
            }
            return key;
        }

        synchronized void undo(String key, Doc seen) {
            if (live.remove(key) || careless) {
                undone.add(key);
                if (seen != null) {
                    seenByUndo.put(key, seen);
                }
            }
        }

        <T> CompletableFuture<T> async(Supplier<T> work) {
            return CompletableFuture.supplyAsync(work, env.executor());
        }
    }

    static String key(String step) {
        return SagaRunReport.SAGA_ID + "/" + step;
    }

    /** A local step that applies its effect and marks the data, undone by its key. */
    static void local(SagaDefinition.StepBuilder<Doc> step, Ledger l) {
        step.action((d, ctx) -> d.with(l.apply(ctx.idempotencyKey())))
                .compensation((d, ctx) -> l.undo(ctx.idempotencyKey(), d));
    }

    /**
     * A completed saga applied every step's and undid none; otherwise every
     * compensatable step's effect was undone exactly once, later groups first, each compensation seeing its step's mark.
     */
    static void consistent(Ledger l, SagaRunReport<Ledger, Doc> run) {
        SagaDefinition<Doc> definition = run.definition();
        assertEquals(new HashSet<>(l.undone).size(), l.undone.size(), "an effect undone twice: " + l.undone);
        if (run.status() == SagaStatus.COMPLETED) {
            for (SagaStep<Doc> step : definition.steps()) {
                assertTrue(l.live.contains(key(step.name())), "completed without the effect of " + step.name());
                assertTrue(run.result().data().marks().contains(key(step.name())), "data lacks " + step.name());
            }
            assertEquals(List.of(), l.undone, "completed but undone");
            return;
        }
        for (SagaStep<Doc> step : definition.steps()) {
            if (step.hasCompensation()) {
                assertFalse(l.live.contains(key(step.name())), step.name() + " took effect and was not undone");
            }
        }
        int lastGroup = Integer.MAX_VALUE;
        for (String key : l.undone) {
            int group = definition.step(key.substring(key.indexOf('/') + 1)).group();
            assertTrue(group <= lastGroup, "undone out of order: " + l.undone);
            lastGroup = group;
        }
        l.seenByUndo.forEach((key, seen) -> assertTrue(seen.marks().contains(key),
                "the compensation of " + key + " saw " + seen + ", without its step's result"));
    }

    static ExplorationReport explore(Function<Ledger, SagaDefinition<Doc>> definition) {
        return SagaCrashExplorer.forSaga(Ledger::new, definition, START).types(types())
                .invariant(CrashExplorerShapesTest::consistent).explore();
    }

    static long named(ExplorationReport report, String prefix) {
        return report.scenarios().stream().filter(s -> s.name().startsWith(prefix)).count();
    }

    @Test
    void aSagaWhoseFirstStepIsThePivotIsExploredWithNothingToCompensate() {
        ExplorationReport report = explore(l -> SagaDefinition.builder("pivot-first", Doc.class)
                .pivot("charge").action((d, ctx) -> d.with(l.apply(ctx.idempotencyKey())))
                .retriable("notify").action((d, ctx) -> d.with(l.apply(ctx.idempotencyKey())))
                .retry(RetryPolicy.builder().maxAttempts(4).initialBackoff(Duration.ofMinutes(1)).jitter(0).build())
                .build());

        assertEquals(2, named(report, "step "));
        assertEquals(0, named(report, "compensation of "));
        assertTrue(report.crashScenarios() > 0);
        assertTrue(report.scenarios().stream().filter(s -> s.name().equals("step charge fails"))
                .allMatch(s -> s.finalStatus() == SagaStatus.COMPENSATED), "scenarios: " + report.scenarios());
    }

    @Test
    void aSagaOfRetriableStepsOnlyCompletesAfterEachFailureAndCrash() {
        ExplorationReport report = explore(l -> SagaDefinition.builder("retriable-only", Doc.class)
                .retriable("a").action((d, ctx) -> d.with(l.apply(ctx.idempotencyKey())))
                .retriable("b").asyncAction((d, ctx) -> l.async(() -> d.with(l.apply(ctx.idempotencyKey()))))
                .timeout(Duration.ofSeconds(5))
                .retry(RetryPolicy.builder().maxAttempts(3).initialBackoff(Duration.ofSeconds(2)).jitter(0).build())
                .build());

        assertTrue(report.scenarios().stream().allMatch(s -> s.finalStatus() == SagaStatus.COMPLETED),
                "scenarios: " + report.scenarios());
        assertEquals(2, named(report, "step "));
    }

    static SagaDefinition<Doc> groupsEverywhere(Ledger l) {
        SagaDefinition.Builder<Doc> b = SagaDefinition.builder("groups", Doc.class);
        b.parallel(g -> {
            local(g.step("g1-a"), l);
            g.step("g1-b").asyncAction((d, ctx) -> l.async(() -> d.with(l.apply(ctx.idempotencyKey()))))
                    .asyncCompensation((d, ctx) -> l.async(() -> {
                        l.undo(ctx.idempotencyKey(), d);
                        return null;
                    }))
                    .timeout(Duration.ofSeconds(10));
            g.merge(CrashExplorerShapesTest::union);
        });
        b.parallel(g -> {
            local(g.step("g2-a"), l);
            g.step("g2-hold").command("hold-commands", (d, ctx) -> new Hold("box"))
                    .onReply(Held.class, (d, reply) -> d.with(reply.holdId()))
                    .timeout(Duration.ofSeconds(30))
                    .compensationCommand("release-commands", (d, ctx) -> new Release(key("g2-hold")))
                    .onCompensationReply(Released.class, (d, reply) -> {
                    })
                    .compensationRetry(RetryPolicy.builder().maxAttempts(3).initialBackoff(Duration.ofSeconds(1)).jitter(0).build());
            g.merge(CrashExplorerShapesTest::union);
        });
        // no compensation between compensatable steps
        b.step("audit").action((d, ctx) -> d.with(l.apply(ctx.idempotencyKey())));
        b.parallel(g -> {
            local(g.step("g3-a"), l);
            local(g.step("g3-b"), l);
            g.merge(CrashExplorerShapesTest::union);
        });
        return b.build();
    }

    /** Merges the marks of parallel members: each keeps the current marks and adds its own. */
    static Doc union(Doc current, Doc result) {
        LinkedHashSet<String> marks = new LinkedHashSet<>(current.marks());
        marks.addAll(result.marks());
        return new Doc(List.copyOf(marks));
    }

    @Test
    void parallelGroupsFirstLastAndBackToBackWithARemoteMemberAndAStepWithoutCompensationKeepTheInvariants() {
        ExplorationReport report = explore(CrashExplorerShapesTest::groupsEverywhere);

        assertEquals(7, named(report, "step "));
        // the trigger g3-b fails: g3-a (its sibling), g2-*, g1-* are undone; audit has no compensation
        assertEquals(5, named(report, "compensation of "), "scenarios: " + report.scenarios());
        assertTrue(report.crashScenarios() >= 20, "crash scenarios: " + report.crashScenarios());
        // the remote member's release lost once, then redelivered: undone once, with crashes along its path
        assertEquals(List.of("compensation command to g2-hold lost once, then redelivered (g3-b fails)"),
                report.scenarios(Kind.LOST_COMPENSATION_COMMAND).stream().map(ExplorationReport.Scenario::name).toList());
        assertTrue(report.scenarios(Kind.CRASH_AFTER_WRITE).stream().anyMatch(s -> s.name().endsWith(
                "while compensation command to g2-hold lost once, then redelivered (g3-b fails)")),
                "scenarios: " + report.scenarios());
    }

    static SagaDefinition<Doc> timedAndRetried(Ledger l) {
        return SagaDefinition.builder("timed", Doc.class)
                .step("reserve").asyncAction((d, ctx) -> l.async(() -> d.with(l.apply(ctx.idempotencyKey()))))
                .asyncCompensation((d, ctx) -> l.async(() -> {
                    l.undo(ctx.idempotencyKey(), d);
                    return null;
                }))
                .timeout(Duration.ofSeconds(5))
                .retry(RetryPolicy.builder().maxAttempts(3).initialBackoff(Duration.ofSeconds(1)).multiplier(2).jitter(0).build())
                .compensationTimeout(Duration.ofSeconds(20))
                .compensationRetry(RetryPolicy.builder().maxAttempts(5).initialBackoff(Duration.ofMinutes(1)).jitter(0).build())
                .step("note").action((d, ctx) -> d.with(l.apply(ctx.idempotencyKey())))
                .step("hold").asyncAction((d, ctx) -> l.async(() -> d.with(l.apply(ctx.idempotencyKey()))))
                .timeout(Duration.ofSeconds(5))
                .compensation((d, ctx) -> l.undo(ctx.idempotencyKey(), d))
                .compensationRetry(RetryPolicy.NONE)
                .pivot("pay").asyncAction((d, ctx) -> l.async(() -> d.with(l.apply(ctx.idempotencyKey()))))
                .timeout(Duration.ofSeconds(5))
                .retriable("ship").action((d, ctx) -> d.with(l.apply(ctx.idempotencyKey())))
                .retry(RetryPolicy.builder().maxAttempts(5).initialBackoff(Duration.ofSeconds(30)).jitter(0).build())
                .build();
    }

    @Test
    void asynchronousStepsWithTimeoutsAndRetriesAndACompensationWithItsOwnPolicyKeepTheInvariants() {
        ExplorationReport report = explore(CrashExplorerShapesTest::timedAndRetried);

        assertEquals(5, named(report, "step "));
        assertEquals(2, named(report, "compensation of "), "scenarios: " + report.scenarios());
    }

    static SagaDefinition<Doc> long20(Ledger l) {
        SagaDefinition.Builder<Doc> b = SagaDefinition.builder("long", Doc.class);
        for (int i = 1; i <= 18; i++) {
            local(b.step("s" + i), l);
        }
        b.pivot("s19").action((d, ctx) -> d.with(l.apply(ctx.idempotencyKey())));
        b.retriable("s20").action((d, ctx) -> d.with(l.apply(ctx.idempotencyKey())));
        return b.build();
    }

    @Test
    void aSagaOfTwentyStepsIsExploredAtEveryPoint() {
        ExplorationReport report = explore(CrashExplorerShapesTest::long20);

        assertEquals(20, named(report, "step "));
        assertEquals(18, named(report, "compensation of "));
        assertTrue(report.crashScenarios() >= 80, "crash scenarios: " + report.crashScenarios());
    }

    @Test
    void explorationCatchesACompensationThatIgnoresWhetherItsEffectIsThere() {
        SagaCrashExplorer<Ledger, Doc> explorer = SagaCrashExplorer.forSaga(env -> {
            Ledger l = new Ledger(env);
            l.careless = true;
            return l;
        }, CrashExplorerShapesTest::timedAndRetried, START).types(types()).invariant(CrashExplorerShapesTest::consistent);

        AssertionError error = assertThrows(AssertionError.class, explorer::explore);

        assertTrue(error.getMessage().contains("undone twice"), error.getMessage());
    }

    @Test
    void explorationCatchesACompensationThatUndoesUnderAnotherKey() {
        SagaCrashExplorer<Ledger, Doc> explorer = SagaCrashExplorer.forSaga(Ledger::new, l -> SagaDefinition.builder("wrong-key", Doc.class)
                .step("a").action((d, ctx) -> d.with(l.apply(ctx.idempotencyKey())))
                .compensation((d, ctx) -> l.undo(ctx.idempotencyKey() + "/" + ctx.attempt(), d))
                .step("b").action((d, ctx) -> d.with(l.apply(ctx.idempotencyKey())))
                .build(), START).types(types()).invariant(CrashExplorerShapesTest::consistent);

        AssertionError error = assertThrows(AssertionError.class, explorer::explore);

        assertTrue(error.getMessage().contains("a took effect and was not undone"), error.getMessage());
    }

    static SagaDefinition<Doc> remoteMembersBesideALocalTrigger(Ledger l) {
        SagaDefinition.Builder<Doc> b = SagaDefinition.builder("remote-members", Doc.class);
        local(b.step("first"), l);
        b.parallel(g -> {
            for (String name : List.of("r1", "r2")) {
                g.step(name).command("hold-commands", (d, ctx) -> new Hold(name))
                        .onReply(Held.class, (d, reply) -> d.with(reply.holdId()))
                        .timeout(Duration.ofSeconds(30))
                        .compensationCommand("release-commands", (d, ctx) -> new Release(key(name)))
                        .onCompensationReply(Released.class, (d, reply) -> {
                        });
            }
            g.step("no-undo").action((d, ctx) -> d.with(l.apply(ctx.idempotencyKey())));
            local(g.step("last"), l);
            g.merge(CrashExplorerShapesTest::union);
        });
        return b.build();
    }

    @Test
    void aLocalTriggerWhoseGroupHasRemoteMembersWithCompensationRepliesAndAMemberWithoutCompensationKeepsTheInvariants() {
        ExplorationReport report = explore(CrashExplorerShapesTest::remoteMembersBesideALocalTrigger);

        List<String> compensations = report.scenarios().stream().map(ExplorationReport.Scenario::name)
                .filter(n -> n.startsWith("compensation of ")).toList();
        assertEquals(List.of("compensation of first fails once (last fails)", "compensation of r1 fails once (last fails)",
                "compensation of r2 fails once (last fails)"), compensations);
        assertEquals(List.of("compensation command to r1 lost once, then redelivered (last fails)",
                "compensation command to r2 lost once, then redelivered (last fails)"),
                report.scenarios(Kind.LOST_COMPENSATION_COMMAND).stream().map(ExplorationReport.Scenario::name).toList());
        assertTrue(report.scenarios().stream().anyMatch(s -> s.name().startsWith("crash before write")
                && s.name().endsWith("while cancelled after r1 succeeded")), "scenarios: " + report.scenarios());
    }

    @Test
    void aSagaThatKeysItsEffectsByTheBusinessKeyFindsThemAgainAfterEveryCrash() {
        ExplorationReport report = SagaCrashExplorer.forSaga(Ledger::new, l -> SagaDefinition.builder("by-business-key", Doc.class)
                .step("reserve").action((d, ctx) -> d.with(l.apply(ctx.businessKey() + ":" + ctx.step())))
                .compensation((d, ctx) -> l.undo(ctx.businessKey() + ":" + ctx.step(), d))
                .step("charge").action((d, ctx) -> d.with(l.apply(ctx.businessKey() + ":" + ctx.step())))
                .build(), START).types(types()).invariant((l, run) -> {
                    String reserve = SagaRunReport.BUSINESS_KEY + ":reserve";
                    assertEquals(run.status() == SagaStatus.COMPLETED, l.live.contains(reserve), "live: " + l.live);
                    assertEquals(Set.of(), Set.copyOf(l.applied.keySet().stream()
                            .filter(k -> !k.startsWith(SagaRunReport.BUSINESS_KEY + ":")).toList()), "keyed otherwise");
                }).explore();

        assertTrue(report.crashScenarios() > 0);
    }
}
