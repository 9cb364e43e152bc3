package io.streamsaga.strangler;

/** Where the gateway sends a request. Immutable. */
public enum Target {
    /** The legacy implementation only. */
    LEGACY,
    /** The new implementation only. */
    MODERN,
    /** Both: the legacy answer is returned, the new one compared with it and every mismatch recorded. */
    SHADOW
}
