package io.streamsaga.jdbc.testing;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;

/**
 * Wraps a JDBC object (a data source, a connection) behind a proxy whose calls go through {@code advice}, which may
 * call on to the wrapped object ({@code proceed}), change its result or throw instead: a test's faked database
 * failure or its look at a connection before the pool takes it back.
 */
public final class Around {
    private Around() {
    }

    /** What a call of the proxy does. */
    @FunctionalInterface
    public interface Advice {
        /**
         * @param method  the name of the method called
         * @param proceed calls it on the wrapped object with the call's arguments, returning its result
         */
        Object apply(String method, Proceed proceed) throws Throwable;
    }

    /** The call on the wrapped object. */
    @FunctionalInterface
    public interface Proceed {
        Object call() throws Throwable;
    }

    /** {@code target} as a {@code type} whose every call goes through {@code advice}. */
    public static <T> T wrap(Class<T> type, T target, Advice advice) {
        return type.cast(Proxy.newProxyInstance(type.getClassLoader(), new Class<?>[]{type},
                (p, method, args) -> advice.apply(method.getName(), () -> {
                    try {
                        return method.invoke(target, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                })));
    }
}
