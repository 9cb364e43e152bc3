package io.streamsaga.saga;

import io.streamsaga.ConfigurationException;
import io.streamsaga.StreamSagaException;
import io.streamsaga.bus.EventBus;
import io.streamsaga.bus.RecordPosition;
import io.streamsaga.message.Message;
import io.streamsaga.message.MessageHeaders;

import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CompletionStage;

/**
 * Headers of saga commands and replies, and the helper a participant uses to answer a command. The
 * orchestrator correlates a reply by saga id, step and attempt, and by its causation id, the command's id, which holds
 * the saga's start; stale replies (an older attempt, a saga that moved on, a command of a saga that had the id before,
 * purged by retention) are ignored. A reply without a causation id of a command is correlated without it. Stateless.
 */
public final class SagaMessages {
    /** The step that sent the command. */
    public static final String STEP = "saga-step";
    /** The attempt of the step that sent the command. */
    public static final String ATTEMPT = "saga-attempt";
    /** Where the participant must publish its reply. */
    public static final String REPLY_TOPIC = "saga-reply-topic";
    /** The idempotency key of the command (saga id + step): participants dedupe by it. */
    public static final String IDEMPOTENCY_KEY = "saga-idempotency-key";
    /**
     * {@value #COMPENSATION} on a remote compensation's command and its reply; absent on a remote step's.
     * {@link #reply} carries it over.
     */
    public static final String PHASE = "saga-phase";
    /** The {@link #PHASE} of a compensation's command and reply. */
    public static final String COMPENSATION = "compensation";

    private SagaMessages() {
    }

    /**
     * The message id of the command the orchestrator sends for {@code attempt} of the remote step {@code step} (or of
     * its remote compensation, when {@code compensation}) of the saga {@code sagaId} started at {@code createdAt}:
     * {@code <saga id>/<created at>/<step>/<attempt>}, or {@code <saga id>/<created at>/<step>/compensation/<attempt>}.
     * The same for the same attempt, so that an outbox or an inbox recognises a command sent again; another for a
     * saga started later under the same id, once the first one was purged (see {@link SagaLifecycleEvent#messageId}).
     *
     * @throws ConfigurationException when the saga id or step is null or blank, the start null or the attempt below 1
     *                                (an id made of them would name no command the orchestrator sends)
     */
    public static String commandId(String sagaId, Instant createdAt, String step, boolean compensation, int attempt) {
        // Checked before any message is built, and without building one when they hold: this runs for every command.
        if (sagaId == null || sagaId.isBlank()) {
            throw new ConfigurationException("commandId: sagaId must not be null or blank, but was "
                    + (sagaId == null ? null : "'" + sagaId + "'"));
        }
        if (createdAt == null) {
            throw new ConfigurationException("commandId: createdAt (the saga's start) must not be null");
        }
        if (step == null || step.isBlank()) {
            throw new ConfigurationException("commandId: step must not be null or blank, but was "
                    + (step == null ? null : "'" + step + "'"));
        }
        ConfigurationException.require(attempt >= 1, "commandId: attempt must be 1 or more, but was %s", attempt);
        return idPrefix(sagaId, createdAt) + "/" + step + (compensation ? "/" + COMPENSATION : "") + "/" + attempt;
    }

    /**
     * The start of the id of every message derived from the saga {@code sagaId} started at {@code createdAt}, its
     * lifecycle events' and its remote steps' commands': {@code <saga id>/<created at>}, the start as an ISO-8601
     * instant to the microsecond, so that a saga started later under the same id, once the first one was purged,
     * repeats none of them. A saga's start is taken to the microsecond when it starts, which a database keeps
     * exactly: the same ids after a recovery.
     */
    static String idPrefix(String sagaId, Instant createdAt) {
        return sagaId + "/" + createdAt.truncatedTo(ChronoUnit.MICROS);
    }

    /**
     * Publishes {@code reply} (a registered event) to the reply topic named in {@code command}, with the
     * correlation headers the orchestrator needs ({@link #replyHeaders}): the command's saga id, step, attempt and
     * phase, the command's id as causation id and its correlation id, also when called outside the command's handler
     * (from another thread, once the work is done), where the bus would not set them.
     *
     * @throws SagaException when {@code command} is not a saga command (it has no {@value #REPLY_TOPIC} header)
     */
    public static CompletionStage<RecordPosition> reply(EventBus bus, Message command, Object reply) {
        return bus.publish(replyTopic(command), command.key(), reply, replyHeaders(command));
    }

    /**
     * The headers {@link #reply} puts on a reply to {@code command}, for a reply sent another way: one a participant
     * appends to its own outbox in the transaction of the command's effect, say
     * ({@code outbox.append(connection, command.header(SagaMessages.REPLY_TOPIC).orElseThrow(), command.key(), reply,
     * SagaMessages.replyHeaders(command))}), so that it commits with the effect. The command's saga id, step, attempt
     * and phase, its id as causation id (which tells the orchestrator which saga of the id the reply answers) and its
     * correlation id (the reply is of the command's conversation, wherever it is sent from); a new map, to which the
     * caller may add headers of its own.
     *
     * @throws SagaException when {@code command} is not a saga command (it has no {@value #REPLY_TOPIC} header)
     */
    public static Map<String, String> replyHeaders(Message command) {
        replyTopic(command);
        Map<String, String> headers = new HashMap<>(Map.of(
                MessageHeaders.SAGA_ID, command.sagaId().orElse(""),
                STEP, command.header(STEP).orElse(""),
                ATTEMPT, command.header(ATTEMPT).orElse("1"),
                MessageHeaders.CAUSATION_ID, command.id()));
        command.header(PHASE).ifPresent(phase -> headers.put(PHASE, phase));
        // the command's conversation, also for a reply sent outside its handler (a relay, another thread, another
        // handler), where the bus would start a new one or take the other handler's
        command.correlationId().ifPresent(id -> headers.put(MessageHeaders.CORRELATION_ID, id));
        return headers;
    }

    /**
     * The idempotency key of the step {@code command} was sent for, {@code <saga id>/<step>} (what the step's
     * {@link StepContext#idempotencyKey()} is): its {@value #IDEMPOTENCY_KEY} header, less the {@code /compensation} a
     * remote compensation's command carries. A participant keeps the effect of a step's command under it, so that the
     * compensation's command finds the effect it undoes (or leaves its tombstone where a late command will look), while
     * it deduplicates each command by the header itself.
     *
     * @throws SagaException when {@code command} is not a saga command (it has no {@value #IDEMPOTENCY_KEY} header)
     */
    public static String stepIdempotencyKey(Message command) {
        String key = command.header(IDEMPOTENCY_KEY).orElseThrow(() -> new SagaException(command.sagaId().orElse(null),
                command.header(STEP).orElse(null), "message " + StreamSagaException.quote(command.id())
                + " is not a saga command: it has no " + IDEMPOTENCY_KEY + " header", null, false));
        String suffix = "/" + COMPENSATION;
        // '/' is refused in saga ids and step names: only a compensation's key ends so
        boolean compensation = command.header(PHASE).filter(COMPENSATION::equals).isPresent();
        return compensation && key.endsWith(suffix) ? key.substring(0, key.length() - suffix.length()) : key;
    }

    /** The topic the reply to {@code command} goes to; refused when it is not a saga command. */
    private static String replyTopic(Message command) {
        return command.header(REPLY_TOPIC).orElseThrow(() -> new SagaException(command.sagaId().orElse(null),
                command.header(STEP).orElse(null), "message " + StreamSagaException.quote(command.id()) + " is not a saga command: it has no "
                + REPLY_TOPIC + " header", null, false));
    }
}
