package io.streamsaga.kafka.internal;

import org.apache.kafka.clients.producer.MockProducer;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.errors.RetriableException;
import org.apache.kafka.common.errors.TopicAuthorizationException;
import org.apache.kafka.common.errors.TransactionAbortedException;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;

import java.util.Set;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;

/**
 * What a record sent into an exactly-once batch's transaction reports as its failure: its own refusal only (the first
 * report of an exception), not what it got only because another record's failure, or the transaction's abort, ended
 * the transaction (retriable then, caused by that), since the bus takes a non-retriable failure of a publish left to
 * the transaction for its handling's refusal and dead-letters the handled record.
 */
class TransactionReportingTest {
    private final ConsumerLoop.Transaction transaction = new ConsumerLoop.Transaction(
            new MockProducer<>(true, null, new StringSerializer(), new ByteArraySerializer()));

    private Exception reported(Exception error) {
        AtomicReference<Exception> outcome = new AtomicReference<>();
        transaction.reporting((metadata, e) -> outcome.set(e)).onCompletion(null, error);
        return outcome.get();
    }

    @Test
    void theFirstReportOfAFailureIsTheRecordsOwnAndLaterReportsOfItAreTheTransactionsRetriably() {
        RecordTooLargeException tooLarge = new RecordTooLargeException("too large");
        TopicAuthorizationException notAuthorised = new TopicAuthorizationException(Set.of("audit"));

        assertSame(tooLarge, reported(tooLarge));
        assertSame(notAuthorised, reported(notAuthorised), "another failure of its own");
        Exception bystander = reported(tooLarge); // a record the producer aborted with the transaction's error
        assertInstanceOf(RetriableException.class, bystander);
        assertSame(tooLarge, bystander.getCause());
    }

    @Test
    void aRecordTheTransactionsAbortFoundUnsentReportsARetriableFailure() {
        TransactionAbortedException aborted = new TransactionAbortedException();

        Exception reported = reported(aborted);

        assertInstanceOf(RetriableException.class, reported);
        assertSame(aborted, reported.getCause());
    }

    @Test
    void aRecordTheProducersFenceEndedReportsARetriableFailureNotARefusalOfItsOwn() {
        // the first record the fence is reported to (its produce response, or the abort of every batch of a producer in
        // a fatal state) is not refused for anything of its own: the member stops, its handling is no failure
        ProducerFencedException fenced = new ProducerFencedException("fenced");

        Exception reported = reported(fenced);

        assertInstanceOf(RetriableException.class, reported);
        assertSame(fenced, reported.getCause());
    }

    @Test
    void aSendRefusedForTheTransactionsErrorStateIsRetriableAndAnyOtherThrownAsItIs() {
        RecordTooLargeException earlier = new RecordTooLargeException("too large");
        KafkaException errorState = new KafkaException("Cannot execute transactional method because we are in an error"
                + " state", earlier);
        ProducerFencedException fenced = new ProducerFencedException("fenced");

        RuntimeException thrown = transaction.thrownBySend(errorState);

        assertInstanceOf(RetriableException.class, thrown);
        assertSame(earlier, thrown.getCause());
        assertSame(fenced, transaction.thrownBySend(fenced));
    }
}
