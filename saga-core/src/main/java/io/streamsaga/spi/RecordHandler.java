package io.streamsaga.spi;

/**
 * The bus's callback into a transport subscription. Returning normally means the record is done for the
 * group and its position may be committed; throwing means it was not, and the transport must deliver it
 * again (at-least-once). The bus itself retries and dead-letters, so a throw reaches the transport only
 * when even dead-lettering failed.
 */
@FunctionalInterface
public interface RecordHandler {
    void handle(TransportRecord record) throws Exception;
}
