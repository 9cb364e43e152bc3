package io.streamsaga;

import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.junit.AnalyzeClasses;
import com.tngtech.archunit.junit.ArchTest;
import com.tngtech.archunit.lang.ArchRule;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;

/**
 * The layering of saga-core (its main classes only): it sees no adapter or other StreamSaga module,
 * nothing here touches Kafka, and extension points do not lean on engine internals.
 */
@AnalyzeClasses(packages = "io.streamsaga", importOptions = ImportOption.DoNotIncludeTests.class)
class CoreArchitectureTest {

    @ArchTest
    static final ArchRule coreImportsNoOtherStreamSagaModule = noClasses()
            .should().dependOnClassesThat().resideInAnyPackage(
                    "io.streamsaga.inmemory..", "io.streamsaga.kafka..", "io.streamsaga.jdbc..",
                    "io.streamsaga.micrometer..", "io.streamsaga.samples..", "io.streamsaga.benchmarks..")
            .because("saga-core must stay embeddable with only slf4j-api and jackson-databind");

    @ArchTest
    static final ArchRule nothingOutsideAKafkaAdapterTouchesKafka = noClasses()
            .that().resideOutsideOfPackage("io.streamsaga.kafka..")
            .should().dependOnClassesThat().resideInAPackage("org.apache.kafka..");

    @ArchTest
    static final ArchRule spiDoesNotDependOnInternals = noClasses()
            .that().resideInAPackage("..spi..")
            .should().dependOnClassesThat().resideInAPackage("..internal..")
            .because("adapters implement the SPI and must not be coupled to engine internals");

    @ArchTest
    static final ArchRule coreDependsOnlyOnTheJdkJacksonAndSlf4j = noClasses()
            .should().dependOnClassesThat().resideOutsideOfPackages(
                    "io.streamsaga..", "java..", "javax.annotation..", "com.fasterxml.jackson..", "org.slf4j..")
            .because("saga-core's only dependencies are slf4j-api and jackson-databind");
}
