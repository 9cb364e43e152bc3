package io.streamsaga.saga;

import io.streamsaga.ConfigurationException;
import io.streamsaga.bus.TopicPattern;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The reply, lifecycle and command topics are refused when the orchestrator or definition is built if no transport
 * could take them (a space, a NUL, a '/'), with the same rule as a publish: otherwise every saga's command or event
 * fails at run time.
 */
class SagaTopicNamesTest {

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
    void aReplyTopicTheOrchestratorCouldNotSubscribeToIsRefusedByTheBuilderNotAtSubscribe() {
        // A dead-letter topic's name of 246-249 characters is legal, but the bus subscribes to no topic over
        // TopicPattern.MAX_TOPIC_LENGTH: the orchestrator took it and failed later, when it subscribed to its replies
        for (int length = TopicPattern.MAX_TOPIC_LENGTH + 1; length <= 249; length++) {
            String deadLetterName = "r".repeat(length - ".DLT".length()) + ".DLT";
            assertEquals(deadLetterName, TopicPattern.requireTopicName(deadLetterName), "a legal topic name");
            ConfigurationException refused = assertThrows(ConfigurationException.class,
                    () -> SagaOrchestrator.builder().replyTopic(deadLetterName));
            assertTrue(refused.getMessage().startsWith("reply topic must be at most 245 characters, as the orchestrator"
                    + " subscribes to it"), refused.getMessage());
        }
        String longest = "r".repeat(TopicPattern.MAX_TOPIC_LENGTH - ".DLT".length()) + ".DLT";
        assertEquals(SagaOrchestrator.Builder.class, SagaOrchestrator.builder().replyTopic(longest).getClass());
    }

    @Test
    void anOverLongIllegalTopicIsQuotedAsItsFirstCharactersAndItsLength() {
        String illegal = " ".repeat(10_000);
        ConfigurationException refused = assertThrows(ConfigurationException.class,
                () -> SagaOrchestrator.builder().publishLifecycleEvents(illegal));
        assertTrue(refused.getMessage().length() < 300, refused.getMessage());
    }

    @Test
    void aStepsCommandOrCompensationCommandTopicThatIsNoLegalTopicNameIsRefusedWhenTheDefinitionIsBuiltNamingTheStep() {
        for (String illegal : new String[] {"payments commands", "payments\u0000", "payments/commands", "", null}) {
            ConfigurationException command = assertThrows(ConfigurationException.class,
                    () -> SagaDefinition.builder("pay", String.class).step("charge").command(illegal, (data, ctx) -> data));
            assertTrue(command.getMessage().startsWith("step 'charge': command topic: topic name must be"),
                    command.getMessage());
            ConfigurationException compensation = assertThrows(ConfigurationException.class,
                    () -> SagaDefinition.builder("pay", String.class).step("charge")
                            .compensationCommand(illegal, (data, ctx) -> data));
            assertTrue(compensation.getMessage().startsWith("step 'charge': compensation command topic: topic name must be"),
                    compensation.getMessage());
        }
    }

    @Test
    void legalTopicNamesAreTaken() {
        assertEquals(SagaOrchestrator.Builder.class,
                SagaOrchestrator.builder().publishLifecycleEvents("saga.lifecycle-events_1").replyTopic("saga-replies").getClass());
    }
}
