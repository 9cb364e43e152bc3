package io.streamsaga.inmemory;

import io.streamsaga.bus.EventBus;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.TreeSet;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * No test class of this module lives in a package of saga-core's main classes: such a split package reaches the
 * package-private members of saga-core from another module, which a module path forbids and which hides a test helper
 * among the library's classes (a helper in {@code io.streamsaga.claimcheck}, pattern tests in
 * {@code io.streamsaga.choreography}, {@code cqrs}, {@code kappa}, {@code lambda}, {@code strangler} were). A test
 * that needs saga-core's package-private access belongs in saga-core's own tests (its test-jar, which this module
 * uses).
 */
class TestPackagesSplitNoMainPackageTest {

    @Test
    void noTestPackageOfThisModuleIsAMainPackageOfSagaCore() throws Exception {
        Set<String> core = packagesOfClassesUnder(locationOf(EventBus.class));
        Set<String> tests = packagesOfClassesUnder(locationOf(TestPackagesSplitNoMainPackageTest.class));

        tests.retainAll(core);

        assertEquals(Set.of(), tests, "test packages of saga-inmemory that split a main package of saga-core");
    }

    private static Path locationOf(Class<?> type) throws URISyntaxException {
        return Path.of(type.getProtectionDomain().getCodeSource().getLocation().toURI());
    }

    /** The packages of the classes in a directory of classes (the build's) or a jar. */
    private static Set<String> packagesOfClassesUnder(Path location) throws IOException {
        if (Files.isDirectory(location)) {
            try (Stream<Path> files = Files.walk(location)) {
                return files.filter(file -> file.toString().endsWith(".class"))
                        .map(file -> location.relativize(file.getParent()).toString().replace(location.getFileSystem()
                                .getSeparator(), "."))
                        .collect(Collectors.toCollection(TreeSet::new));
            }
        }
        try (JarFile jar = new JarFile(location.toFile())) {
            return jar.stream().map(JarEntry::getName).filter(name -> name.endsWith(".class"))
                    .map(name -> name.contains("/") ? name.substring(0, name.lastIndexOf('/')).replace('/', '.') : "")
                    .collect(Collectors.toCollection(TreeSet::new));
        }
    }
}
