package io.streamsaga.inmemory.saga.testkit;

import io.streamsaga.saga.SagaStatus;

import java.util.List;

/**
 * What a crash exploration ran and found. Immutable.
 *
 * @param sagaName  the explored saga
 * @param scenarios every scenario with its final status and violations
 */
public record ExplorationReport(String sagaName, List<Scenario> scenarios) {

    public ExplorationReport {
        scenarios = List.copyOf(scenarios);
    }

    /** Every violation of every scenario. */
    public List<String> violations() {
        return scenarios.stream().flatMap(s -> s.violations().stream()).toList();
    }

    /** How many scenarios included a simulated crash followed by recovery. */
    public long crashScenarios() {
        return scenarios.stream().filter(Scenario::crashedAndRecovered).count();
    }

    /**
     * One explored run.
     *
     * @param name                what was injected
     * @param finalStatus         the saga's final status
     * @param crashedAndRecovered whether a crash was simulated and recovered from
     * @param violations          the invariants it broke
     */
    public record Scenario(String name, SagaStatus finalStatus, boolean crashedAndRecovered, List<String> violations) {
        public Scenario {
            violations = List.copyOf(violations);
        }
    }
}
