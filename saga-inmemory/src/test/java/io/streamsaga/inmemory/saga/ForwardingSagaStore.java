package io.streamsaga.inmemory.saga;

import io.streamsaga.saga.SagaInstance;
import io.streamsaga.saga.SagaStatus;
import io.streamsaga.saga.SagaTransition;
import io.streamsaga.saga.spi.SagaQuery;
import io.streamsaga.saga.spi.SagaStore;

import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * A test store that forwards the SPI's abstract methods to a delegate and keeps its defaults (one write per
 * transition, no outgoing messages): tests override the write they fail, delay or record.
 */
abstract class ForwardingSagaStore implements SagaStore {
    final SagaStore delegate;

    ForwardingSagaStore(SagaStore delegate) {
        this.delegate = delegate;
    }

    @Override
    public void insert(SagaInstance instance, SagaTransition transition) {
        delegate.insert(instance, transition);
    }

    @Override
    public void update(SagaInstance updated, SagaTransition transition) {
        delegate.update(updated, transition);
    }

    @Override
    public Optional<SagaInstance> find(String sagaId) {
        return delegate.find(sagaId);
    }

    @Override
    public List<SagaInstance> findByBusinessKey(String businessKey) {
        return delegate.findByBusinessKey(businessKey);
    }

    @Override
    public List<SagaInstance> findByStatus(Set<SagaStatus> statuses) {
        return delegate.findByStatus(statuses);
    }

    @Override
    public List<SagaInstance> findPage(SagaQuery query) {
        return delegate.findPage(query);
    }

    @Override
    public Map<SagaStatus, Long> countByStatus(Set<SagaStatus> statuses) {
        return delegate.countByStatus(statuses);
    }

    @Override
    public Map<String, Map<SagaStatus, Long>> countBySagaAndStatus(Set<SagaStatus> statuses) {
        return delegate.countBySagaAndStatus(statuses);
    }

    @Override
    public List<SagaInstance> findActiveCreatedBefore(Instant createdBefore) {
        return delegate.findActiveCreatedBefore(createdBefore);
    }

    @Override
    public List<SagaTransition> history(String sagaId) {
        return delegate.history(sagaId);
    }

    @Override
    public int deleteFinishedBefore(Instant cutoff) {
        return delegate.deleteFinishedBefore(cutoff);
    }
}
