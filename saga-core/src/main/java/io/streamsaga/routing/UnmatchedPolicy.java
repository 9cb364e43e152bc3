package io.streamsaga.routing;

/** What the router does with a message no route accepts. Either way it is logged and counted. */
public enum UnmatchedPolicy {
    /** Send it to {@code <topic>.DLT} at once, without retries (the default). */
    DEAD_LETTER,
    /** Acknowledge and drop it, with a warning and the {@code streamsaga_router_unmatched_total} metric. */
    DROP
}
