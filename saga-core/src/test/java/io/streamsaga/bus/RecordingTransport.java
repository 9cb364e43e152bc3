package io.streamsaga.bus;

import io.streamsaga.message.Message;
import io.streamsaga.spi.RecordHandler;
import io.streamsaga.spi.Transport;
import io.streamsaga.spi.TransportRecord;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A transport for bus unit tests in saga-core (which cannot see saga-inmemory): it records what is sent
 * and subscribed, and {@link #deliver} hands a message to the matching subscriptions on the calling thread.
 */
final class RecordingTransport implements Transport {
    record Registration(String group, TopicPattern pattern, StartPosition start, RecordHandler handler) {
    }

    final List<Message> sent = new CopyOnWriteArrayList<>();
    final List<Registration> registrations = new CopyOnWriteArrayList<>();
    private long offset;

    @Override
    public String name() {
        return "recording";
    }

    @Override
    public boolean carriesObjects() {
        return true;
    }

    @Override
    public CompletionStage<RecordPosition> send(Message message) {
        sent.add(message);
        return CompletableFuture.completedFuture(new RecordPosition(message.topic(), 0, sent.size() - 1L));
    }

    @Override
    public Subscription subscribe(String group, TopicPattern pattern, StartPosition start, RecordHandler handler) {
        Registration registration = new Registration(group, pattern, start, handler);
        registrations.add(registration);
        return new Subscription() {
            private volatile boolean active = true;

            @Override
            public String group() {
                return group;
            }

            @Override
            public TopicPattern pattern() {
                return pattern;
            }

            @Override
            public boolean isActive() {
                return active;
            }

            @Override
            public void close() {
                active = false;
                registrations.remove(registration);
            }
        };
    }

    /** Hands {@code message} to every registration whose pattern matches; returns how many took it. */
    int deliver(Message message) throws Exception {
        int delivered = 0;
        long at = offset++;
        for (Registration registration : registrations) {
            if (registration.pattern().matches(message.topic())) {
                registration.handler().handle(new TransportRecord(message, registration.group(), 0, at));
                delivered++;
            }
        }
        return delivered;
    }

    @Override
    public Map<Integer, Long> endOffsets(String topic) {
        return Map.of();
    }

    @Override
    public Map<Integer, Long> committedOffsets(String group, String topic) {
        return Map.of();
    }

    @Override
    public Set<String> consumerGroups(String topic) {
        return Set.of();
    }

    @Override
    public Optional<Duration> retentionHorizon() {
        return Optional.empty();
    }

    @Override
    public void close() {
        registrations.clear();
    }
}
