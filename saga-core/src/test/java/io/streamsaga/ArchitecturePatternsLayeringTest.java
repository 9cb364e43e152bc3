package io.streamsaga;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import org.junit.jupiter.api.Test;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;

/** The architecture building blocks sit on the public bus API only. */
class ArchitecturePatternsLayeringTest {
    private static final String[] BLOCKS = {"io.streamsaga.choreography..", "io.streamsaga.cqrs..", "io.streamsaga.kappa..",
            "io.streamsaga.lambda..", "io.streamsaga.strangler.."};

    private final JavaClasses classes = new ClassFileImporter()
            .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
            .importPackages("io.streamsaga");

    @Test
    void blocksNeverUseTheBusInternals() {
        noClasses().that().resideInAnyPackage(BLOCKS)
                .should().dependOnClassesThat().resideInAPackage("io.streamsaga.internal..")
                .check(classes);
    }

    @Test
    void onlyTheStranglerUsesItsOwnInternals() {
        noClasses().that().resideOutsideOfPackage("io.streamsaga.strangler..")
                .should().dependOnClassesThat().resideInAPackage("io.streamsaga.strangler.internal..")
                .check(classes);
    }

    @Test
    void theCoreBlocksImportNoAdapterOrRegistry() {
        noClasses().that().resideInAnyPackage(BLOCKS)
                .should().dependOnClassesThat().resideInAnyPackage("org.apache.kafka..", "io.micrometer..", "io.streamsaga.inmemory..")
                .check(classes);
    }
}
