package io.streamsaga.saga;

import java.util.List;

/**
 * One page of a paged query of {@link SagaOrchestrator} ({@link SagaPageRequest} tells the order). Immutable.
 *
 * @param sagas the sagas of the page, in the query's order; empty when none is left
 * @param next  the request for the next page (same size, after the last saga of this one), or null when this page
 *              is the last: the query found no saga after it when it read it
 */
public record SagaPage(List<SagaInstance> sagas, SagaPageRequest next) {

    public SagaPage {
        sagas = List.copyOf(sagas);
    }

    /** Whether a saga came after this page when it was read: {@link #next()} is not null. */
    public boolean hasNext() {
        return next != null;
    }
}
