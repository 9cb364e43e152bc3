package io.streamsaga.bus;

import io.streamsaga.ConfigurationException;
import io.streamsaga.codec.TypeRegistry;
import io.streamsaga.message.Message;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code @EventPattern} values holding {@code ${name}} placeholders, resolved from the values given at registration
 * ({@link RegistrationOptions#placeholders()}), so that one service class serves topics named per environment or
 * tenant; every check of {@code register} applies to the resolved patterns, and every refusal names the method, the
 * annotation's value and the placeholder.
 */
class EventPatternPlaceholdersTest {
    record OrderPlaced(String orderId) {
    }

    /** Not in the registry: no handler can get one. */
    record Unregistered(String id) {
    }

    private static final TypeRegistry TYPES = TypeRegistry.builder().register("order-placed", 1, OrderPlaced.class).build();

    private final RecordingTransport transport = new RecordingTransport();
    private final EventBus bus = EventBus.builder(transport).types(TYPES).build();

    /** An order service deployed per environment and tenant. */
    static final class OrderService {
        final List<String> log = new CopyOnWriteArrayList<>();

        @EventPattern("${env}.orders")
        public void placed(OrderPlaced order) {
            log.add("placed " + order.orderId());
        }

        @EventPattern(value = "${env}.${tenant}-payments-*", start = StartPosition.EARLIEST)
        public void payments(Message payment) {
            log.add("payment on " + payment.topic());
        }
    }

    static final class Literal {
        final List<String> log = new CopyOnWriteArrayList<>();

        @EventPattern("orders")
        public void placed(OrderPlaced order) {
            log.add("placed " + order.orderId());
        }
    }

    private static RegistrationOptions values(Map<String, String> values) {
        return RegistrationOptions.builder().placeholders(values::get).build();
    }

    private static Message order(String topic, String id) {
        return Message.builder(topic).key(id).type("order-placed").payload(new OrderPlaced(id)).build();
    }

    @Test
    void placeholdersAreReplacedByTheValuesGivenAtRegistrationAndTheResolvedTopicsAreSubscribed() throws Exception {
        OrderService service = new OrderService();

        List<Subscription> subscriptions = bus.register("orders", service,
                values(Map.of("env", "prod", "tenant", "acme")));

        assertEquals(List.of("prod.acme-payments-*", "prod.orders"),
                subscriptions.stream().map(s -> s.pattern().pattern()).sorted().toList());
        assertTrue(transport.registrations.stream().anyMatch(r -> r.pattern().equals(TopicPattern.of("prod.acme-payments-*"))
                && r.start() == StartPosition.EARLIEST), "the annotation's start position kept");
        assertEquals(1, transport.deliver(order("prod.orders", "o-1")));
        assertEquals(1, transport.deliver(order("prod.acme-payments-eur", "o-1")));
        assertEquals(0, transport.deliver(order("dev.orders", "o-2")), "another environment's topic is not taken");
        assertEquals(List.of("payment on prod.acme-payments-eur", "placed o-1"), service.log.stream().sorted().toList());
    }

    @Test
    void theValuesMayComeFromAnyFunctionOfTheName() throws Exception {
        Map<String, String> environment = new HashMap<>(Map.of("ENV", "staging", "TENANT", "acme"));
        Function<String, String> upperCased = name -> environment.get(name.toUpperCase());

        bus.register("orders", new OrderService(), RegistrationOptions.builder().placeholders(upperCased).build());

        assertEquals(List.of("staging.acme-payments-*", "staging.orders"),
                transport.registrations.stream().map(r -> r.pattern().pattern()).sorted().toList());
    }

    @Test
    void aPatternWithAPlaceholderIsRefusedByThePlainRegisterNamingTheMethodThePatternAndThePlaceholder() {
        ConfigurationException e = assertThrows(ConfigurationException.class, () -> bus.register("orders", new OrderService()));

        assertTrue(e.getMessage().matches("@EventPattern\\('\\$\\{env}\\.(orders|\\$\\{tenant}-payments-\\*)'\\) of method"
                + " OrderService\\.(placed|payments) holds the placeholder \\$\\{env}, but no placeholder values were given,"
                + " and '\\$' and braces are no topic characters: register the object with EventBus\\.register\\(group,"
                + " handlers, RegistrationOptions\\.builder\\(\\)\\.placeholders\\(\\.\\.\\.\\)\\.build\\(\\)\\)"),
                e.getMessage());
        assertEquals(List.of(), transport.registrations, "nothing subscribed, no literal '${env}.orders' topic");
    }

    @Test
    void aRefusalNamesTheMethodOfAnAnonymousClassByItsClassesName() {
        Object anonymous = new Object() {
            @EventPattern("${env}.orders")
            public void placed(OrderPlaced order) {
            }
        };

        ConfigurationException e = assertThrows(ConfigurationException.class, () -> bus.register("orders", anonymous));

        assertTrue(e.getMessage().startsWith("@EventPattern('${env}.orders') of method " + anonymous.getClass().getName()
                + ".placed holds the placeholder ${env}"), e.getMessage());
    }

    @Test
    void aPlaceholderWithoutAValueIsRefusedAndNoMethodIsSubscribed() {
        ConfigurationException e = assertThrows(ConfigurationException.class,
                () -> bus.register("orders", new OrderService(), values(Map.of("env", "prod"))));

        assertEquals("@EventPattern('${env}.${tenant}-payments-*') of method OrderService.payments holds the placeholder"
                + " ${tenant}, which has no value among the placeholder values given at registration", e.getMessage());
        assertEquals(List.of(), transport.registrations, "the method whose pattern resolved is not subscribed either");
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "  ", "\t"})
    void aBlankValueIsRefused(String blank) {
        ConfigurationException e = assertThrows(ConfigurationException.class,
                () -> bus.register("orders", new OrderService(), values(Map.of("env", blank, "tenant", "acme"))));

        assertTrue(e.getMessage().matches("@EventPattern\\('.*'\\) of method OrderService\\.(placed|payments) holds the"
                + " placeholder \\$\\{env}, which has a blank value '.*' among the placeholder values given at"
                + " registration"), e.getMessage());
        assertEquals(List.of(), transport.registrations);
    }

    @ParameterizedTest
    @ValueSource(strings = {"prod/eu", "prod eu", "*", "prod-*", "${other}", "pröd"})
    void aValueThatIsNotMadeOfTopicCharactersIsRefusedAWildcardIncluded(String value) {
        ConfigurationException e = assertThrows(ConfigurationException.class,
                () -> bus.register("orders", new OrderService(), values(Map.of("env", value, "tenant", "acme"))));

        assertTrue(e.getMessage().matches("@EventPattern\\('.*'\\) of method OrderService\\.(placed|payments) holds the"
                + " placeholder \\$\\{env}, whose value must be letters, digits, '\\.', '_' and '-' \\(a wildcard '\\*' is"
                + " written in the annotation, not in a value\\), but was '" + java.util.regex.Pattern.quote(value) + "'"),
                e.getMessage());
        assertEquals(List.of(), transport.registrations);
    }

    static final class Unclosed {
        @EventPattern("${env.orders")
        public void placed(OrderPlaced order) {
        }
    }

    static final class Empty {
        @EventPattern("${}.orders")
        public void placed(OrderPlaced order) {
        }
    }

    static final class DollarAlone {
        @EventPattern("$env.orders")
        public void placed(OrderPlaced order) {
        }
    }

    static final class WithDefault {
        @EventPattern("${env:dev}.orders")
        public void placed(OrderPlaced order) {
        }
    }

    static final class StrayBrace {
        @EventPattern("orders}")
        public void placed(OrderPlaced order) {
        }
    }

    static final class Nested {
        @EventPattern("${a${b}}.orders")
        public void placed(OrderPlaced order) {
        }
    }

    @Test
    void aMalformedPlaceholderIsRefusedSayingWhereItStands() {
        Map<Object, String> refused = Map.of(
                new Unclosed(), "@EventPattern('${env.orders') of method Unclosed.placed holds a '$' at index 0",
                new Empty(), "@EventPattern('${}.orders') of method Empty.placed holds a '$' at index 0",
                new DollarAlone(), "@EventPattern('$env.orders') of method DollarAlone.placed holds a '$' at index 0",
                new WithDefault(), "@EventPattern('${env:dev}.orders') of method WithDefault.placed holds a '$' at index 0",
                new StrayBrace(), "@EventPattern('orders}') of method StrayBrace.placed holds a '}' at index 6",
                new Nested(), "@EventPattern('${a${b}}.orders') of method Nested.placed holds a '$' at index 0");
        refused.forEach((service, start) -> {
            ConfigurationException e = assertThrows(ConfigurationException.class,
                    () -> bus.register("orders", service, values(Map.of("env", "prod", "a", "x", "b", "y"))));
            assertEquals(start + " that starts no placeholder ${name} (a name of letters, digits, '.', '_' and '-', with no"
                    + " default value): '$' and braces are no topic characters", e.getMessage());
        });
        assertEquals(List.of(), transport.registrations);
    }

    static final class DeadLetters {
        @EventPattern("*.${suffix}")
        public void all(Message message) {
        }
    }

    static final class LongTopic {
        @EventPattern("${env}.orders")
        public void placed(OrderPlaced order) {
        }
    }

    @Test
    void aResolvedPatternThatMatchesNoTopicIsRefusedNamingTheAnnotationAndWhatItResolvedTo() {
        ConfigurationException e = assertThrows(ConfigurationException.class,
                () -> bus.register("ops", new DeadLetters(), values(Map.of("suffix", "DLT"))));

        assertTrue(e.getMessage().startsWith("@EventPattern('*.${suffix}') of method DeadLetters.all, resolved to '*.DLT',"
                + " is refused: group 'ops' cannot subscribe to '*.DLT', a wildcard that matches no topic"), e.getMessage());
        assertEquals(List.of(), transport.registrations);
    }

    @Test
    void aResolvedTopicTooLongForItsDeadLetterTopicIsRefused() {
        String env = "e".repeat(TopicPattern.MAX_TOPIC_LENGTH);

        ConfigurationException e = assertThrows(ConfigurationException.class,
                () -> bus.register("orders", new LongTopic(), values(Map.of("env", env))));

        assertTrue(e.getMessage().startsWith("@EventPattern('${env}.orders') of method LongTopic.placed, resolved to '"
                + "e".repeat(64) + "...' (" + (env.length() + ".orders".length()) + " characters), is refused: group"
                + " 'orders' cannot subscribe to a topic over " + TopicPattern.MAX_TOPIC_LENGTH + " characters"), e.getMessage());
    }

    static final class UnregisteredHandler {
        @EventPattern("${env}.things")
        public void handle(Unregistered thing) {
        }
    }

    @Test
    void aMethodWhoseClassTheCodecCannotDecodeToIsRefusedOnItsResolvedTopic() {
        ConfigurationException e = assertThrows(ConfigurationException.class,
                () -> bus.register("things", new UnregisteredHandler(), values(Map.of("env", "prod"))));

        assertTrue(e.getMessage().startsWith("@EventPattern('${env}.things') of method UnregisteredHandler.handle, resolved"
                + " to 'prod.things', is refused: group 'things' cannot handle 'prod.things' as a class the bus's codec"
                + " cannot decode to"), e.getMessage());
    }

    /** Two methods whose patterns are apart as written but may meet once resolved. */
    static final class OrdersAndAudit {
        @EventPattern("${env}.orders")
        public void placed(Message order) {
        }

        @EventPattern("prod.*")
        public void audit(Message event) {
        }
    }

    @Test
    void methodsWhoseResolvedPatternsTakeTopicsInCommonAreRefusedAndApartOnesAreTaken() {
        ConfigurationException e = assertThrows(ConfigurationException.class,
                () -> bus.register("orders", new OrdersAndAudit(), values(Map.of("env", "prod"))));

        assertTrue(e.getMessage().matches("@EventPattern methods (placed|audit) \\(.*\\) and (placed|audit) \\(.*\\) take"
                + " topics in common, and under the one group 'orders' each would get only some of their messages.*"),
                e.getMessage());
        assertTrue(e.getMessage().contains("'${env}.orders' resolved to 'prod.orders'"), e.getMessage());
        assertTrue(e.getMessage().contains("('prod.*')"), e.getMessage());
        assertEquals(List.of(), transport.registrations);

        assertEquals(2, bus.register("orders", new OrdersAndAudit(), values(Map.of("env", "dev"))).size(),
                "dev.orders and prod.* take no topic in common");
    }

    @Test
    void aPatternWithoutPlaceholdersIsTakenAsWrittenWhateverValuesAreGivenAndTheValuesAreNotAsked() throws Exception {
        Literal service = new Literal();

        bus.register("orders", service, RegistrationOptions.builder().placeholders(name -> {
            throw new AssertionError("asked for " + name);
        }).build());

        assertEquals(1, transport.deliver(order("orders", "o-1")));
        assertEquals(List.of("placed o-1"), service.log);
    }

    @Test
    void placeholderValuesAreGivenOnceAndNotNull() {
        RegistrationOptions.Builder builder = RegistrationOptions.builder().placeholders(Map.of("env", "prod")::get);

        ConfigurationException twice = assertThrows(ConfigurationException.class,
                () -> builder.placeholders(Map.of("tenant", "acme")::get));
        ConfigurationException none = assertThrows(ConfigurationException.class,
                () -> RegistrationOptions.builder().placeholders(null));
        ConfigurationException noOptions = assertThrows(ConfigurationException.class,
                () -> bus.register("orders", new Literal(), null));

        assertEquals("placeholders(...) was given already: give one function that knows every placeholder's value",
                twice.getMessage());
        assertEquals("placeholder values must not be null", none.getMessage());
        assertEquals("registration options must not be null (group 'orders')", noOptions.getMessage());
    }
}
