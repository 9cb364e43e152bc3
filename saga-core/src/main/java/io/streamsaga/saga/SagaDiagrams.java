package io.streamsaga.saga;

import io.streamsaga.diagram.internal.MermaidText;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** Mermaid exports: a definition as a flowchart, a recorded run as a sequence diagram. Stateless. */
public final class SagaDiagrams {

    private SagaDiagrams() {
    }

    /** The definition as a Mermaid flowchart: steps forward, dotted failure edges into the compensations. */
    public static String flowchart(SagaDefinition<?> definition) {
        StringBuilder out = new StringBuilder("flowchart TD\n");
        out.append("  start([\"").append(label(definition.name())).append(" v").append(definition.version()).append("\"])\n");
        String previous = "start";
        List<? extends List<? extends SagaStep<?>>> groups = definition.groups();
        for (int g = 0; g < groups.size(); g++) {
            List<? extends SagaStep<?>> group = groups.get(g);
            if (group.size() == 1 && !isParallel(definition, g)) {
                SagaStep<?> step = group.get(0);
                out.append("  ").append(previous).append(" --> s").append(step.index()).append(node(step)).append('\n');
                previous = "s" + step.index();
            } else {
                out.append("  ").append(previous).append(" --> fork").append(g).append("{{fork}}\n");
                for (SagaStep<?> step : group) {
                    out.append("  fork").append(g).append(" --> s").append(step.index()).append(node(step)).append('\n');
                    out.append("  s").append(step.index()).append(" --> join").append(g).append("{{join}}\n");
                }
                previous = "join" + g;
            }
        }
        out.append("  ").append(previous).append(" --> completed([completed])\n");
        // Compensations run group by group in reverse order (a parallel group's completed members together);
        // a failing step enters the chain at its own group's node when it has siblings (or is a remote step, one that
        // may time out or one of a group with its own merge, with a compensation: uncertain, so undone too), else at the
        // nearest earlier group that has something to undo.
        List<Integer> undoable = new ArrayList<>();
        for (int g = 0; g < groups.size(); g++) {
            if (groups.get(g).stream().anyMatch(SagaStep::hasCompensation)) {
                undoable.add(g);
            }
        }
        for (int i = undoable.size() - 1; i >= 0; i--) {
            int g = undoable.get(i);
            List<String> names = new ArrayList<>();
            for (SagaStep<?> step : groups.get(g)) {
                if (step.hasCompensation()) {
                    names.add(label(step.name()));
                }
            }
            String label = isParallel(definition, g) ? "undo completed of " + String.join(", ", names) : "undo " + names.get(0);
            String next = i == 0 ? "compensated([compensated])" : "c" + undoable.get(i - 1);
            out.append("  c").append(g).append("[/\"").append(label).append("\"/] --> ").append(next).append('\n');
        }
        if (undoable.isEmpty()) {
            out.append("  compensated([compensated])\n");
        }
        for (SagaStep<?> step : definition.steps()) {
            if (step.role() == StepRole.RETRIABLE) {
                out.append("  s").append(step.index()).append(" -. retry .-> s").append(step.index()).append('\n');
                continue;
            }
            String target = "compensated";
            for (int i = undoable.size() - 1; i >= 0; i--) {
                int g = undoable.get(i);
                boolean siblings = g == step.group() && groups.get(g).stream()
                        .anyMatch(other -> other != step && other.hasCompensation());
                // A remote step's failure leaves it uncertain (it may have taken effect): it is compensated too; so
                // is a step whose attempt timed out, which was not interrupted (an asynchronous action's, a member's of
                // a group of two or more: a lone synchronous action runs to its end and cannot time out), and a member
                // whose result its group's own merge refused (it took effect; the default merge cannot throw).
                boolean timesOut = step.timeout() != null && (step.asyncAction() != null || isParallel(definition, g));
                boolean uncertain = g == step.group() && (step.isRemote() || timesOut || definition.hasOwnMerge(g))
                        && step.hasCompensation();
                if (g < step.group() || siblings || uncertain) {
                    target = "c" + g;
                    break;
                }
            }
            out.append("  s").append(step.index()).append(" -. fails .-> ").append(target).append('\n');
        }
        return out.toString();
    }

    /**
     * A name as the text of a quoted flowchart label (every label is quoted, so that brackets, parentheses
     * and the word "end" do not end the node): quotes and angle brackets as Mermaid entity codes, line
     * breaks as {@code <br/>}.
     */
    private static String label(String name) {
        return name.replace("\"", "#quot;").replace("<", "#lt;").replace(">", "#gt;")
                .replace("\r\n", "<br/>").replace("\r", "<br/>").replace("\n", "<br/>");
    }

