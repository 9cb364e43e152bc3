package io.streamsaga.inmemory.saga;

import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.saga.testkit.ExplorationReport;
import io.streamsaga.inmemory.saga.testkit.SagaCrashExplorer;
import io.streamsaga.inmemory.saga.testkit.SagaTestEnvironment;
import io.streamsaga.retry.RetryPolicy;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaStatus;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A participant's handler retried by the bus, after a jittered backoff that races the remote step's timeout on the
 * kit's virtual clock: the kit seeds the bus's retry jitter from its seed, as it does the orchestrator's, so two
 * explorations of one seed run the same way.
 */
class BusRetryJitterExplorationTest {
    record Parcel(String id) {
    }

    record Ship(String parcel) {
    }

    record Shipped(String parcel) {
    }

    static TypeRegistry types() {
        return TypeRegistry.builder().register("ship", 1, Ship.class).register("shipped", 1, Shipped.class).build();
    }

    /**
     * A carrier whose first delivery of a command fails; the bus retries it after 10 s spread by up to 100 % either
     * way, so whether the step's 10 s timeout fires first is the bus's jitter's draw. It records when it shipped.
     */
    static final class Carrier {
        final SagaTestEnvironment env;
        final List<Instant> shippedAt = new ArrayList<>();
        private boolean failedOnce;

        Carrier(SagaTestEnvironment env) {
            this.env = env;
            RetryPolicy busRetry = RetryPolicy.builder().maxAttempts(2).initialBackoff(Duration.ofSeconds(10))
                    .multiplier(1).jitter(1.0).build();
            env.bus().subscribe("carrier", "ship-commands", Ship.class,
                    SubscriptionOptions.defaults().withRetryPolicy(busRetry), (command, ctx) -> {
                        synchronized (this) {
                            if (!failedOnce) {
                                failedOnce = true;
                                throw new IllegalStateException("the carrier's desk is busy");
                            }
                            shippedAt.add(env.scheduler().now());
                        }
                        SagaMessages.reply(env.bus(), ctx.message(), new Shipped(command.parcel()));
                    });
        }
    }

    static SagaDefinition<Parcel> shipping(Carrier carrier) {
        return SagaDefinition.builder("shipping", Parcel.class)
                .step("ship")
                .command("ship-commands", (p, ctx) -> new Ship(p.id()))
                .onReply(Shipped.class, (p, reply) -> p)
                .timeout(Duration.ofSeconds(10))
                .retry(RetryPolicy.builder().maxAttempts(3).initialBackoff(Duration.ofSeconds(1)).jitter(0).build())
                .step("label").action((p, ctx) -> p)
                .build();
    }

    /** The exploration of {@code seed}, and when each scenario's carrier shipped, scenario by scenario. */
    private static Explored explore(long seed) {
        List<List<Instant>> shipped = new ArrayList<>();
        ExplorationReport report = SagaCrashExplorer.forSaga(Carrier::new, BusRetryJitterExplorationTest::shipping,
                        new Parcel("p-1"))
                .types(types())
                .seed(seed)
                .invariant((carrier, run) -> {
                    shipped.add(List.copyOf(carrier.shippedAt));
                    if (run.status() == SagaStatus.COMPLETED) {
                        assertTrue(!carrier.shippedAt.isEmpty(), "completed without shipping");
                    }
                })
                .explore();
        return new Explored(report, shipped);
    }

    private record Explored(ExplorationReport report, List<List<Instant>> shipped) {
    }

    @Test
    void twoExplorationsOfOneSeedGiveTheSameReportWhereTheBusRetriesAParticipantsHandler() {
        Explored first = explore(7);
        Explored second = explore(7);

        assertEquals(first.report(), second.report());
        assertEquals(first.shipped(), second.shipped()); // the bus's jittered delays, to the nanosecond
        // each crash run repeats the run its crash point was taken from: none crashed elsewhere
        assertTrue(first.report().scenarios().stream().noneMatch(s -> s.name().contains("not deterministic")),
                first.report().scenarios().toString());
        // the bus's jitter matters here: another seed retries the carrier after other delays
        assertNotEquals(first.shipped(), explore(8).shipped());
    }
}
