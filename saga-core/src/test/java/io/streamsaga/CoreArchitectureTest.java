package io.streamsaga;

import com.tngtech.archunit.core.domain.Dependency;
import com.tngtech.archunit.core.domain.JavaClass;
import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.junit.AnalyzeClasses;
import com.tngtech.archunit.junit.ArchTest;
import com.tngtech.archunit.lang.ArchCondition;
import com.tngtech.archunit.lang.ArchRule;
import com.tngtech.archunit.lang.ConditionEvents;
import com.tngtech.archunit.lang.SimpleConditionEvent;

import java.util.Arrays;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.classes;
import static org.junit.jupiter.api.Assertions.assertEquals;
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

    /**
     * The API classes (every package but an {@code internal} one, the SPI included) that reach into an internal class,
     * and the internal classes each may use, with why. Only these: an API whose contract (a message id's form, a
     * rule of a name) lives in the engine cannot be read, changed or kept stable without the engine; the engine calls
     * the API, not the reverse. A new entry needs the same kind of reason.
     */
    private static final Map<String, Set<String>> API_USES_OF_INTERNALS = Map.ofEntries(
            // entry points that build the engine they stand for (the engine's type never leaves them)
            Map.entry("io.streamsaga.bus.EventBus", Set.of("io.streamsaga.internal.bus.DefaultEventBus")),
            Map.entry("io.streamsaga.bus.DeadLetterRedrive", Set.of("io.streamsaga.internal.bus.RedriveRun")),
            Map.entry("io.streamsaga.saga.SagaOrchestrator", Set.of("io.streamsaga.saga.internal.DefaultSagaOrchestrator",
                    "io.streamsaga.internal.SystemScheduler")),
            Map.entry("io.streamsaga.time.Scheduler", Set.of("io.streamsaga.internal.SystemScheduler",
                    "io.streamsaga.internal.ScopedScheduler", "io.streamsaga.internal.RepeatingTask")),
            // helpers that hold no contract of the API: a blank check, text escaping, Jackson plumbing, a bounded set
            Map.entry("io.streamsaga.message.Message", Set.of("io.streamsaga.internal.Strings")),
            Map.entry("io.streamsaga.saga.SagaInstance", Set.of("io.streamsaga.internal.Strings")),
            Map.entry("io.streamsaga.saga.StepState", Set.of("io.streamsaga.internal.Strings")),
            // the bus's bound of a dead letter's error header, lent to the exceptions of packages that may not import it
            Map.entry("io.streamsaga.StreamSagaException", Set.of("io.streamsaga.internal.Strings")),
            Map.entry("io.streamsaga.saga.SagaDiagrams", Set.of("io.streamsaga.diagram.internal.MermaidText")),
            Map.entry("io.streamsaga.choreography.FlowTracker", Set.of("io.streamsaga.diagram.internal.MermaidText")),
            Map.entry("io.streamsaga.codec.JsonEventCodec", Set.of("io.streamsaga.internal.codec.IsoJavaTimeModule",
                    "io.streamsaga.internal.codec.JsonEscapes")),
            Map.entry("io.streamsaga.strangler.LegacyEventSync", Set.of("io.streamsaga.strangler.internal.BoundedSeenSet")));

    @ArchTest
    static final ArchRule apiUsesInternalsOnlyWhereListed = classes()
            .that().resideOutsideOfPackage("..internal..")
            .should(new ArchCondition<JavaClass>("use internal classes only as listed in API_USES_OF_INTERNALS") {
                @Override
                public void check(JavaClass origin, ConditionEvents events) {
                    for (Dependency dependency : origin.getDirectDependenciesFromSelf()) {
                        JavaClass target = dependency.getTargetClass().getBaseComponentType();
                        if (isInternal(target) && !API_USES_OF_INTERNALS.getOrDefault(topLevel(origin), Set.of())
                                .contains(topLevel(target))) {
                            events.add(SimpleConditionEvent.violated(dependency, dependency.getDescription()));
                        }
                    }
                }
            })
            .because("the API states contracts the engine implements; an API that calls into the engine for one hides it there");

    /**
     * Every use {@link #API_USES_OF_INTERNALS} lists is made: an entry outliving its use (an API class that stopped
     * calling into the engine) would let a new use of that internal class in unseen, without the reason an entry needs.
     */
    @ArchTest
    static void everyListedUseOfAnInternalIsMade(JavaClasses classes) {
        Map<String, Set<String>> unused = new TreeMap<>();
        API_USES_OF_INTERNALS.forEach((api, internals) -> unused.put(api, new TreeSet<>(internals)));
        for (JavaClass origin : classes) {
            for (Dependency dependency : origin.getDirectDependenciesFromSelf()) {
                Set<String> listed = unused.get(topLevel(origin));
                if (listed != null && !isInternal(origin)) {
                    listed.remove(topLevel(dependency.getTargetClass().getBaseComponentType()));
                }
            }
        }
        unused.values().removeIf(Set::isEmpty);
        assertEquals(Map.of(), unused, "entries of API_USES_OF_INTERNALS no class makes: remove them");
    }

    private static boolean isInternal(JavaClass javaClass) {
        return Arrays.asList(javaClass.getPackageName().split("\\.")).contains("internal");
    }

    private static String topLevel(JavaClass javaClass) {
        String name = javaClass.getName();
        int nested = name.indexOf('$');
        return nested < 0 ? name : name.substring(0, nested);
    }
}
