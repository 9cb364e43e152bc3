package io.streamsaga.samples.strangler;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.strangler.LegacyEventSync;
import io.streamsaga.strangler.Mismatch;
import io.streamsaga.strangler.RoutingRules;
import io.streamsaga.strangler.StranglerGateway;
import io.streamsaga.strangler.Target;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The strangler fig, route by route: a legacy order service (the monolith, which emits
 * {@code order-created-legacy}) and a new order service behind one gateway. Legacy orders are synced into
 * the new service idempotently; the order listing is first shadowed (legacy answers, mismatches recorded),
 * then moved to the new service; order creation is moved for one pilot tenant, then for everybody; the
 * monolith is retired.
 *
 * <p>Run: {@code mvn -q -pl samples -am compile exec:java -Dexec.mainClass=io.streamsaga.samples.strangler.StranglerMigrationSample}.
 */
public final class StranglerMigrationSample {

    /** An HTTP-like request: route {@code GET /orders} or {@code POST /orders}. */
    public record ApiRequest(String route, String tenant, String orderId, long amount) {
    }

    public record LegacyOrderCreated(String orderId, String tenant, long amount) {
    }

    /** The monolith: stores orders and emits {@code order-created-legacy} for each. */
    static final class LegacyOrderService {
        final Map<String, Long> orders = new ConcurrentHashMap<>();
        final EventBus bus;
        int calls;

        LegacyOrderService(EventBus bus) {
            this.bus = bus;
        }

        synchronized String handle(ApiRequest request) {
            calls++;
            if (request.route().equals("POST /orders")) {
                orders.put(request.orderId(), request.amount());
                bus.publish("order-created-legacy", request.orderId(),
                        new LegacyOrderCreated(request.orderId(), request.tenant(), request.amount()));
                return "created " + request.orderId();
            }
            return "orders " + new TreeMap<>(orders);
        }
    }

    /** The new service: its own store, filled by its own creates and by the legacy sync. */
    static final class NewOrderService {
        final Map<String, Long> orders = new ConcurrentHashMap<>();
        int calls;
        boolean roundingBug = true; // found in shadow mode, fixed before the switch

        synchronized String handle(ApiRequest request) {
            calls++;
            if (request.route().equals("POST /orders")) {
                orders.put(request.orderId(), request.amount());
                return "created " + request.orderId();
            }
            Map<String, Long> view = new TreeMap<>(orders);
            if (roundingBug) {
                view.replaceAll((id, amount) -> amount / 10 * 10);
            }
            return "orders " + view;
        }

        void create(LegacyOrderCreated event) {
            orders.put(event.orderId(), event.amount()); // an upsert: safe even if a duplicate got through
        }
    }

    /** What a run produced. */
    public record Result(List<String> phases, List<Mismatch> mismatches, long syncedFromLegacy, long duplicatesSkipped,
                         int legacyCallsAfterRetirement, Map<String, Long> newServiceOrders) {
    }

    private StranglerMigrationSample() {
    }

    public static Result run() throws Exception {
        InMemoryTransport transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        VirtualScheduler clock = new VirtualScheduler();
        try (EventBus bus = EventBus.builder(transport)
                .types(TypeRegistry.builder().register("order-created-legacy", 1, LegacyOrderCreated.class).build())
                .scheduler(clock).build()) {
            LegacyOrderService legacy = new LegacyOrderService(bus);
            NewOrderService modern = new NewOrderService();
            LegacyEventSync<LegacyOrderCreated> sync = LegacyEventSync.builder(bus, "order-created-legacy",
                    LegacyOrderCreated.class, modern::create)
                    .dedupeBy((event, ctx) -> event.orderId()) // the monolith may resend with a fresh message id
                    .build().start();
            StranglerGateway<ApiRequest, String> gateway = StranglerGateway.builder(
                            (ApiRequest r) -> legacy.handle(r), modern::handle, ApiRequest::route)
                    .tenantOf(ApiRequest::tenant).clock(clock.clock()).build();
            List<String> phases = new ArrayList<>();

            // Phase 1: everything on the monolith; its events flow into the new service.
            gateway.handle(new ApiRequest("POST /orders", "acme", "o-1", 125));
            gateway.handle(new ApiRequest("POST /orders", "globex", "o-2", 300));
            bus.publish("order-created-legacy", "o-1", new LegacyOrderCreated("o-1", "acme", 125)); // a resent event
            transport.drainAll();
            phases.add("1 all legacy: new service synced " + new TreeMap<>(modern.orders));

            // Phase 2: shadow the listing; the legacy answer is served, differences are recorded.
            gateway.update(rules -> rules.withRoute("GET /orders", Target.SHADOW));
            String served = gateway.handle(new ApiRequest("GET /orders", "acme", null, 0));
            phases.add("2 shadow GET /orders: served '" + served + "', mismatches " + gateway.mismatchCount());
            modern.roundingBug = false;
            gateway.handle(new ApiRequest("GET /orders", "acme", null, 0));
            phases.add("2 after the fix: mismatches still " + gateway.mismatchCount());

            // Phase 3: the listing moves to the new service.
            gateway.update(rules -> rules.withRoute("GET /orders", Target.MODERN));
            phases.add("3 GET /orders on new: " + gateway.handle(new ApiRequest("GET /orders", "acme", null, 0)));

            // Phase 4: order creation for the pilot tenant only, then for everybody.
            gateway.update(rules -> rules.withTenant("acme", Target.MODERN));
            gateway.handle(new ApiRequest("POST /orders", "acme", "o-3", 80));
            gateway.handle(new ApiRequest("POST /orders", "globex", "o-4", 60));
            transport.drainAll();
            phases.add("4 pilot tenant acme on new; globex still legacy, synced: " + new TreeMap<>(modern.orders));

            // Phase 5: retire the monolith.
            gateway.rules(RoutingRules.allLegacy().withDefault(Target.MODERN));
            int legacyCalls = legacy.calls;
            gateway.handle(new ApiRequest("POST /orders", "globex", "o-5", 40));
            gateway.handle(new ApiRequest("GET /orders", "globex", null, 0));
            phases.add("5 monolith retired: " + gateway.handle(new ApiRequest("GET /orders", "globex", null, 0)));
            sync.close();
            return new Result(phases, gateway.mismatches(), sync.synced(), sync.duplicatesSkipped(),
                    legacy.calls - legacyCalls, new TreeMap<>(modern.orders));
        } finally {
            transport.close();
        }
    }

    public static void main(String[] args) throws Exception {
        Result result = run();
        result.phases().forEach(System.out::println);
        for (Mismatch mismatch : result.mismatches()) {
            System.out.println("mismatch on " + mismatch.route() + ": legacy '" + mismatch.legacy() + "' vs new '" + mismatch.modern() + "'");
        }
        System.out.println("legacy events synced " + result.syncedFromLegacy() + ", duplicates skipped " + result.duplicatesSkipped());
    }
}
