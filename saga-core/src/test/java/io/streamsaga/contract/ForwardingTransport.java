package io.streamsaga.contract;

import io.streamsaga.bus.RecordPosition;
import io.streamsaga.bus.StartPosition;
import io.streamsaga.bus.Subscription;
import io.streamsaga.bus.TopicPattern;
import io.streamsaga.message.Message;
import io.streamsaga.spi.PendingDelivery;
import io.streamsaga.spi.RecordHandler;
import io.streamsaga.spi.Transport;

import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletionStage;

/**
 * A transport that forwards every call to another, for a test to step in at some of them by overriding them. The
 * callback form of {@code send} is not forwarded: it is the interface's default, which calls {@link #send(Message)},
 * so an override of that one covers both. Thread-safe as its delegate is.
 */
public class ForwardingTransport implements Transport {
    private final Transport delegate;

    public ForwardingTransport(Transport delegate) {
        this.delegate = delegate;
    }

    @Override
    public String name() {
        return delegate.name();
    }

    @Override
    public boolean carriesObjects() {
        return delegate.carriesObjects();
    }

    @Override
    public boolean redeliversPerPartition() {
        return delegate.redeliversPerPartition();
    }

    @Override
    public void afterDelivery(Runnable kept, Runnable withdrawn) {
        delegate.afterDelivery(kept, withdrawn);
    }

    @Override
    public boolean finishLater(PendingDelivery rest) {
        return delegate.finishLater(rest);
    }

    @Override
    public boolean mayFinishLater() {
        return delegate.mayFinishLater();
    }

    @Override
    public CompletionStage<RecordPosition> send(Message message) {
        return delegate.send(message);
    }

    @Override
    public Subscription subscribe(String group, TopicPattern pattern, StartPosition start, RecordHandler handler) {
        return delegate.subscribe(group, pattern, start, handler);
    }

    @Override
    public Map<Integer, Long> endOffsets(String topic) {
        return delegate.endOffsets(topic);
    }

    @Override
    public Map<Integer, Long> committedOffsets(String group, String topic) {
        return delegate.committedOffsets(group, topic);
    }

    @Override
    public Set<String> consumerGroups(String topic) {
        return delegate.consumerGroups(topic);
    }

    @Override
    public Optional<Duration> retentionHorizon() {
        return delegate.retentionHorizon();
    }

    @Override
    public void close() {
        delegate.close();
    }
}
