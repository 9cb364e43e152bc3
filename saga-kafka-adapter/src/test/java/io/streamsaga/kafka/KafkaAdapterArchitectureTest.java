package io.streamsaga.kafka;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import org.junit.jupiter.api.Test;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;

/** The adapter's layering: Kafka stays inside io.streamsaga.kafka, and the adapter uses only the core's public API and SPI. */
class KafkaAdapterArchitectureTest {
    private static final JavaClasses ADAPTER = new ClassFileImporter()
            .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
            .importPackages("io.streamsaga.kafka");

    @Test
    void kafkaIsImportedOnlyInsideTheKafkaPackages() {
        noClasses().that().resideOutsideOfPackage("io.streamsaga.kafka..")
                .should().dependOnClassesThat().resideInAPackage("org.apache.kafka..")
                .allowEmptyShould(true)
                .check(ADAPTER);
    }

    @Test
    void adapterDoesNotUseCoreInternals() {
        noClasses().should().dependOnClassesThat().resideInAPackage("io.streamsaga.internal..")
                .check(ADAPTER);
    }

    @Test
    void adapterInternalsDoNotDependOnItsPublicApi() {
        noClasses().that().resideInAPackage("io.streamsaga.kafka.internal..")
                .should().dependOnClassesThat().resideInAPackage("io.streamsaga.kafka")
                .check(ADAPTER);
    }
}
