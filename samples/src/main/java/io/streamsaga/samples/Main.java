package io.streamsaga.samples;

import io.streamsaga.samples.microservices.EventDrivenMicroservicesSample;
import io.streamsaga.samples.saga.OrderSagaSample;

/**
 * The demo that {@code mvn -q -pl samples -am compile exec:java} runs, on the in-memory default: the
 * source's event-driven microservices, then its OrderSaga twice (the happy path, then a declined payment
 * compensated in reverse order).
 */
public final class Main {
    private Main() {
    }

    public static void main(String[] args) {
        System.out.println("StreamSaga demo 1/2: event-driven microservices on the in-memory bus");
        EventDrivenMicroservicesSample.main(args);
        System.out.println();
        System.out.println("StreamSaga demo 2/2: the orchestrated OrderSaga, happy path then payment declined");
        OrderSagaSample.main(new String[0]);
    }
}
