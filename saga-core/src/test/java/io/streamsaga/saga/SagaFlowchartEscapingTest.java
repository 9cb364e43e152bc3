package io.streamsaga.saga;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code SagaDefinition.toMermaid()} must quote every label, so that brackets, parentheses, quotes and the
 * word "end" in the saga's or a step's name do not end a node early (Mermaid then rejects the chart).
 */
class SagaFlowchartEscapingTest {
    record Data(String id) {
    }

    @Test
    void namesWithBracketsParenthesesQuotesAndLineBreaksAreQuotedLabels() {
        String mermaid = SagaDefinition.builder("order saga (eu) [end]", Data.class)
                .step("reserve (stock)").action((d, c) -> d).compensation((d, c) -> { })
                .step("say \"hi\"\nloudly").action((d, c) -> d).compensation((d, c) -> { })
                .pivot("pay <card>").action((d, c) -> d)
                .build().toMermaid();

        assertTrue(mermaid.contains("start([\"order saga (eu) [end] v1\"])"), mermaid);
        assertTrue(mermaid.contains("c0[/\"undo reserve (stock)\"/] --> compensated([compensated])"), mermaid);
        assertTrue(mermaid.contains("s1[\"say #quot;hi#quot;<br/>loudly\"]"), mermaid);
        assertTrue(mermaid.contains("c1[/\"undo say #quot;hi#quot;<br/>loudly\"/] --> c0"), mermaid);
        assertTrue(mermaid.contains("s2{\"pay #lt;card#gt;<br/>(pivot)\"}"), mermaid);
        assertFalse(mermaid.contains("\"hi\""), mermaid);
        for (String line : mermaid.lines().toList()) {
            assertFalse(line.isBlank(), "a label broke over lines:\n" + mermaid);
        }
    }
}
