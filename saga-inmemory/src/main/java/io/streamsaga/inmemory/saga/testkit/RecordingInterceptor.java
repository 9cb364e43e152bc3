package io.streamsaga.inmemory.saga.testkit;

import io.streamsaga.saga.SagaInterceptor;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** Records every invocation and injects the configured failures. Shared by the orchestrators of one run. */
final class RecordingInterceptor implements SagaInterceptor {
    private final Map<String, FailureMode> stepFailures;
    private final Map<String, FailureMode> compensationFailures;
    private final Map<String, Integer> strikes = new HashMap<>();
    private final List<RecordedInvocation> invocations = new ArrayList<>();
    private final List<CompensationEvent> compensations = new ArrayList<>();

    /**
     * A compensation attempt starting ({@code started}) or succeeding, in the order they happened: unlike
     * the {@link RecordedInvocation}s, which are recorded as invocations end, it tells when each started.
     */
    record CompensationEvent(String step, boolean started) {
    }

    RecordingInterceptor(Map<String, FailureMode> stepFailures, Map<String, FailureMode> compensationFailures) {
        this.stepFailures = Map.copyOf(stepFailures);
        this.compensationFailures = Map.copyOf(compensationFailures);
    }

    @Override
    public synchronized void before(SagaInterceptor.Invocation invocation) {
        boolean compensation = invocation.kind() == Kind.COMPENSATION;
        String step = invocation.context().step();
        if (compensation) {
            compensations.add(new CompensationEvent(step, true));
        }
        FailureMode mode = (compensation ? compensationFailures : stepFailures).get(step);
        if (mode == null) {
            return;
        }
        int strike = strikes.merge((compensation ? "compensation:" : "step:") + step, 1, Integer::sum);
        if (strike <= mode.times()) {
            throw new InjectedFailure("injected failure " + strike + " of " + (compensation ? "the compensation of " : "step ")
                    + step + " (" + mode + ")");
        }
    }

    @Override
    public synchronized void after(SagaInterceptor.Invocation invocation, Throwable error) {
        invocations.add(new RecordedInvocation(invocations.size() + 1, invocation.kind(), invocation.context().sagaId(),
                invocation.context().step(), invocation.context().attempt(), invocation.context().idempotencyKey(),
                error == null, error == null ? null : error.getClass().getSimpleName() + ": " + error.getMessage()));
        if (invocation.kind() == Kind.COMPENSATION && error == null) {
            compensations.add(new CompensationEvent(invocation.context().step(), false));
        }
    }

    synchronized List<CompensationEvent> compensationEvents() {
        return List.copyOf(compensations);
    }

    synchronized List<RecordedInvocation> invocations() {
        return List.copyOf(invocations);
    }
}
