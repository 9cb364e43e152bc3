package io.streamsaga.bus;

/**
 * A message could not be published because the transport is closed. Not retriable on that transport (a
 * closed transport stays closed), but not the message's fault either: a caller that keeps messages, such
 * as the JDBC outbox relay, keeps them for a publisher that can still send.
 */
public class TransportClosedException extends PublishException {
    private static final long serialVersionUID = 1L;

    public TransportClosedException(String topic, String message) {
        super(topic, message, null, false);
    }
}
