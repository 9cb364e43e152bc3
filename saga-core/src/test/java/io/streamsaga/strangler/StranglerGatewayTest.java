package io.streamsaga.strangler;

import io.streamsaga.ConfigurationException;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class StranglerGatewayTest {
    record Request(String route, String tenant, String user, int value) {
    }

    private final AtomicInteger legacyCalls = new AtomicInteger();
    private final AtomicInteger modernCalls = new AtomicInteger();
    private final Backend<Request, String> legacy = r -> {
        legacyCalls.incrementAndGet();
        return "legacy:" + r.value();
    };
    private final Backend<Request, String> modern = r -> {
        modernCalls.incrementAndGet();
        if (r.value() < 0) {
            throw new IllegalArgumentException("negative " + r.value());
        }
        return r.value() == 13 ? "wrong" : "legacy:" + r.value(); // same answers, except 13
    };

    private StranglerGateway<Request, String> gateway() {
        return StranglerGateway.builder(legacy, modern, Request::route).tenantOf(Request::tenant).build();
    }

    @Test
    void everythingGoesToLegacyUntilARouteIsMovedAtRunTime() throws Exception {
        StranglerGateway<Request, String> gateway = gateway();
        gateway.handle(new Request("orders", "t1", "u", 1));
        assertEquals(1, legacyCalls.get());
        assertEquals(0, modernCalls.get());

        gateway.update(rules -> rules.withRoute("orders", Target.MODERN));
        gateway.handle(new Request("orders", "t1", "u", 2));
        gateway.handle(new Request("invoices", "t1", "u", 3));
        assertEquals(1, modernCalls.get());
        assertEquals(2, legacyCalls.get());
        assertEquals("route", gateway.route(new Request("orders", "t1", "u", 0)).reason());
        assertEquals("default", gateway.route(new Request("invoices", "t1", "u", 0)).reason());
    }

    @Test
    void tenantRuleOverridesTheRouteRule() {
        StranglerGateway<Request, String> gateway = gateway();
        gateway.rules(RoutingRules.allLegacy().withRoute("orders", Target.MODERN).withTenant("beta", Target.LEGACY));
        assertEquals(Target.LEGACY, gateway.route(new Request("orders", "beta", "u", 0)).target());
        assertEquals("tenant", gateway.route(new Request("orders", "beta", "u", 0)).reason());
        assertEquals(Target.MODERN, gateway.route(new Request("orders", "other", "u", 0)).target());
    }

    @Test
    void percentageSendsThatShareToModernAndKeepsEachUserOnOneSide() {
        StranglerGateway<Request, String> gateway = StranglerGateway.builder(legacy, modern, Request::route)
                .stickyKeyOf(Request::user).rules(RoutingRules.allLegacy().withPercentage("orders", 30)).build();
        int toModern = 0;
        for (int u = 0; u < 2000; u++) {
            Request request = new Request("orders", null, "user-" + u, u);
            Target first = gateway.route(request).target();
            assertEquals(first, gateway.route(request).target(), "a user moved sides");
            if (first == Target.MODERN) {
                toModern++;
            }
        }
        assertTrue(toModern > 450 && toModern < 750, "about 30% expected, got " + toModern + " of 2000");
        gateway.update(r -> r.withPercentage("orders", 0));
        assertEquals(Target.LEGACY, gateway.route(new Request("orders", null, "user-1", 0)).target());
        gateway.update(r -> r.withPercentage("orders", 100));
        assertEquals(Target.MODERN, gateway.route(new Request("orders", null, "user-1", 0)).target());
    }

    @Test
    void shadowModeReturnsLegacyAndRecordsEveryMismatchIncludingModernErrors() throws Exception {
        StranglerGateway<Request, String> gateway = gateway();
        gateway.rules(RoutingRules.allLegacy().withRoute("orders", Target.SHADOW));
        List<Mismatch> reported = new CopyOnWriteArrayList<>();
        gateway.onMismatch(reported::add);

        assertEquals("legacy:1", gateway.handle(new Request("orders", "t", "u", 1)));
        assertEquals("legacy:13", gateway.handle(new Request("orders", "t", "u", 13)));
        assertEquals("legacy:-1", gateway.handle(new Request("orders", "t", "u", -1)));
        assertEquals("legacy:13", gateway.handle(new Request("orders", "t", "u", 13)));

        assertEquals(3, gateway.mismatchCount());
        assertEquals(3, reported.size());
        assertEquals(reported, gateway.mismatches());
        Mismatch wrong = reported.get(0);
        assertEquals("legacy:13", wrong.legacy());
        assertEquals("wrong", wrong.modern());
        Mismatch failed = reported.get(1);
        assertNull(failed.modern());
        assertTrue(failed.modernError().contains("negative -1"));
        assertEquals(4, legacyCalls.get());
        assertEquals(4, modernCalls.get());
    }

    @Test
    void aNewImplementationFailingWithAnErrorInShadowModeNeverReachesTheCaller() throws Exception {
        // A new service half deployed fails with errors, not exceptions: a class missing from its classpath,
        // a static initialiser that throws, a recursion without end. The caller must still get the legacy answer.
        List<Error> errors = List.of(new NoClassDefFoundError("com/example/NewPricing"),
                new ExceptionInInitializerError("pricing table"), new StackOverflowError());
        AtomicInteger next = new AtomicInteger();
        Backend<Request, String> broken = r -> {
            throw errors.get(next.getAndIncrement());
        };
        StranglerGateway<Request, String> gateway = StranglerGateway.builder(legacy, broken, Request::route)
                .rules(RoutingRules.allLegacy().withRoute("orders", Target.SHADOW)).build();

        for (int i = 0; i < errors.size(); i++) {
            assertEquals("legacy:" + i, gateway.handle(new Request("orders", "t1", "u", i)));
        }

        assertEquals(errors.size(), gateway.mismatchCount());
        assertTrue(gateway.mismatches().get(0).modernError().contains("NoClassDefFoundError"), gateway.mismatches().get(0).modernError());
    }

    @Test
    void aMismatchListenerFailingWithAnErrorNeitherReachesTheCallerNorStopsTheOtherListeners() throws Exception {
        StranglerGateway<Request, String> gateway = gateway();
        gateway.rules(RoutingRules.allLegacy().withRoute("orders", Target.SHADOW));
        List<Error> errors = List.of(new AssertionError("listener's check"), new StackOverflowError(),
                new NoClassDefFoundError("com/example/Alerting"));
        AtomicInteger next = new AtomicInteger();
        gateway.onMismatch(mismatch -> {
            throw errors.get(next.getAndIncrement());
        });
        List<Mismatch> reported = new CopyOnWriteArrayList<>();
        gateway.onMismatch(reported::add);

        for (int i = 0; i < errors.size(); i++) {
            assertEquals("legacy:13", gateway.handle(new Request("orders", "t", "u", 13)),
                    "the caller gets the legacy answer whatever a listener throws");
        }

        assertEquals(errors.size(), next.get());
        assertEquals(errors.size(), reported.size(), "a failing listener does not keep the mismatch from the others");
    }

    @Test
    void aMismatchListenerThrowingACheckedExceptionNeitherReachesTheCallerNorStopsTheOtherListeners() throws Exception {
        StranglerGateway<Request, String> gateway = gateway();
        gateway.rules(RoutingRules.allLegacy().withRoute("orders", Target.SHADOW));
        // a listener written in Kotlin (no checked exceptions) or with a sneaky throw
        gateway.onMismatch(mismatch -> sneakyThrow(new java.io.IOException("alerting endpoint unreachable")));
        List<Mismatch> reported = new CopyOnWriteArrayList<>();
        gateway.onMismatch(reported::add);

        assertEquals("legacy:13", gateway.handle(new Request("orders", "t", "u", 13)),
                "the caller gets the legacy answer whatever a listener throws");
        assertEquals(1, reported.size(), "a failing listener does not keep the mismatch from the others");
    }

    @SuppressWarnings("unchecked")
    private static <T extends Throwable> void sneakyThrow(Throwable t) throws T {
        throw (T) t;
    }

    @Test
    void anUpdateThatReturnsNoRulesIsRefusedAndTheGatewayKeepsRoutingByTheRulesInForce() throws Exception {
        StranglerGateway<Request, String> gateway = gateway();
        gateway.rules(RoutingRules.allLegacy().withRoute("orders", Target.MODERN));

        // a change function with a bug (a missing return in a branch, a lookup that found nothing)
        assertThrows(NullPointerException.class, () -> gateway.update(rules -> null));

        assertEquals(RoutingRules.allLegacy().withRoute("orders", Target.MODERN), gateway.rules());
        assertEquals("legacy:1", gateway.handle(new Request("orders", "t1", "u", 1)), "served by the new implementation");
        assertEquals(1, modernCalls.get());
    }

    @Test
    void invalidPercentageIsRejectedQuotingTheValue() {
        ConfigurationException error = assertThrows(ConfigurationException.class,
                () -> RoutingRules.allLegacy().withPercentage("orders", 120));
        assertTrue(error.getMessage().contains("120"));
    }

    @Test
    void shadowCallCanRunOffTheCallersThread() throws Exception {
        List<Runnable> queued = new CopyOnWriteArrayList<>();
        StranglerGateway<Request, String> gateway = StranglerGateway.builder(legacy, modern, Request::route)
                .shadowExecutor(queued::add).rules(RoutingRules.allLegacy().withDefault(Target.SHADOW)).build();

        assertEquals("legacy:13", gateway.handle(new Request("orders", "t", "u", 13)));
        assertEquals(0, modernCalls.get());
        assertEquals(0, gateway.mismatchCount());

        queued.forEach(Runnable::run);
        assertEquals(1, modernCalls.get());
        assertEquals(1, gateway.mismatchCount());
    }
}