    private static boolean isParallel(SagaDefinition<?> definition, int group) {
        return definition.groups().get(group).size() > 1;
    }

    private static String node(SagaStep<?> step) {
        String label = label(step.name());
        if (step.isRemote()) {
            label += "<br/>command to " + label(step.remote().orElseThrow().commandTopic());
        }
        if (step.remoteCompensation().isPresent()) {
            label += "<br/>undone by command to " + label(step.remoteCompensation().orElseThrow().commandTopic());
        }
        return switch (step.role()) {
            case PIVOT -> "{\"" + label + "<br/>(pivot)\"}";
            case RETRIABLE -> "[\"" + label + "<br/>(retriable)\"]";
            case COMPENSATABLE -> "[\"" + label + "\"]";
        };
    }

    /**
     * A recorded run as a Mermaid sequence diagram between the orchestrator and each step, in the order of
     * the transitions: actions, replies, failures, retries and compensations. Each step is a participant
     * labelled with its name, under an id made of the name's ASCII letters, digits and '_' (other characters
     * become '_'), suffixed {@code _2}, {@code _3}... when that id is already taken, is the orchestrator's
     * ({@code O}) or is a Mermaid keyword; line breaks, ';' and '#' in names and errors become spaces or ','.
     */
    public static String sequence(String sagaName, List<SagaTransition> history) {
        Map<String, String> participants = new LinkedHashMap<>(); // step name -> its id in the diagram
        Set<String> ids = new HashSet<>(Set.of("O"));
        for (SagaTransition t : history) {
            if (t.step() != null && !participants.containsKey(t.step())) {
                participants.put(t.step(), MermaidText.participantId(t.step(), ids));
            }
        }
        StringBuilder out = new StringBuilder("sequenceDiagram\n");
        out.append("  participant O as ").append(MermaidText.oneLine(sagaName)).append('\n');
        participants.forEach((name, id) -> out.append("  participant ").append(id).append(" as ").append(MermaidText.oneLine(name)).append('\n'));
        for (SagaTransition t : history) {
            String step = t.step() == null ? null : participants.get(t.step());
            String detail = t.detail() == null ? "" : ": " + sanitize(t.detail());
            switch (t.type()) {
                case SAGA_STARTED -> out.append("  Note over O: started\n");
                case STEP_STARTED -> out.append("  O->>").append(step).append(": execute (attempt ").append(t.attempt()).append(")\n");
                case STEP_WAITING -> out.append("  O-)").append(step).append(": send command (attempt ").append(t.attempt()).append(")\n");
                case STEP_SUCCEEDED -> out.append("  ").append(step).append("-->>O: succeeded\n");
                case STEP_FAILED -> out.append("  ").append(step).append("--xO: failed").append(detail).append('\n');
                case STEP_TIMED_OUT -> out.append("  ").append(step).append("--xO: timed out").append(detail).append('\n');
                case STEP_RETRY_SCHEDULED -> out.append("  ").append(step).append("--xO: failed, retry").append(detail).append('\n');
                case SAGA_COMPENSATING -> out.append("  Note over O: compensating").append(detail).append('\n');
                case COMPENSATION_STARTED -> out.append("  O->>").append(step).append(": compensate (attempt ").append(t.attempt()).append(")\n");
                case COMPENSATION_SUCCEEDED -> out.append("  ").append(step).append("-->>O: compensated\n");
                case COMPENSATION_RETRY_SCHEDULED -> out.append("  ").append(step).append("--xO: compensation failed, retry").append(detail).append('\n');
                case COMPENSATION_FAILED -> out.append("  ").append(step).append("--xO: compensation failed").append(detail).append('\n');
                case COMPENSATION_SKIPPED -> out.append("  Note over O,").append(step).append(": compensation skipped by operator\n");
                case SAGA_COMPLETED -> out.append("  Note over O: completed\n");
                case SAGA_COMPENSATED -> out.append("  Note over O: compensated\n");
                case SAGA_NEEDS_ATTENTION -> out.append("  Note over O: failed, needs attention").append(detail).append('\n');
                case SAGA_RETRIED -> out.append("  Note over O: operator retry\n");
                case SAGA_RESOLVED -> out.append("  Note over O: resolved by operator\n");
                case SAGA_MIGRATED -> out.append("  Note over O: migrated").append(detail).append('\n');
                case SAGA_ADOPTED -> out.append("  Note over O: adopted").append(detail).append('\n');
            }
        }
        return out.toString();
    }

    private static String sanitize(String text) {
        String oneLine = MermaidText.oneLine(text);
        if (oneLine.length() <= 80) {
            return oneLine;
        }
        int end = Character.isHighSurrogate(oneLine.charAt(76)) ? 76 : 77; // never half a character
        return oneLine.substring(0, end) + "...";
    }
}
