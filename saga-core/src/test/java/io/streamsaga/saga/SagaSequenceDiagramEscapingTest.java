package io.streamsaga.saga;

import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code SagaDiagrams.sequence} must give every step its own participant, with an id Mermaid accepts, and
 * keep every statement on one line whatever the names and error messages contain.
 */
class SagaSequenceDiagramEscapingTest {
    private static final Instant T = Instant.parse("2026-01-01T00:00:00Z");

    private static List<SagaTransition> run(String detail, String... steps) {
        List<SagaTransition> history = new ArrayList<>();
        history.add(new SagaTransition("s", 1, T, TransitionType.SAGA_STARTED, null, 0, null));
        for (String step : steps) {
            history.add(new SagaTransition("s", history.size() + 1, T, TransitionType.STEP_STARTED, step, 1, null));
            history.add(new SagaTransition("s", history.size() + 1, T, TransitionType.STEP_FAILED, step, 1, detail));
        }
        return history;
    }

    private static List<String> participantIds(String diagram) {
        return diagram.lines().filter(l -> l.startsWith("  participant ")).map(l -> l.split(" ")[3]).toList();
    }

    @Test
    void stepsWhoseNamesDifferOnlyInNonAsciiOrPunctuationGetDistinctParticipants() {
        String diagram = SagaDiagrams.sequence("预订流程", run(null, "预订酒店", "预订航班", "a-b", "a.b"));

        List<String> ids = participantIds(diagram);
        assertEquals(5, ids.size(), diagram);
        assertEquals(5, ids.stream().distinct().count(), "two steps share one participant:\n" + diagram);
    }

    @Test
    void aStepNamedLikeTheOrchestratorOrAMermaidKeywordGetsAnotherId() {
        String diagram = SagaDiagrams.sequence("order-saga", run(null, "O", "end", "note", "Loop", "create"));

        List<String> ids = participantIds(diagram);
        assertEquals(6, ids.stream().distinct().count(), "the step 'O' is drawn as the orchestrator:\n" + diagram);
        for (String keyword : List.of("end", "note", "loop", "create")) {
            assertFalse(ids.stream().anyMatch(id -> id.equalsIgnoreCase(keyword)),
                    "Mermaid reads the id '" + keyword + "' as a keyword:\n" + diagram);
        }
        assertTrue(diagram.contains("O->>O_2: execute (attempt 1)"), diagram);
    }

    @Test
    void namesAndErrorsWithLineBreaksSemicolonsOrHashesStayOnTheirLine() {
        String diagram = SagaDiagrams.sequence("order;saga\r\n#2",
                run("SQLException: deadlock\r\ndetected; retry #3\rnow", "pay;now", "ship\nit", "tag#1"));

        assertFalse(diagram.contains("\r"), diagram);
        for (String line : diagram.lines().toList()) {
            assertTrue(line.equals("sequenceDiagram") || line.startsWith("  participant ") || line.startsWith("  Note over ")
                    || line.matches("  \\w+(->>|--xO:).*"), "a statement broke over lines: '" + line + "' in\n" + diagram);
            if (!line.startsWith("sequenceDiagram")) {
                assertFalse(line.replaceAll("#\\w+;", "").matches(".*[;#].*"),
                        "Mermaid ends the statement at ';' or '#': '" + line + "'");
            }
        }
    }
    @Test
    void aLongErrorIsShortenedWithoutSplittingACharacterOutsideTheBasicPlane() {
        String detail = "x".repeat(76) + "\uD83D\uDE00 and more text after the emoji, long enough to be cut";
        String diagram = SagaDiagrams.sequence("order-saga", run(detail, "pay"));

        String failed = diagram.lines().filter(l -> l.startsWith("  pay--xO: failed: ")).findFirst().orElseThrow();
        for (int i = 0; i < failed.length(); i++) {
            char c = failed.charAt(i);
            assertFalse(Character.isHighSurrogate(c) && (i + 1 == failed.length() || !Character.isLowSurrogate(failed.charAt(i + 1))),
                    "half a character at " + i + ": " + failed);
        }
        assertTrue(failed.endsWith("..."), failed);
    }
}
