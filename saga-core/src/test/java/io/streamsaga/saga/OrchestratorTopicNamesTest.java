package io.streamsaga.saga;

import io.streamsaga.ConfigurationException;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The reply and lifecycle topics are refused by the builder when no transport could take them (a space, a NUL, a
 * '/'), with the same rule and message as a publish: otherwise every saga's command or event fails at run time.
 */
class OrchestratorTopicNamesTest {

    @Test
    void aLifecycleTopicThatIsNoLegalTopicNameIsRefusedByTheBuilderNotAtEveryPublish() {
        for (String illegal : new String[] {"saga events", "saga\u0000events", "saga/events", "", null}) {
            ConfigurationException refused = assertThrows(ConfigurationException.class,
                    () -> SagaOrchestrator.builder().publishLifecycleEvents(illegal));
            assertTrue(refused.getMessage().startsWith("topic name must be"), refused.getMessage());
        }
    }

    @Test
    void aReplyTopicThatIsNoLegalTopicNameIsRefusedByTheBuilder() {
        for (String illegal : new String[] {"saga replies", "replies\u0000", "a*", "", null}) {
            ConfigurationException refused = assertThrows(ConfigurationException.class,
                    () -> SagaOrchestrator.builder().replyTopic(illegal));
            assertTrue(refused.getMessage().startsWith("topic name must be"), refused.getMessage());
        }
    }

    @Test
    void anOverLongIllegalTopicIsQuotedAsItsFirstCharactersAndItsLength() {
        String illegal = " ".repeat(10_000);
        ConfigurationException refused = assertThrows(ConfigurationException.class,
                () -> SagaOrchestrator.builder().publishLifecycleEvents(illegal));
        assertTrue(refused.getMessage().length() < 300, refused.getMessage());
    }

    @Test
    void legalTopicNamesAreTaken() {
        assertEquals(SagaOrchestrator.Builder.class,
                SagaOrchestrator.builder().publishLifecycleEvents("saga.lifecycle-events_1").replyTopic("saga-replies").getClass());
    }
}
