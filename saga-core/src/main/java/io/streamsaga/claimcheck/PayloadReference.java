package io.streamsaga.claimcheck;

import io.streamsaga.ConfigurationException;
import io.streamsaga.StreamSagaException;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * What a claim-checked message carries instead of its payload: the payload's id in the store, its size,
 * its SHA-256 checksum and its content type. Travels as plain string headers ({@code claim-check-*}) so
 * services in other languages can resolve it. Immutable. Refusals quote the refused header values bounded
 * ({@link StreamSagaException#quote}), as they come from the message.
 *
 * @param id          content address of the payload in the store
 * @param size        payload size in bytes
 * @param sha256      hex SHA-256 of the payload, verified on resolution
 * @param contentType media type of the payload
 */
public record PayloadReference(String id, long size, String sha256, String contentType) {
    /** Header with the payload id; its presence marks a claim-checked message. */
    public static final String ID_HEADER = "claim-check-id";
    public static final String SIZE_HEADER = "claim-check-size";
    public static final String SHA256_HEADER = "claim-check-sha256";
    public static final String CONTENT_TYPE_HEADER = "claim-check-content-type";
    /**
     * Set instead of the reference headers once a consumer resolved the payload, so that a resolved
     * message published again (a dead letter of the aggregator, a forwarded event) is checked afresh
     * rather than taken for a reference. Removed on publish, with {@link #HOLD_HEADER}: they describe the
     * received record, not the new one.
     */
    public static final String RESOLVED_ID_HEADER = "claim-check-resolved-id";
    /**
     * A random token set on each record that carries a reference, and kept once it is resolved: the store's
     * holder of the payload is the record (its topic, message id and this token), not the message, so a
     * message published twice to one topic (a publish retry, an outbox relay's re-publish) holds the payload
     * until every group is done with both records. A reference without it (written by an earlier version)
     * is held per message.
     */
    public static final String HOLD_HEADER = "claim-check-hold";
    private static final Pattern HEX_SHA256 = Pattern.compile("[0-9a-f]{64}");
    private static final Pattern ID = Pattern.compile("[A-Za-z0-9_-]{1,128}");

    public PayloadReference {
        ConfigurationException.require(id != null && ID.matcher(id).matches(),
                "payload id must be 1-128 characters of [A-Za-z0-9_-], but was %s", StreamSagaException.quote(id));
        ConfigurationException.require(size >= 0, "payload size must be 0 or more, but was %s", size);
        ConfigurationException.require(sha256 != null && HEX_SHA256.matcher(sha256).matches(),
                "sha256 must be 64 lowercase hex digits, but was %s", StreamSagaException.quote(sha256));
        ConfigurationException.require(contentType != null && !contentType.isBlank(),
                "content type must not be blank, but was %s", StreamSagaException.quote(contentType));
    }

    /** Validates a payload id as stores must (ids arrive in untrusted headers). */
    public static String requireValidId(String id) {
        ConfigurationException.require(id != null && ID.matcher(id).matches(),
                "payload id must be 1-128 characters of [A-Za-z0-9_-], but was %s", StreamSagaException.quote(id));
        return id;
    }

    /** The reference as message headers. */
    public Map<String, String> toHeaders() {
        Map<String, String> headers = new LinkedHashMap<>();
        headers.put(ID_HEADER, id);
        headers.put(SIZE_HEADER, Long.toString(size));
        headers.put(SHA256_HEADER, sha256);
        headers.put(CONTENT_TYPE_HEADER, contentType);
        return headers;
    }

    /**
     * Reads a reference from headers; empty when there is none.
     *
     * @throws ConfigurationException when the headers are present but malformed
     */
    public static Optional<PayloadReference> fromHeaders(Map<String, String> headers) {
        String id = headers.get(ID_HEADER);
        if (id == null) {
            return Optional.empty();
        }
        try {
            return Optional.of(new PayloadReference(id, Long.parseLong(String.valueOf(headers.get(SIZE_HEADER))),
                    headers.get(SHA256_HEADER), headers.get(CONTENT_TYPE_HEADER)));
        } catch (NumberFormatException e) {
            throw new ConfigurationException("claim-check size header must be a number, but was "
                    + StreamSagaException.quote(headers.get(SIZE_HEADER)));
        }
    }
}
