package io.streamsaga.inmemory.saga.testkit;

import io.streamsaga.bus.MessageInterceptor;
import io.streamsaga.codec.EventCodec;
import io.streamsaga.message.Message;
import io.streamsaga.saga.SagaInterceptor;
import io.streamsaga.saga.SagaMessages;

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
     * the {@link RecordedInvocation}s, which are recorded as invocations end, it tells when each started. A remote
     * compensation starts when its command is published ({@link #commandObserver()}): its invocation is only the
     * handling of its reply, after the participant undid (that handling is recorded as a start too, a later one).
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

    /** Records the start of a remote compensation when the orchestrator publishes its command. */
    MessageInterceptor commandObserver() {
        return new MessageInterceptor() {
            @Override
            public Message beforePublish(Message message, EventCodec codec) {
                // A compensation's command names the reply topic; its reply, which has the same phase, does not.
                if (SagaMessages.COMPENSATION.equals(message.header(SagaMessages.PHASE).orElse(null))
                        && message.header(SagaMessages.REPLY_TOPIC).isPresent()) {
                    compensationStarted(message.header(SagaMessages.STEP).orElse(""));
                }
                return message;
            }
        };
    }

    private synchronized void compensationStarted(String step) {
        compensations.add(new CompensationEvent(step, true));
    }

    synchronized List<CompensationEvent> compensationEvents() {
        return List.copyOf(compensations);
    }

    synchronized List<RecordedInvocation> invocations() {
        return List.copyOf(invocations);
    }
}
