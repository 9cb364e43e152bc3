package io.streamsaga.micrometer;

import com.tngtech.archunit.base.DescribedPredicate;
import com.tngtech.archunit.core.domain.JavaClass;
import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.junit.AnalyzeClasses;
import com.tngtech.archunit.junit.ArchTest;
import com.tngtech.archunit.lang.ArchRule;

import static com.tngtech.archunit.core.domain.JavaClass.Predicates.resideInAPackage;
import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;

/**
 * The layering of saga-micrometer (main classes only), as each module states its own: a bridge from saga-core's
 * metrics API to a Micrometer registry, never through an internal package of another module, with no registry
 * implementation (Prometheus or another is the application's choice), no Kafka, no other adapter.
 */
@AnalyzeClasses(packages = "io.streamsaga.micrometer", importOptions = ImportOption.DoNotIncludeTests.class)
class MicrometerArchitectureTest {

    private static final DescribedPredicate<JavaClass> INTERNAL_OF_ANOTHER_MODULE =
            resideInAPackage("..internal..").and(DescribedPredicate.not(resideInAPackage("io.streamsaga.micrometer..")))
                    .as("internal classes of another module");

    @ArchTest
    static final ArchRule usesNoInternalPackageOfAnotherModule = noClasses()
            .should().dependOnClassesThat(INTERNAL_OF_ANOTHER_MODULE)
            .because("the bridge uses saga-core's public API only");

    @ArchTest
    static final ArchRule needsNoRegistryImplementation = noClasses()
            .should().dependOnClassesThat().resideInAPackage("io.micrometer.prometheusmetrics..")
            .because("the registry (Prometheus or another) is the application's choice");

    @ArchTest
    static final ArchRule dependsOnlyOnTheCoreMicrometerCoreAndTheJdk = noClasses()
            .should().dependOnClassesThat().resideOutsideOfPackages(
                    "io.streamsaga..", "io.micrometer.core..", "org.slf4j..", "java..")
            .because("saga-micrometer adds only micrometer-core to saga-core (whose logging API, slf4j, it logs with)");

    @ArchTest
    static final ArchRule importsNoAdapterOrSample = noClasses()
            .should().dependOnClassesThat().resideInAnyPackage("org.apache.kafka..", "io.streamsaga.kafka..",
                    "io.streamsaga.jdbc..", "io.streamsaga.inmemory..", "io.streamsaga.samples..");
}
