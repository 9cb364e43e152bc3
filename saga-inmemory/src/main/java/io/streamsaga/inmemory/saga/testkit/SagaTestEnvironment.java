package io.streamsaga.inmemory.saga.testkit;

import io.streamsaga.bus.EventBus;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.inmemory.DeliveryMode;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.inmemory.VirtualScheduler;
import io.streamsaga.inmemory.saga.InMemorySagaStore;
import io.streamsaga.retry.RetryPolicy;

/**
 * The world of one test-kit run: an in-memory transport in manual delivery, a virtual clock, a bus over
 * both and an in-memory saga store. A fixture subscribes its remote participants on {@link #bus()}.
 * Not thread-safe: the kit drives it from the test thread.
 */
public final class SagaTestEnvironment {
    private final InMemoryTransport transport;
    private final VirtualScheduler scheduler;
    private final EventBus bus;
    private final InMemorySagaStore store;

    SagaTestEnvironment(TypeRegistry types) {
        this.transport = InMemoryTransport.builder().deliveryMode(DeliveryMode.MANUAL).build();
        this.scheduler = new VirtualScheduler();
        // Participants' handlers are not retried by the bus: their failures are the saga's to handle.
        this.bus = EventBus.builder(transport).types(types).scheduler(scheduler).retryPolicy(RetryPolicy.NONE).build();
        this.store = new InMemorySagaStore();
    }

    public InMemoryTransport transport() {
        return transport;
    }

    public VirtualScheduler scheduler() {
        return scheduler;
    }

    public EventBus bus() {
        return bus;
    }

    public InMemorySagaStore store() {
        return store;
    }

    void close() {
        bus.close();
        transport.close();
        scheduler.close();
    }
}
