package io.streamsaga.bus;

import java.lang.annotation.Documented;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * Marks a method of a plain object as a handler, as NestJS's {@code @EventPattern('order-created')}.
 * The method takes the event (a registered class, {@code JsonNode} or {@code Message}) and optionally a
 * {@link DeliveryContext} second; it may return {@code void} or a {@code CompletionStage} that the bus
 * waits for. Register every annotated method of an object with {@link EventBus#register(String, Object)}, or with
 * {@link EventBus#register(String, Object, RegistrationOptions)} to give the values of placeholders in the patterns
 * ({@code @EventPattern("${env}.orders")}, for a service deployed per environment or tenant) and a decorator of every
 * method's handler (an {@link io.streamsaga.idempotency.IdempotentConsumer}'s {@code wrap}).
 */
@Documented
@Retention(RetentionPolicy.RUNTIME)
@Target(ElementType.METHOD)
public @interface EventPattern {
    /**
     * The topic or wildcard pattern, such as {@code order-created} or {@code order-*}; it may hold placeholders
     * ({@code ${env}.orders}) whose values are given at registration ({@link RegistrationOptions}).
     */
    String value();

    /** Start position for a group with no committed position. */
    StartPosition start() default StartPosition.LATEST;
}
