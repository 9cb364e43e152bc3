package io.streamsaga.bus;

/**
 * A live subscription of a consumer group. Closing it stops delivery and releases its threads; the
 * group's committed position is kept, so a new subscription of the same group resumes there.
 */
public interface Subscription extends AutoCloseable {
    /** The consumer group. */
    String group();

    /** The topic or wildcard pattern. */
    TopicPattern pattern();

    /** Whether the subscription still delivers. */
    boolean isActive();

    @Override
    void close();
}
