package io.streamsaga.samples;

import io.streamsaga.samples.microservices.EventDrivenMicroservicesSample;

/**
 * The demo that {@code mvn -q -pl samples -am compile exec:java} runs: the source's event-driven
 * microservices on the in-memory bus.
 */
public final class Main {
    private Main() {
    }

    public static void main(String[] args) {
        System.out.println("StreamSaga demo: event-driven microservices on the in-memory bus");
        EventDrivenMicroservicesSample.main(args);
    }
}
