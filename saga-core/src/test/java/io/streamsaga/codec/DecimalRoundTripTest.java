package io.streamsaga.codec;

import com.fasterxml.jackson.databind.JsonNode;
import io.streamsaga.message.Message;
import org.junit.jupiter.api.Test;

import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Decimal amounts keep every digit and their scale, whichever path the codec takes to bind them. */
class DecimalRoundTripTest {
    record PaymentV1(String paymentId, BigDecimal amount) {
    }

    record PaymentV2(String paymentId, BigDecimal amount, String currency) {
    }

    private static final BigDecimal PRECISE = new BigDecimal("12345678901234567.890123456789");
    private static final BigDecimal SCALED = new BigDecimal("10.50");

    private static TypeRegistry registry() {
        return TypeRegistry.builder()
                .register("payment", 2, PaymentV2.class)
                .upcaster("payment", 1, v1 -> v1.put("currency", "EUR"))
                .build();
    }

    private static Message bytes(int version, String json) {
        return Message.builder("payments").key("p-1").type("payment").version(version)
                .payload(json.getBytes(StandardCharsets.UTF_8)).build();
    }

    @Test
    void upcastPayloadKeepsEveryDigitAndTheScaleOfADecimal() {
        JsonEventCodec codec = new JsonEventCodec(registry());
        PaymentV2 precise = codec.decode(bytes(1, "{\"paymentId\":\"p-1\",\"amount\":" + PRECISE + "}"), PaymentV2.class);
        assertEquals(PRECISE, precise.amount());
        PaymentV2 scaled = codec.decode(bytes(1, "{\"paymentId\":\"p-1\",\"amount\":" + SCALED + "}"), PaymentV2.class);
        assertEquals(SCALED, scaled.amount());
    }

    @Test
    void jsonTreeHandlerSeesEveryDigitOfAnUpcastPayload() {
        JsonEventCodec codec = new JsonEventCodec(registry());
        JsonNode tree = codec.decode(bytes(1, "{\"paymentId\":\"p-1\",\"amount\":" + PRECISE + "}"), JsonNode.class);
        assertEquals(PRECISE, tree.get("amount").decimalValue());
        JsonNode current = codec.decode(bytes(2, "{\"paymentId\":\"p-1\",\"amount\":" + SCALED + "}"), JsonNode.class);
        assertEquals(SCALED, current.get("amount").decimalValue());
    }

    @Test
    void objectPayloadRoundTripsThroughTheCodec() {
        JsonEventCodec codec = new JsonEventCodec(registry());
        PaymentV2 sent = new PaymentV2("p-1", PRECISE, "EUR");
        Message wire = Message.builder("payments").key("p-1").type("payment").version(2)
                .payload(codec.encode(sent)).build();
        assertEquals(sent, codec.decode(wire, PaymentV2.class));
        Message older = Message.builder("payments").key("p-1").type("payment").version(1)
                .payload(codec.encode(new PaymentV1("p-1", SCALED))).build();
        assertEquals(new PaymentV2("p-1", SCALED, "EUR"), codec.decode(older, PaymentV2.class));
    }

    @Test
    void olderEventObjectHandedOverInMemoryIsUpcastWithItsDecimalsExact() {
        JsonEventCodec codec = new JsonEventCodec(TypeRegistry.builder()
                .register("payment", 1, PaymentV1.class)
                .register("payment", 2, PaymentV2.class)
                .upcaster("payment", 1, v1 -> v1.put("currency", "EUR"))
                .build());
        BigDecimal amount = new BigDecimal("12345678901234567.890123456789000");
        Message inMemory = Message.builder("payments").key("p-1").type("payment").version(1)
                .payload(new PaymentV1("p-1", amount)).build();
        assertEquals(new PaymentV2("p-1", amount, "EUR"), codec.decode(inMemory, PaymentV2.class));
        assertEquals(amount, codec.decode(inMemory, JsonNode.class).get("amount").decimalValue());
    }
}
