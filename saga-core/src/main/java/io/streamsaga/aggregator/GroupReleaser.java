package io.streamsaga.aggregator;

/**
 * Turns a released group into its outcome, typically by publishing one event ({@code order-completed}).
 * Throwing makes the release fail: the group is reopened and the part that completed it is retried by the
 * bus, so the release runs again — make it idempotent (for example, publish under the group key as id). So does a
 * publish it made on its thread that failed, whether or not it waited for the stage: the aggregator records the group
 * released only once those publishes went through, also when it runs the releaser on a timer. A publish from another
 * thread it started is its own to wait for.
 */
@FunctionalInterface
public interface GroupReleaser {
    void release(Aggregate aggregate) throws Exception;
}
