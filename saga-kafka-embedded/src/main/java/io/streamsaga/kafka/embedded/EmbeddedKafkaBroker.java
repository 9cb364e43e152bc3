package io.streamsaga.kafka.embedded;

import kafka.server.KafkaConfig;
import kafka.server.KafkaRaftServer;
import kafka.tools.StorageTool;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.utils.Time;
import org.apache.kafka.common.utils.internals.Exit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Properties;
import java.util.stream.Stream;

/**
 * A single-node Apache Kafka broker in KRaft mode (broker and controller in one), started in the current
 * JVM on free loopback ports, for tests and demos. Not for production: one replica, data in a temporary
 * directory that {@link #close()} deletes.
 *
 * <p>Typical use: {@code try (EmbeddedKafkaBroker broker = EmbeddedKafkaBroker.start()) { ... broker.bootstrapServers() ... }}.
 * Starting takes a few seconds, so tests share one broker per test class or suite.
 *
 * <p>Starting overrides Kafka's JVM-wide exit and halt procedures so that a broker fault throws an
 * exception in the broker thread instead of terminating the test JVM. Thread-safe: {@link #close()} may be
 * called from any thread, more than once.
 */
public final class EmbeddedKafkaBroker implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(EmbeddedKafkaBroker.class);

    private final Path directory;
    private final boolean deleteOnClose;
    private final int port;
    private final KafkaRaftServer server;
    private volatile boolean closed;

    private EmbeddedKafkaBroker(Path directory, boolean deleteOnClose, int port, KafkaRaftServer server) {
        this.directory = directory;
        this.deleteOnClose = deleteOnClose;
        this.port = port;
        this.server = server;
    }

    /** Starts a broker with the default settings (3 partitions per auto-created topic). */
    public static EmbeddedKafkaBroker start() {
        return start(Map.of());
    }

    /**
     * Starts a broker; {@code overrides} are broker properties (such as {@code num.partitions} or
     * {@code message.max.bytes}) applied over the defaults.
     */
    public static EmbeddedKafkaBroker start(Map<String, String> overrides) {
        Objects.requireNonNull(overrides, "overrides");
        installExitGuards();
        Path directory;
        try {
            // java.io.tmpdir points into the build directory in tests, so a killed JVM leaves nothing behind
            directory = Files.createTempDirectory("streamsaga-kafka-");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create the broker's data directory", e);
        }
        try {
            return start(directory, true, overrides);
        } catch (RuntimeException e) {
            deleteRecursively(directory);
            throw e;
        }
    }

    private static EmbeddedKafkaBroker start(Path directory, boolean deleteOnClose, Map<String, String> overrides) {
        int port = freePort();
        int controllerPort = freePort();
        Map<String, String> props = new LinkedHashMap<>();
        props.put("process.roles", "broker,controller");
        props.put("node.id", "1");
        props.put("controller.quorum.voters", "1@127.0.0.1:" + controllerPort);
        props.put("listeners", "PLAINTEXT://127.0.0.1:" + port + ",CONTROLLER://127.0.0.1:" + controllerPort);
        props.put("advertised.listeners", "PLAINTEXT://127.0.0.1:" + port);
        props.put("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT");
        props.put("controller.listener.names", "CONTROLLER");
        props.put("inter.broker.listener.name", "PLAINTEXT");
        props.put("log.dirs", directory.resolve("data").toString());
        props.put("num.partitions", "3");
        props.put("auto.create.topics.enable", "true");
        props.put("offsets.topic.replication.factor", "1");
        props.put("offsets.topic.num.partitions", "5");
        props.put("transaction.state.log.replication.factor", "1");
        props.put("transaction.state.log.min.isr", "1");
        props.put("transaction.state.log.num.partitions", "5");
        props.put("min.insync.replicas", "1");
        props.put("default.replication.factor", "1");
        props.put("group.initial.rebalance.delay.ms", "0");
        // The 128 MiB default dedupe buffer runs a small test heap out of memory.
        props.put("log.cleaner.dedupe.buffer.size", "2097152");
        props.put("num.network.threads", "2");
        props.put("num.io.threads", "2");
        props.put("background.threads", "2");
        props.put("num.recovery.threads.per.data.dir", "1");
        props.put("log.flush.interval.messages", String.valueOf(Long.MAX_VALUE));
        props.putAll(overrides);

        Properties properties = new Properties();
        properties.putAll(props);
        Path configFile = directory.resolve("server.properties");
        try (OutputStream out = Files.newOutputStream(configFile)) {
            properties.store(out, "StreamSaga embedded broker");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + configFile, e);
        }

        ByteArrayOutputStream formatOutput = new ByteArrayOutputStream();
        int formatted;
        try (PrintStream printStream = new PrintStream(formatOutput, true, StandardCharsets.UTF_8)) {
            formatted = StorageTool.execute(new String[]{"format", "-t", Uuid.randomUuid().toString(),
                    "-c", configFile.toString()}, printStream);
        }
        if (formatted != 0) {
            throw new EmbeddedBrokerException("formatting the broker storage failed (" + formatted + "): "
                    + formatOutput.toString(StandardCharsets.UTF_8));
        }

        KafkaRaftServer server = new KafkaRaftServer(KafkaConfig.fromProps(properties, false), Time.SYSTEM);
        try {
            server.startup();
        } catch (RuntimeException e) {
            shutdownQuietly(server);
            throw new EmbeddedBrokerException("the embedded Kafka broker did not start: " + e, e);
        }
        log.info("embedded Kafka broker started on 127.0.0.1:{} (data in {})", port, directory);
        return new EmbeddedKafkaBroker(directory, deleteOnClose, port, server);
    }

    /**
     * Runs a broker as its own process until the JVM is stopped, for demos and benchmarks that want the
     * broker out of the clients' JVM. Prints {@code bootstrap.servers=127.0.0.1:<port>} once it is up.
     * Arguments are broker properties as {@code name=value}.
     */
    public static void main(String[] args) throws InterruptedException {
        Map<String, String> overrides = new LinkedHashMap<>();
        for (String arg : args) {
            int equals = arg.indexOf('=');
            if (equals <= 0) {
                throw new IllegalArgumentException("expected name=value, but got '" + arg + "'");
            }
            overrides.put(arg.substring(0, equals), arg.substring(equals + 1));
        }
        EmbeddedKafkaBroker broker = start(overrides);
        Runtime.getRuntime().addShutdownHook(new Thread(broker::close, "embedded-kafka-shutdown"));
        System.out.println("bootstrap.servers=" + broker.bootstrapServers());
        System.out.flush();
        Thread.currentThread().join(); // until the process is stopped
    }

    /** The {@code bootstrap.servers} value for clients, {@code 127.0.0.1:<port>}. */
    public String bootstrapServers() {
        return "127.0.0.1:" + port;
    }

    /** The broker's data directory. */
    public Path directory() {
        return directory;
    }

    /** Stops the broker and deletes its data. Idempotent. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        shutdownQuietly(server);
        if (deleteOnClose) {
            deleteRecursively(directory);
        }
        log.info("embedded Kafka broker on 127.0.0.1:{} stopped", port);
    }

    private static void shutdownQuietly(KafkaRaftServer server) {
        try {
            server.shutdown();
            server.awaitShutdown();
        } catch (RuntimeException e) {
            log.warn("embedded Kafka broker did not shut down cleanly: {}", e.toString());
        }
    }

    /** A broker fault must fail the test that caused it, not kill the JVM running every other test. */
    private static void installExitGuards() {
        Exit.setExitProcedure((status, message) -> {
            throw new EmbeddedBrokerException("Kafka asked to exit the JVM with status " + status + ": " + message);
        });
        Exit.setHaltProcedure((status, message) -> {
            throw new EmbeddedBrokerException("Kafka asked to halt the JVM with status " + status + ": " + message);
        });
    }

    private static int freePort() {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            socket.setReuseAddress(true);
            return socket.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException("no free loopback port", e);
        }
    }

    private static void deleteRecursively(Path root) {
        if (!Files.exists(root)) {
            return;
        }
        try (Stream<Path> paths = Files.walk(root)) {
            paths.sorted(Comparator.reverseOrder()).forEach(path -> {
                try {
                    Files.deleteIfExists(path);
                } catch (IOException e) {
                    log.debug("cannot delete {}: {}", path, e.toString());
                }
            });
        } catch (IOException | UncheckedIOException e) {
            log.warn("cannot delete the broker directory {}: {}", root, e.toString());
        }
    }

    /** The embedded broker could not start or asked to stop the JVM. */
    public static final class EmbeddedBrokerException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        public EmbeddedBrokerException(String message) {
            super(message);
        }

        public EmbeddedBrokerException(String message, Throwable cause) {
            super(message, cause);
        }
    }
}
