package io.streamsaga.inmemory.saga.testkit;

import io.streamsaga.saga.SagaStatus;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** ExplorationReport.scenarios(Kind): the scenarios of that kind; a null kind refused, not answered "none". */
class ExplorationReportKindTest {

    @Test
    void scenariosOfAKindAreThoseOfThatKindAndANullKindIsRefused() {
        ExplorationReport.Scenario happy = new ExplorationReport.Scenario("happy path", ExplorationReport.Kind.HAPPY_PATH,
                SagaStatus.COMPLETED, false, List.of());
        ExplorationReport.Scenario crash = new ExplorationReport.Scenario("crash after write 1 of the happy path",
                ExplorationReport.Kind.CRASH_AFTER_WRITE, SagaStatus.COMPLETED, true, List.of());
        ExplorationReport report = new ExplorationReport("s", List.of(happy, crash));

        assertEquals(List.of(crash), report.scenarios(ExplorationReport.Kind.CRASH_AFTER_WRITE));
        assertEquals(List.of(), report.scenarios(ExplorationReport.Kind.STEP_FAILURE));
        NullPointerException refused = assertThrows(NullPointerException.class, () -> report.scenarios(null));
        assertEquals("kind", refused.getMessage());
    }
}
