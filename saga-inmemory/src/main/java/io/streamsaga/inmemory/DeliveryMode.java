package io.streamsaga.inmemory;

/** How the in-memory transport delivers records to subscriptions. */
public enum DeliveryMode {
    /** Each subscription has its own consumer thread that delivers as soon as records arrive. */
    ASYNC,
    /**
     * Nothing is delivered until the test calls {@link InMemoryTransport#drainAll()}, which delivers on the
     * calling thread: deterministic tests with no sleeps and no threads.
     */
    MANUAL
}
