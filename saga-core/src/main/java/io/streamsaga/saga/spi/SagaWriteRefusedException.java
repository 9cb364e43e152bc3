package io.streamsaga.saga.spi;

import io.streamsaga.StreamSagaException;

/**
 * A {@link SagaStore} refuses a write of a saga for what the write holds, and would refuse the same write again, however
 * often it is repeated, until an operator changes what the store holds: a transactional outbox that holds a row with
 * the id of one of the write's messages already, say. Not retriable. The engine takes it as it takes a store's
 * {@link io.streamsaga.ConfigurationException} for a value it cannot keep (see {@link SagaStore}): at a saga's start
 * the caller gets it, nothing stored; at a later write the saga is stored as it was before that write, needing
 * attention, with this as its failure, and recover() leaves it alone. A store throws it only for such a write; a
 * failure that is not the write's (a permission, a full disk, a lost connection: every write fails alike) stays a
 * store failure of its own type, which the engine leaves for recover() to retry. The message names what was
 * refused (the message id and topic, say); the store's own exception, when it has one, is the cause. Immutable.
 */
public class SagaWriteRefusedException extends StreamSagaException {
    private static final long serialVersionUID = 1L;

    /**
     * @param message what the store refuses, and why the same write would be refused again
     * @param cause   the store's own exception, or null
     */
    public SagaWriteRefusedException(String message, Throwable cause) {
        super(message, cause, false);
    }
}
