package io.streamsaga.strangler;

/**
 * One implementation behind a {@link StranglerGateway}: the legacy system or the new one. Must be
 * thread-safe when the gateway is called from several threads.
 *
 * @param <Q> the request type
 * @param <R> the response type
 */
@FunctionalInterface
public interface Backend<Q, R> {
    R call(Q request) throws Exception;
}
