package io.streamsaga.jdbc;

import com.tngtech.archunit.base.DescribedPredicate;
import com.tngtech.archunit.core.domain.JavaClass;
import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.junit.AnalyzeClasses;
import com.tngtech.archunit.junit.ArchTest;
import com.tngtech.archunit.lang.ArchRule;

import static com.tngtech.archunit.core.domain.JavaClass.Predicates.resideInAPackage;
import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;

/**
 * The layering of saga-jdbc (main classes only): plain JDBC over saga-core's API and SPI, never an
 * internal package of another module, no driver or pool classes (the application supplies the
 * {@code DataSource}), no Kafka, no other adapter.
 */
@AnalyzeClasses(packages = "io.streamsaga.jdbc", importOptions = ImportOption.DoNotIncludeTests.class)
class JdbcArchitectureTest {

    private static final DescribedPredicate<JavaClass> INTERNAL_OF_ANOTHER_MODULE =
            resideInAPackage("..internal..").and(DescribedPredicate.not(resideInAPackage("io.streamsaga.jdbc..")))
                    .as("internal classes of another module");

    @ArchTest
    static final ArchRule usesNoInternalPackageOfAnotherModule = noClasses()
            .should().dependOnClassesThat(INTERNAL_OF_ANOTHER_MODULE)
            .because("internal classes are used only inside their own module");

    @ArchTest
    static final ArchRule dependsOnNoDriverOrPool = noClasses()
            .should().dependOnClassesThat().resideInAnyPackage("org.postgresql..", "org.h2..", "com.zaxxer..",
                    "io.zonky..")
            .because("the application supplies the DataSource; the library speaks plain JDBC");

    @ArchTest
    static final ArchRule importsNoOtherAdapterOrSample = noClasses()
            .should().dependOnClassesThat().resideInAnyPackage("org.apache.kafka..", "io.streamsaga.kafka..",
                    "io.streamsaga.inmemory..", "io.streamsaga.samples..");
}
