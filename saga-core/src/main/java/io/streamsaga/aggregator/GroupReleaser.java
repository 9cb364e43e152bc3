package io.streamsaga.aggregator;

/**
 * Turns a released group into its outcome, typically by publishing one event ({@code order-completed}).
 * Throwing makes the release fail: the group is reopened and the part that completed it is retried by the
 * bus, so the release runs again — make it idempotent (for example, publish under the group key as id).
 */
@FunctionalInterface
public interface GroupReleaser {
    void release(Aggregate aggregate) throws Exception;
}
