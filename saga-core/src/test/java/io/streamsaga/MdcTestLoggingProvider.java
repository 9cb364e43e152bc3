package io.streamsaga;

import org.slf4j.ILoggerFactory;
import org.slf4j.Logger;
import org.slf4j.Marker;
import org.slf4j.event.Level;
import org.slf4j.helpers.LegacyAbstractLogger;
import org.slf4j.helpers.MessageFormatter;
import org.slf4j.helpers.ThreadLocalMapOfStacks;
import org.slf4j.simple.SimpleServiceProvider;
import org.slf4j.spi.MDCAdapter;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.Deque;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;

/**
 * slf4j-simple with a working MDC, for the tests of log correlation: slf4j-simple's own MDC adapter is the NOP one
 * ({@code MDC.get} always null). Chosen by the system property {@code slf4j.provider} (set by the surefire
 * configuration of the modules that use it), never by the service loader: it is not registered in META-INF/services,
 * so the test-jar changes nothing elsewhere. Its MDC is a plain {@link ThreadLocal}, not inherited by threads created
 * meanwhile (as logback's, unlike slf4j's {@code BasicMDCAdapter}), so that a key seen on a pooled thread was put
 * there, not inherited. A log line written while the thread's MDC is not empty ends with it ({@code mdc={k=v, ...}}),
 * so that {@link CapturedLog} shows what a log aggregator would get; other lines are slf4j-simple's, unchanged.
 */
public class MdcTestLoggingProvider extends SimpleServiceProvider {
    /** Whether this thread writes DEBUG lines whatever slf4j-simple's level ({@link CapturedLog#ofThisThreadAtDebug}). */
    private static final ThreadLocal<Boolean> DEBUG_HERE = ThreadLocal.withInitial(() -> false);
    private final ThreadLocalMdc mdc = new ThreadLocalMdc();
    private final ConcurrentMap<String, Logger> loggers = new ConcurrentHashMap<>();
    private ILoggerFactory simple;

    @Override
    public void initialize() {
        super.initialize();
        simple = super.getLoggerFactory();
    }

    @Override
    public ILoggerFactory getLoggerFactory() {
        return name -> loggers.computeIfAbsent(name, n -> new MdcSuffixLogger(simple.getLogger(n), mdc));
    }

    @Override
    public MDCAdapter getMDCAdapter() {
        return mdc;
    }

    /**
     * Turns DEBUG lines on or off for every logger on the calling thread, whatever slf4j-simple's level (INFO): such a
     * line is written to System.err in slf4j-simple's format. Used by {@link CapturedLog#ofThisThreadAtDebug}.
     */
    static void debugOnThisThread(boolean on) {
        DEBUG_HERE.set(on);
    }

    /** A per-thread MDC, not inheritable. */
    private static final class ThreadLocalMdc implements MDCAdapter {
        private final ThreadLocal<Map<String, String>> map = ThreadLocal.withInitial(HashMap::new);
        private final ThreadLocalMapOfStacks stacks = new ThreadLocalMapOfStacks();

        @Override
        public void put(String key, String val) {
            map.get().put(key, val);
        }

        @Override
        public String get(String key) {
            return map.get().get(key);
        }

        @Override
        public void remove(String key) {
            map.get().remove(key);
        }

        @Override
        public void clear() {
            map.get().clear();
        }

        @Override
        public Map<String, String> getCopyOfContextMap() {
            return new HashMap<>(map.get());
        }

        @Override
        public void setContextMap(Map<String, String> contextMap) {
            map.set(new HashMap<>(contextMap));
        }

        @Override
        public void pushByKey(String key, String value) {
            stacks.pushByKey(key, value);
        }

        @Override
        public String popByKey(String key) {
            return stacks.popByKey(key);
        }

        @Override
        public Deque<String> getCopyOfDequeByKey(String key) {
            return stacks.getCopyOfDequeByKey(key);
        }

        @Override
        public void clearDequeByKey(String key) {
            stacks.clearDequeByKey(key);
        }
    }

    /** slf4j-simple's logger, the MDC appended to a line written while it is not empty. */
    private static final class MdcSuffixLogger extends LegacyAbstractLogger {
        private final transient Logger delegate;
        private final transient ThreadLocalMdc mdc;

        MdcSuffixLogger(Logger delegate, ThreadLocalMdc mdc) {
            this.delegate = delegate;
            this.mdc = mdc;
            this.name = delegate.getName();
        }

        @Override
        public boolean isTraceEnabled() {
            return delegate.isTraceEnabled();
        }

        @Override
        public boolean isDebugEnabled() {
            return delegate.isDebugEnabled() || DEBUG_HERE.get();
        }

        @Override
        public boolean isInfoEnabled() {
            return delegate.isInfoEnabled();
        }

        @Override
        public boolean isWarnEnabled() {
            return delegate.isWarnEnabled();
        }

        @Override
        public boolean isErrorEnabled() {
            return delegate.isErrorEnabled();
        }

        @Override
        protected String getFullyQualifiedCallerName() {
            return null;
        }

        @Override
        protected void handleNormalizedLoggingCall(Level level, Marker marker, String pattern, Object[] arguments,
                                                   Throwable throwable) {
            String message = MessageFormatter.basicArrayFormat(pattern, arguments);
            Map<String, String> context = mdc.getCopyOfContextMap();
            if (!context.isEmpty()) {
                message = message + " mdc=" + new TreeMap<>(context);
            }
            switch (level) {
                case ERROR -> delegate.error(message, throwable);
                case WARN -> delegate.warn(message, throwable);
                case INFO -> delegate.info(message, throwable);
                case DEBUG -> {
                    if (delegate.isDebugEnabled()) {
                        delegate.debug(message, throwable);
                    } else { // asked for on this thread only: slf4j-simple's format, one write
                        StringWriter line = new StringWriter();
                        PrintWriter out = new PrintWriter(line);
                        out.println("[" + Thread.currentThread().getName() + "] DEBUG " + name + " - " + message);
                        if (throwable != null) {
                            throwable.printStackTrace(out);
                        }
                        out.flush();
                        System.err.print(line);
                    }
                }
                case TRACE -> delegate.trace(message, throwable);
            }
        }
    }
}
