package io.streamsaga.bus;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

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

    /**
     * Makes one subscription per item, in order, all or none: when {@code subscribe} throws for one, the
     * subscriptions already made are closed (a failure to close one is added to the exception as suppressed) and
     * the exception is rethrown, so a caller that gets no list back leaves nothing running.
     */
    static <T> List<Subscription> allOrNone(Iterable<T> items, Function<? super T, Subscription> subscribe) {
        List<Subscription> made = new ArrayList<>();
        try {
            for (T item : items) {
                made.add(subscribe.apply(item));
            }
        } catch (RuntimeException | Error e) {
            for (Subscription subscription : made) {
                try {
                    subscription.close();
                } catch (RuntimeException closeFailure) {
                    e.addSuppressed(closeFailure);
                }
            }
            throw e;
        }
        return List.copyOf(made);
    }
}
