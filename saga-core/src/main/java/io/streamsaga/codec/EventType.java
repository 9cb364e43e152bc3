package io.streamsaga.codec;

import java.lang.annotation.Documented;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * Declares the stable type id and schema version of an event class, for
 * {@link TypeRegistry.Builder#register(Class)}. The id, never the Java class name, goes on the wire and
 * into stores, so classes can be renamed and moved freely.
 */
@Documented
@Retention(RetentionPolicy.RUNTIME)
@Target(ElementType.TYPE)
public @interface EventType {
    /** The type id, such as {@code order-created}. */
    String value();

    /** The schema version this class represents. */
    int version() default 1;
}
