package io.streamsaga.inmemory.saga;

import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.SubscriptionOptions;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaMessages;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.saga.SagaResult;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.time.Scheduler;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Real threads: async members completing elsewhere, replies on the bus's consumer threads, many sagas at once. */
class SagaConcurrencyTest {
    record Data(String id, String left, String right, String remote) {
    }

    record Ask(String id) {
    }

    record Answer(String value) {
    }

    private final ExecutorService pool = Executors.newFixedThreadPool(4);
    private final Scheduler scheduler = Scheduler.system();

    @AfterEach
    void tearDown() {
        pool.shutdownNow();
        scheduler.close();
    }

    @Test
    void manySagasWithAsyncParallelMembersAndRemoteRepliesFinishFromOtherThreads() throws Exception {
        InMemoryTransport transport = InMemoryTransport.builder().partitions(4).build(); // ASYNC delivery
        try (EventBus bus = EventBus.builder(transport).scheduler(scheduler)
                .types(TypeRegistry.builder().register("ask", 1, Ask.class).register("answer", 1, Answer.class).build())
                .build()) {
            bus.subscribe("answering-service", "asks", Ask.class, SubscriptionOptions.defaults().withStart(StartPosition.EARLIEST),
                    (ask, ctx) -> SagaMessages.reply(bus, ctx.message(), new Answer("answer-" + ask.id())));
            ConcurrentHashMap<String, Integer> compensations = new ConcurrentHashMap<>();
            SagaDefinition<Data> saga = SagaDefinition.builder("concurrent-saga", Data.class)
                    .parallel(group -> {
                        group.step("left").asyncAction((d, ctx) -> CompletableFuture.supplyAsync(
                                        () -> new Data(d.id(), "L" + d.id(), null, null), pool))
                                .compensation((d, ctx) -> compensations.merge(ctx.idempotencyKey(), 1, Integer::sum));
                        group.step("right").asyncAction((d, ctx) -> CompletableFuture.supplyAsync(
                                        () -> new Data(d.id(), null, "R" + d.id(), null), pool))
                                .compensation((d, ctx) -> compensations.merge(ctx.idempotencyKey(), 1, Integer::sum));
                        group.merge((current, result) -> new Data(current.id(),
                                result.left() != null ? result.left() : current.left(),
                                result.right() != null ? result.right() : current.right(), current.remote()));
                    })
                    .step("remote").command("asks", (d, ctx) -> new Ask(d.id()))
                    .onReply(Answer.class, (d, answer) -> {
                        if (d.id().endsWith("7")) {
                            throw new IllegalStateException("refused " + d.id());
                        }
                        return new Data(d.id(), d.left(), d.right(), answer.value());
                    })
                    .timeout(Duration.ofSeconds(30))
                    .build();
            SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(new InMemorySagaStore()).bus(bus)
                    .scheduler(scheduler).register(saga).build();

            List<Future<CompletableFuture<SagaResult<Data>>>> starts = new ArrayList<>();
            for (int i = 0; i < 100; i++) {
                String id = Integer.toString(i);
                starts.add(pool.submit(() -> orchestrator.start(saga, new Data(id, null, null, null)).toCompletableFuture()));
            }
            int completed = 0;
            int compensated = 0;
            for (Future<CompletableFuture<SagaResult<Data>>> start : starts) {
                SagaResult<Data> result = start.get(30, TimeUnit.SECONDS).get(30, TimeUnit.SECONDS);
                Data data = result.data();
                if (result.isCompleted()) {
                    completed++;
                    assertEquals("L" + data.id(), data.left());
                    assertEquals("R" + data.id(), data.right());
                    assertEquals("answer-" + data.id(), data.remote());
                } else {
                    compensated++;
                    assertTrue(data.id().endsWith("7"), data.id());
                }
            }
            assertEquals(90, completed);
            assertEquals(10, compensated);
            assertEquals(20, compensations.size()); // left and right of each refused saga (remote has no compensation)
            assertTrue(compensations.values().stream().allMatch(n -> n == 1));
            assertTrue(orchestrator.findByStatus(SagaStatus.RUNNING, SagaStatus.COMPENSATING).isEmpty());
            orchestrator.close();
        }
    }
}
