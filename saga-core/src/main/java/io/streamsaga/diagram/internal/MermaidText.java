package io.streamsaga.diagram.internal;

import java.util.Locale;
import java.util.Set;

/**
 * Names and free text as parts of a Mermaid sequence diagram, shared by the saga diagrams and the flow tracker's, so
 * that a name of the application's or a header from outside can neither merge two participants nor break a
 * statement. A text helper, not an engine internal: it lives outside {@code io.streamsaga.internal}, which the
 * architecture blocks (the flow tracker among them) must not use. Stateless.
 */
public final class MermaidText {
    private static final Set<String> KEYWORDS = Set.of("participant", "actor", "create", "destroy", "box", "as", "loop",
            "rect", "opt", "alt", "else", "par", "par_over", "and", "critical", "option", "break", "end", "links", "link",
            "properties", "details", "over", "note", "activate", "deactivate", "autonumber", "off", "title",
            "sequencediagram");

    private MermaidText() {
    }

    /**
     * A participant id for {@code name}: the name with every character but ASCII letters, digits and '_' replaced by
     * '_', made unique ({@code taken} holds the ids given so far, and any reserved ones; the new id is added to it),
     * and never a word Mermaid's sequence diagrams read as a keyword (they do so ignoring case).
     */
    public static String participantId(String name, Set<String> taken) {
        String base = name.replaceAll("[^A-Za-z0-9_]", "_");
        String id = base;
        for (int n = 2; taken.contains(id) || KEYWORDS.contains(id.toLowerCase(Locale.ROOT)); n++) {
            id = base + "_" + n;
        }
        taken.add(id);
        return id;
    }

    /** The text on one line, without the characters that end a Mermaid sequence-diagram statement (';', '#'). */
    public static String oneLine(String text) {
        return text.replace("\r\n", " ").replace('\r', ' ').replace('\n', ' ').replace(';', ',').replace('#', ' ');
    }
}
