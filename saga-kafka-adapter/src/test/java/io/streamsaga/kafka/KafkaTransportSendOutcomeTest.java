package io.streamsaga.kafka;

import io.streamsaga.bus.MessageTooLargeException;
import io.streamsaga.bus.PublishException;
import io.streamsaga.message.Message;
import org.apache.kafka.clients.producer.Callback;
import org.apache.kafka.clients.producer.MockProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.List;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What a send reports when Kafka's producer took its record and then refused it, against a fake producer, since a
 * broker cannot be made to order the producer's two threads on cue; no broker is needed.
 */
class KafkaTransportSendOutcomeTest {

    /**
     * As Kafka's producer (4.4) in a transaction that an earlier send left in an abortable error (a record over
     * {@code max.request.size}): {@code send} appends the record to its batch, then refuses it (the transaction
     * manager's check comes after the append) with a {@code KafkaException} caused by that earlier error; its I/O
     * thread meanwhile aborts the appended record, calling its callback with the transaction's last error, the
     * earlier send's {@code RecordTooLargeException}, before or after {@code send} threw.
     */
    private static final class PoisonedTransactionProducer extends MockProducer<String, byte[]> {
        private final RecordTooLargeException earlier;
        private final boolean abortedBeforeTheRefusal;
        private final List<Callback> appended = new CopyOnWriteArrayList<>();

        PoisonedTransactionProducer(RecordTooLargeException earlier, boolean abortedBeforeTheRefusal) {
            super(true, null, new StringSerializer(), new ByteArraySerializer());
            this.earlier = earlier;
            this.abortedBeforeTheRefusal = abortedBeforeTheRefusal;
        }

        @Override
        public synchronized Future<RecordMetadata> send(ProducerRecord<String, byte[]> record, Callback callback) {
            appended.add(callback);
            if (abortedBeforeTheRefusal) {
                abortAppended();
            }
            throw new KafkaException("Cannot execute transactional method because we are in an error state", earlier);
        }

        void abortAppended() {
            for (Callback callback : appended) {
                appended.remove(callback);
                callback.onCompletion(null, earlier);
            }
        }
    }

    @ParameterizedTest(name = "aborted by the producer's thread before the refusal: {0}")
    @ValueSource(booleans = {true, false})
    void aSendThatThePoisonedTransactionRefusedFailsOnceWithThatRefusalNotAsTooLargeForTheEarlierSendsError(
            boolean abortedBeforeTheRefusal) {
        // ExactlyOnceTest.aRecordWhoseHandlerPublishPoisonsTheTransaction... failed once: the handler's 2 MiB
        // publish left the transaction in an error state, and the record's small dead letter, sent into it, failed
        // as a MessageTooLargeException quoting the 2 MiB record (the producer's thread aborted the appended dead
        // letter with that error before send threw its own refusal, and the stage took whichever came first), so
        // the bus sent the dead letter without its payload. The refusal that send threw is the outcome, reported
        // once: the callback form reported both.
        RecordTooLargeException earlier = new RecordTooLargeException("The message is 2097453 bytes when serialized"
                + " which is larger than 1048576, which is the value of the max.request.size configuration.");
        PoisonedTransactionProducer producer = new PoisonedTransactionProducer(earlier, abortedBeforeTheRefusal);
        KafkaTransport transport = KafkaTransport.builder().bootstrapServers("localhost:9")
                .producerFactory(properties -> producer).build();
        try {
            Message deadLetter = Message.builder("orders.DLT").key("k").type("order-created").payload(new byte[10]).build();

            CompletionException stage = assertThrows(CompletionException.class,
                    () -> transport.send(deadLetter).toCompletableFuture().join());
            producer.abortAppended();
            assertRefusal(stage.getCause(), earlier);

            List<Object> positions = new CopyOnWriteArrayList<>();
            List<Throwable> errors = new CopyOnWriteArrayList<>();
            transport.send(deadLetter, (position, error) -> {
                positions.add(String.valueOf(position));
                errors.add(error);
            });
            producer.abortAppended();
            assertEquals(1, errors.size(), "reported once: " + errors);
            assertEquals(List.of("null"), positions);
            assertRefusal(errors.get(0), earlier);
        } finally {
            transport.close();
        }
    }

    private static void assertRefusal(Throwable error, RecordTooLargeException earlier) {
        assertEquals(PublishException.class, error.getClass(), "not a " + MessageTooLargeException.class.getSimpleName()
                + ": " + error);
        assertTrue(error.getCause() instanceof KafkaException && !(error.getCause() instanceof RecordTooLargeException),
                String.valueOf(error.getCause()));
        assertSame(earlier, error.getCause().getCause());
    }
}
