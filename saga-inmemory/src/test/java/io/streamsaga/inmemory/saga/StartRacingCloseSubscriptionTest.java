package io.streamsaga.inmemory.saga;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.bus.Subscription;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaOrchestrator;
import io.streamsaga.spi.Transport;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.mockito.AdditionalAnswers.delegatesTo;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.Mockito.doAnswer;
import static org.mockito.Mockito.mock;

/**
 * The first start() of a saga with a remote step subscribes the orchestrator to its replies; a close() racing it
 * read the subscription as not yet made, and the one start() then made stayed active after both had returned, taking
 * the replies meant for the group's next orchestrator. close() now closes a subscription made meanwhile, and a
 * start() after close() has read it subscribes to nothing.
 */
class StartRacingCloseSubscriptionTest {
    record Data(String id) {
    }

    record Charge(String id) {
    }

    record Charged(String id) {
    }

    @Test
    void aSubscriptionToRepliesMadeByAStartRacingCloseIsClosedByIt() throws Exception {
        List<Subscription> subscriptions = new java.util.concurrent.CopyOnWriteArrayList<>();
        CountDownLatch subscribing = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        InMemoryTransport inMemory = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        Transport transport = mock(Transport.class, delegatesTo(inMemory));
        doAnswer(call -> {
            subscribing.countDown();
            release.await();
            Subscription made = inMemory.subscribe(call.getArgument(0), call.getArgument(1), call.getArgument(2),
                    call.getArgument(3));
            subscriptions.add(made);
            return made;
        }).when(transport).subscribe(any(), any(), any(), any());
        EventBus bus = EventBus.builder(transport).scheduler(new VirtualScheduler())
                .types(TypeRegistry.builder().register("charge", 1, Charge.class).register("charged", 1, Charged.class).build()).build();
        SagaDefinition<Data> definition = SagaDefinition.builder("remote", Data.class)
                .step("charge").command("charge-commands", (d, ctx) -> new Charge(d.id()))
                .onReply(Charged.class, (d, reply) -> d)
                .build();
        // Not registered at build: the first start() subscribes to the replies.
        SagaOrchestrator orchestrator = SagaOrchestrator.builder().store(new InMemorySagaStore()).bus(bus).build();

        Thread starter = new Thread(() -> {
            try {
                orchestrator.start(definition, "saga-1", null, new Data("a"));
            } catch (RuntimeException closed) {
                // refused: the orchestrator closed meanwhile
            }
        }, "starter");
        starter.start();
        assertTrue(subscribing.await(30, TimeUnit.SECONDS), "start() subscribes to the replies");
        Thread closer = new Thread(orchestrator::close, "closer");
        closer.start();
        // close() either returned or waits for the subscription in progress.
        await().until(() -> !closer.isAlive() || closer.getState() == Thread.State.BLOCKED);
        release.countDown();
        starter.join();
        closer.join();

        assertEquals(1, subscriptions.size(), "start() subscribed to the replies");
        assertFalse(subscriptions.get(0).isActive(), "the replies' subscription of a start() racing close() stayed"
                + " active after both returned");
        bus.close();
        inMemory.close();
    }
}
