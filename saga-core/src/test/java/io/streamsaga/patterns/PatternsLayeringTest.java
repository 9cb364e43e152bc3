package io.streamsaga.patterns;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import org.junit.jupiter.api.Test;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;

/** The pattern packages are API and SPI: they use the bus's public contract, never engine internals. */
class PatternsLayeringTest {
    private static final String[] PATTERNS = {
            "io.streamsaga.idempotency..", "io.streamsaga.splitter..", "io.streamsaga.claimcheck..",
            "io.streamsaga.aggregator..", "io.streamsaga.routing.."};

    private final JavaClasses classes = new ClassFileImporter()
            .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
            .importPackages("io.streamsaga.idempotency", "io.streamsaga.splitter", "io.streamsaga.claimcheck",
                    "io.streamsaga.aggregator", "io.streamsaga.routing");

    @Test
    void patternsNeverImportInternals() {
        noClasses().that().resideInAnyPackage(PATTERNS)
                .should().dependOnClassesThat().resideInAPackage("..internal..")
                .check(classes);
    }

    @Test
    void patternStoreSpisDependOnNoPatternImplementation() {
        noClasses().that().resideInAnyPackage("io.streamsaga.idempotency.spi..", "io.streamsaga.claimcheck.spi..",
                        "io.streamsaga.aggregator.spi..")
                .should().dependOnClassesThat().haveSimpleNameEndingWith("Interceptor")
                .orShould().dependOnClassesThat().haveSimpleNameEndingWith("Consumer")
                .orShould().dependOnClassesThat().haveSimpleNameEndingWith("Producer")
                .orShould().dependOnClassesThat().haveSimpleNameEndingWith("EventAggregator")
                .check(classes);
    }
}
