package io.streamsaga.inmemory;

import com.tngtech.archunit.base.DescribedPredicate;
import com.tngtech.archunit.core.domain.JavaClass;
import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.junit.AnalyzeClasses;
import com.tngtech.archunit.junit.ArchTest;
import com.tngtech.archunit.lang.ArchRule;

import static com.tngtech.archunit.core.domain.JavaClass.Predicates.resideInAPackage;
import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;

/**
 * The layering of saga-inmemory (its main classes only): it uses saga-core through its API and SPI,
 * never through an internal package of another module (saga-core's {@code io.streamsaga.internal..}
 * or {@code io.streamsaga.<area>.internal..}); only its own {@code io.streamsaga.inmemory.internal}.
 */
@AnalyzeClasses(packages = "io.streamsaga.inmemory", importOptions = ImportOption.DoNotIncludeTests.class)
class InMemoryArchitectureTest {

    private static final DescribedPredicate<JavaClass> INTERNAL_OF_ANOTHER_MODULE =
            resideInAPackage("..internal..").and(DescribedPredicate.not(resideInAPackage("io.streamsaga.inmemory..")))
                    .as("internal classes of another module");

    @ArchTest
    static final ArchRule usesNoInternalPackageOfAnotherModule = noClasses()
            .should().dependOnClassesThat(INTERNAL_OF_ANOTHER_MODULE)
            .because("internal classes are used only inside their own module");

    @ArchTest
    static final ArchRule nothingHereTouchesKafka = noClasses()
            .should().dependOnClassesThat().resideInAPackage("org.apache.kafka..");

    @ArchTest
    static final ArchRule importsNoAdapterOrSample = noClasses()
            .should().dependOnClassesThat().resideInAnyPackage(
                    "io.streamsaga.kafka..", "io.streamsaga.jdbc..", "io.streamsaga.micrometer..", "io.streamsaga.samples..");
}
