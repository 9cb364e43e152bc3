package io.streamsaga.claimcheck;

import io.streamsaga.StreamSagaException;

/**
 * A claim-checked payload could not be stored or resolved. Missing or corrupt payloads and malformed
 * references are not retriable: the bus dead-letters the message at once, with this exception's message in
 * its headers. A storage failure (disk, network) is retriable. Messages quote the payload and message ids, which
 * come from the message, bounded ({@link #quote}); {@link #payloadId()} keeps the payload id whole.
 */
public class ClaimCheckException extends StreamSagaException {
    private static final long serialVersionUID = 1L;
    private final String payloadId;

    private ClaimCheckException(String message, String payloadId, Throwable cause, boolean retriable) {
        super(message, cause, retriable);
        this.payloadId = payloadId;
    }

    /** The store has no payload under the reference's id (deleted, expired, or never stored). */
    public static ClaimCheckException missing(PayloadReference reference, String messageId) {
        return new ClaimCheckException("claim-checked payload " + quote(reference.id()) + " (" + reference.size()
                + " bytes) of message " + quote(messageId) + " is missing from the payload store", reference.id(), null, false);
    }

    /** The stored content does not match the reference's size or checksum. */
    public static ClaimCheckException corrupt(PayloadReference reference, String messageId, String detail) {
        return new ClaimCheckException("claim-checked payload " + quote(reference.id()) + " of message " + quote(messageId)
                + " is corrupt: " + detail, reference.id(), null, false);
    }

    /** The message's claim-check headers cannot be read. */
    public static ClaimCheckException malformedReference(String messageId, String detail) {
        return new ClaimCheckException("malformed claim-check reference on message " + quote(messageId) + ": " + detail,
                null, null, false);
    }

    /** The store failed; trying again may work. */
    public static ClaimCheckException storeFailure(String payloadId, String operation, Throwable cause) {
        return new ClaimCheckException("payload store failed to " + operation + " payload " + quote(payloadId) + ": " + cause,
                payloadId, cause, true);
    }

    /** The payload id concerned, or null when unknown. */
    public String payloadId() {
        return payloadId;
    }
}
