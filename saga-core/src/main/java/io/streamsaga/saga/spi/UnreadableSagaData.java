package io.streamsaga.saga.spi;

import io.streamsaga.ConfigurationException;

/**
 * The {@link io.streamsaga.saga.SagaInstance#data() data} of a saga in a recovery page
 * ({@link SagaStore#findRecoveryCandidates}) whose stored state the store cannot read: data or step states that do
 * not parse, or other fields no instance can hold as they are stored (a blank name, a version below 1: a row corrupted
 * by hand, or written by an earlier version in a form no read accepts). The instance keeps the fields the store could
 * read (its id, status and times: its place in the pages; its name and versions where it can carry them, else
 * stand-ins the store documents) and has no steps when those are what cannot be read. A recovery reports such a saga unresolvable, leaves it untouched in the store,
 * and reads on past it; one unreadable saga does not keep the others from being resumed. Immutable.
 *
 * @param reason why the store cannot read it (the parser's message), not blank
 */
public record UnreadableSagaData(String reason) {
    public UnreadableSagaData {
        ConfigurationException.require(reason != null && !reason.isBlank(), "reason must not be blank, but was '%s'", reason);
    }
}
