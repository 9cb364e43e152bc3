package io.streamsaga.micrometer;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import org.junit.jupiter.api.Test;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;

class MicrometerLayeringTest {
    private final JavaClasses classes = new ClassFileImporter()
            .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
            .importPackages("io.streamsaga.micrometer");

    @Test
    void theBridgeUsesOnlyTheCorePublicApi() {
        noClasses().should().dependOnClassesThat().resideInAPackage("io.streamsaga..internal..").check(classes);
    }

    @Test
    void theBridgeNeedsNoPrometheusClasses() {
        // the registry (Prometheus or another) is the application's choice
        noClasses().should().dependOnClassesThat().resideInAPackage("io.micrometer.prometheusmetrics..").check(classes);
    }
}
