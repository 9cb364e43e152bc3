package io.streamsaga.samples;

import com.tngtech.archunit.core.domain.Dependency;
import com.tngtech.archunit.core.domain.JavaClass;
import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.junit.AnalyzeClasses;
import com.tngtech.archunit.junit.ArchTest;
import com.tngtech.archunit.lang.ArchCondition;
import com.tngtech.archunit.lang.ArchRule;
import com.tngtech.archunit.lang.ConditionEvents;
import com.tngtech.archunit.lang.SimpleConditionEvent;
import io.streamsaga.bus.EventBus;
import io.streamsaga.inmemory.InMemoryTransport;
import io.streamsaga.internal.bus.DefaultEventBus;
import io.streamsaga.samples.microservices.EventDrivenMicroservicesSample;
import org.junit.jupiter.api.Test;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.classes;
import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Module boundaries across everything on the samples' classpath (saga-core, saga-inmemory, samples and
 * whatever module samples comes to use): a class's module is found from where it was loaded
 * ({@code <module>/target/...} in the reactor, {@code io/streamsaga/<module>/...} in a repository).
 */
@AnalyzeClasses(packages = "io.streamsaga", importOptions = ImportOption.DoNotIncludeTests.class)
class SamplesArchitectureTest {

    /** The module a class comes from, or {@code "unknown"}. */
    static String moduleOf(JavaClass javaClass) {
        String uri = javaClass.getSource().map(source -> source.getUri().toString()).orElse("");
        int target = uri.indexOf("/target/");
        if (target > 0) {
            return uri.substring(uri.lastIndexOf('/', target - 1) + 1, target);
        }
        int repository = uri.indexOf("/io/streamsaga/");
        if (repository > 0 && uri.contains(".jar")) {
            String rest = uri.substring(repository + "/io/streamsaga/".length());
            return rest.substring(0, rest.indexOf('/'));
        }
        return "unknown";
    }

    private static boolean isInternal(JavaClass javaClass) {
        String name = javaClass.getPackageName();
        return name.startsWith("io.streamsaga") && (name.contains(".internal.") || name.endsWith(".internal"));
    }

    private static final ArchCondition<JavaClass> USE_INTERNALS_OF_THEIR_OWN_MODULE_ONLY =
            new ArchCondition<>("use internal classes of their own module only") {
                @Override
                public void check(JavaClass origin, ConditionEvents events) {
                    for (Dependency dependency : origin.getDirectDependenciesFromSelf()) {
                        JavaClass target = dependency.getTargetClass().getBaseComponentType();
                        if (isInternal(target) && !moduleOf(target).equals(moduleOf(origin))) {
                            events.add(SimpleConditionEvent.violated(dependency, dependency.getDescription()
                                    + " crosses from module " + moduleOf(origin) + " into " + moduleOf(target)));
                        }
                    }
                }
            };

    private static final ArchCondition<JavaClass> NOT_DEPEND_ON_OTHER_STREAMSAGA_MODULES =
            new ArchCondition<>("depend on no other StreamSaga module") {
                @Override
                public void check(JavaClass origin, ConditionEvents events) {
                    for (Dependency dependency : origin.getDirectDependenciesFromSelf()) {
                        JavaClass target = dependency.getTargetClass().getBaseComponentType();
                        if (target.getPackageName().startsWith("io.streamsaga")
                                && !moduleOf(target).equals(moduleOf(origin))) {
                            events.add(SimpleConditionEvent.violated(dependency, dependency.getDescription()
                                    + " leaves saga-core for " + moduleOf(target)));
                        }
                    }
                }
            };

    @ArchTest
    static final ArchRule internalClassesAreUsedOnlyInsideTheirOwnModule = classes()
            .should(USE_INTERNALS_OF_THEIR_OWN_MODULE_ONLY);

    @ArchTest
    static final ArchRule samplesUseNoInternalPackage = noClasses()
            .that().resideInAPackage("io.streamsaga.samples..")
            .should().dependOnClassesThat().resideInAPackage("..internal..")
            .because("samples show the public API");

    @ArchTest
    static final ArchRule sagaCoreDependsOnNoOtherModule = classes()
            .that(new com.tngtech.archunit.base.DescribedPredicate<JavaClass>("are in saga-core") {
                @Override
                public boolean test(JavaClass javaClass) {
                    return moduleOf(javaClass).equals("saga-core");
                }
            })
            .should(NOT_DEPEND_ON_OTHER_STREAMSAGA_MODULES);

    @ArchTest
    static final ArchRule nothingOutsideAKafkaAdapterTouchesKafka = noClasses()
            .that().resideOutsideOfPackage("io.streamsaga.kafka..")
            .should().dependOnClassesThat().resideInAPackage("org.apache.kafka..");

    @ArchTest
    static final ArchRule noModuleDependsOnSamples = noClasses()
            .that().resideOutsideOfPackage("io.streamsaga.samples..")
            .should().dependOnClassesThat().resideInAPackage("io.streamsaga.samples..");

    @ArchTest
    static final ArchRule spiDoesNotDependOnInternals = noClasses()
            .that().resideInAPackage("..spi..")
            .should().dependOnClassesThat().resideInAPackage("..internal..");

    @Test
    void modulesAreRecognisedSoTheRulesAreNotVacuous() {
        JavaClasses imported = new ClassFileImporter().importClasses(
                EventBus.class, DefaultEventBus.class, InMemoryTransport.class, EventDrivenMicroservicesSample.class);
        assertEquals("saga-core", moduleOf(imported.get(EventBus.class)));
        assertEquals("saga-core", moduleOf(imported.get(DefaultEventBus.class)));
        assertEquals("saga-inmemory", moduleOf(imported.get(InMemoryTransport.class)));
        assertEquals("samples", moduleOf(imported.get(EventDrivenMicroservicesSample.class)));
    }
}
