package io.streamsaga.samples;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The README and docs/*.md cite tests as proof of what they promise, and samples to run: a test renamed or
 * removed, or a sample moved, leaves a promise pointing at nothing. This checks every cited test class
 * ({@code SomethingTest}) has a source file of that name in the repository, every cited test method
 * ({@code SomethingTest.aMethod}, {@code SomethingTest#aMethod}, or a long method name alone in backticks) is
 * declared in the sources, and every {@code -Dexec.mainClass=} a document gives is a class with a
 * {@code main} method. Samples is the module built after every other, so all their sources are there.
 */
class DocsCitationsTest {

    private static final Pattern TEST_CLASS = Pattern.compile("\\b([A-Z][A-Za-z0-9]*Test)\\b");
    private static final Pattern TEST_METHOD = Pattern.compile("\\b([A-Z][A-Za-z0-9]*Test)[.#]([a-z][A-Za-z0-9_]*)");
    /** A test method cited on its own after its class was named once: long lower-camel names in backticks. */
    private static final Pattern BARE_METHOD = Pattern.compile("`([a-z][A-Za-z0-9]{29,})`");
    private static final Pattern MAIN_CLASS = Pattern.compile("-Dexec\\.mainClass=([A-Za-z0-9_.]+)");
    /** A sample named in backticks, in full or relative to {@code io.streamsaga.samples}: {@code `saga.OrderSagaSample`}. */
    private static final Pattern SAMPLE_NAME =
            Pattern.compile("`(?:io\\.streamsaga\\.samples\\.)?([a-z]+\\.[A-Z][A-Za-z0-9]*Sample)`");

    private static Path root;
    private static Map<String, String> docs;
    private static Map<String, List<String>> sourcesBySimpleName;
    private static String allSources;

    @BeforeAll
    static void readDocsAndSources() throws IOException {
        root = Path.of("").toAbsolutePath();
        while (root != null && !Files.isRegularFile(root.resolve("README.md"))) {
            root = root.getParent();
        }
        assertTrue(root != null, "no README.md above " + Path.of("").toAbsolutePath());
        docs = new HashMap<>();
        docs.put("README.md", Files.readString(root.resolve("README.md")));
        try (Stream<Path> files = Files.list(root.resolve("docs"))) {
            for (Path doc : files.filter(p -> p.toString().endsWith(".md")).toList()) {
                docs.put("docs/" + doc.getFileName(), Files.readString(doc));
            }
        }
        sourcesBySimpleName = new HashMap<>();
        StringBuilder all = new StringBuilder();
        try (Stream<Path> files = Files.walk(root)) {
            for (Path source : files.filter(p -> p.toString().endsWith(".java"))
                    .filter(p -> p.toString().contains("/src/") && !p.toString().contains("/target/")).toList()) {
                String text = read(source);
                String name = source.getFileName().toString().replace(".java", "");
                sourcesBySimpleName.computeIfAbsent(name, n -> new ArrayList<>()).add(text);
                all.append(text).append('\n');
            }
        }
        allSources = all.toString();
    }

    @Test
    void everyTestClassTheDocsCiteHasASourceFileOfThatName() {
        TreeSet<String> missing = new TreeSet<>();
        docs.forEach((doc, text) -> {
            Matcher m = TEST_CLASS.matcher(text);
            while (m.find()) {
                if (!sourcesBySimpleName.containsKey(m.group(1))) {
                    missing.add(doc + ": " + m.group(1));
                }
            }
        });
        assertTrue(missing.isEmpty(), "tests cited by the docs but not in the repository: " + missing);
    }

    @Test
    void everyTestMethodTheDocsCiteIsDeclaredInItsClass() {
        TreeSet<String> missing = new TreeSet<>();
        docs.forEach((doc, text) -> {
            Matcher m = TEST_METHOD.matcher(text);
            while (m.find()) {
                List<String> sources = sourcesBySimpleName.getOrDefault(m.group(1), List.of());
                Pattern declared = Pattern.compile("\\bvoid\\s+" + m.group(2) + "\\s*\\(");
                if (sources.stream().noneMatch(s -> declared.matcher(s).find())) {
                    missing.add(doc + ": " + m.group(1) + "." + m.group(2));
                }
            }
            Matcher bare = BARE_METHOD.matcher(text);
            while (bare.find()) {
                if (!Pattern.compile("\\b" + bare.group(1) + "\\s*\\(").matcher(allSources).find()) {
                    missing.add(doc + ": " + bare.group(1));
                }
            }
        });
        assertTrue(missing.isEmpty(), "test methods cited by the docs but declared nowhere: " + missing);
    }

    @Test
    void everySampleTheDocsTellToRunIsAClassWithAMainMethod() {
        TreeSet<String> missing = new TreeSet<>();
        docs.forEach((doc, text) -> {
            Matcher m = MAIN_CLASS.matcher(text);
            while (m.find()) {
                whyNotRunnable(m.group(1)).ifPresent(why -> missing.add(doc + ": " + m.group(1) + " (" + why + ")"));
            }
        });
        assertTrue(missing.isEmpty(), "samples the docs tell to run that cannot run: " + missing);
    }

    @Test
    void everySampleTheDocsNameIsAClassWithAMainMethodThatATestRuns() {
        TreeSet<String> missing = new TreeSet<>();
        docs.forEach((doc, text) -> {
            Matcher m = SAMPLE_NAME.matcher(text);
            while (m.find()) {
                String name = "io.streamsaga.samples." + m.group(1);
                whyNotRunnable(name).ifPresent(why -> missing.add(doc + ": " + name + " (" + why + ")"));
                Pattern used = Pattern.compile("\\b" + m.group(1).substring(m.group(1).indexOf('.') + 1) + "\\b");
                boolean tested = sourcesBySimpleName.entrySet().stream()
                        .filter(e -> e.getKey().endsWith("Test") && !e.getKey().startsWith("Docs"))
                        .flatMap(e -> e.getValue().stream()).anyMatch(source -> used.matcher(source).find());
                if (!tested) {
                    missing.add(doc + ": " + name + " (no test runs it)");
                }
            }
        });
        assertTrue(missing.isEmpty(), "samples the docs name that are not a runnable, tested class: " + missing);
    }

    /** Why {@code className} cannot be run as a program, if it cannot: no such class, or no static main. */
    private static Optional<String> whyNotRunnable(String className) {
        try {
            Method main = Class.forName(className).getMethod("main", String[].class);
            return Modifier.isStatic(main.getModifiers()) ? Optional.empty() : Optional.of("main is not static");
        } catch (ClassNotFoundException | NoSuchMethodException e) {
            return Optional.of(e.toString());
        }
    }

    private static String read(Path file) {
        try {
            return Files.readString(file);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
