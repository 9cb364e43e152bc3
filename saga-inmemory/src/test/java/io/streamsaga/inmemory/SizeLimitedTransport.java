package io.streamsaga.inmemory;

import io.streamsaga.bus.MessageTooLargeException;
import io.streamsaga.message.Message;

import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.function.IntSupplier;

import static org.mockito.AdditionalAnswers.delegatesTo;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.Mockito.doAnswer;
import static org.mockito.Mockito.mock;

/**
 * An in-memory transport that refuses a message over a size limit with {@link MessageTooLargeException}, as Kafka
 * refuses a record over {@code max.request.size}. The size is counted in characters: the key, the type, each header's
 * name and value, and the payload (a byte array's length, any other payload's {@code toString()}); the limit is read
 * at each send, so a test can raise it. Only {@code send(Message)}, the form the bus publishes and dead-letters
 * through, is limited; the callback form {@code send(Message, onOutcome)} goes to {@code real} unlimited.
 */
public final class SizeLimitedTransport {
    private SizeLimitedTransport() {
    }

    /** How the refusal comes: the forms a transport may give it in. */
    public enum Refusal {
        /** The stage fails with it, as Kafka's producer reports a record over {@code max.request.size}. */
        FAILED_STAGE,
        /** The stage fails with it wrapped in a {@link CompletionException}, as a stage derived from another's does. */
        WRAPPED_IN_THE_STAGE,
        /** {@code send} throws it. */
        THROWN
    }

    /** {@code real} refusing what is over {@code limit}, each refused message added to {@code refused}. */
    public static InMemoryTransport over(InMemoryTransport real, IntSupplier limit, List<Message> refused) {
        return over(real, limit, refused, Refusal.FAILED_STAGE);
    }

    /** {@code real} refusing what is over {@code limit} in the {@code form} given, each refused one added to {@code refused}. */
    public static InMemoryTransport over(InMemoryTransport real, IntSupplier limit, List<Message> refused, Refusal form) {
        InMemoryTransport transport = mock(InMemoryTransport.class, delegatesTo(real));
        doAnswer(call -> {
            Message message = call.getArgument(0);
            if (size(message) > limit.getAsInt()) {
                refused.add(message);
                MessageTooLargeException refusal = new MessageTooLargeException(message.topic(),
                        "the message has " + size(message) + " characters, over the " + limit.getAsInt() + " taken", null);
                return switch (form) {
                    case FAILED_STAGE -> CompletableFuture.failedFuture(refusal);
                    case WRAPPED_IN_THE_STAGE -> CompletableFuture.failedFuture(new CompletionException(refusal));
                    case THROWN -> throw refusal;
                };
            }
            return real.send(message);
        }).when(transport).send(any(Message.class));
        return transport;
    }

    /** The size counted against the limit, in characters. */
    public static int size(Message message) {
        int size = message.type().length() + (message.key() == null ? 0 : message.key().length());
        for (Map.Entry<String, String> header : message.headers().entrySet()) {
            size += header.getKey().length() + header.getValue().length();
        }
        Object payload = message.payload();
        return size + (payload == null ? 0 : payload instanceof byte[] bytes ? bytes.length : payload.toString().length());
    }
}
