package io.streamsaga.saga;

import io.streamsaga.retry.RetryPolicy;

/**
 * A trip whose two parallel bookings, hotel and flight, both refuse to cancel once the payment is declined: a saga that
 * needs attention for two failed compensations at once (run its parallel group on {@code Runnable::run} to have them
 * fail in one run), for the tests of an operator's skip of one of them.
 */
public final class TwoRefusedCancellations {
    private TwoRefusedCancellations() {
    }

    /** The trip saga, named {@code trip}, its data of {@code type} stored under the type id {@code dataType}. */
    public static <D> SagaDefinition<D> trip(Class<D> type, String dataType) {
        return SagaDefinition.builder("trip", type).dataType(dataType)
                .parallel(group -> {
                    group.step("hotel").action((d, ctx) -> d).compensation((d, ctx) -> {
                        throw new IllegalStateException("the hotel refuses to cancel");
                    }).compensationRetry(RetryPolicy.NONE);
                    group.step("flight").action((d, ctx) -> d).compensation((d, ctx) -> {
                        throw new IllegalStateException("the airline refuses to cancel");
                    }).compensationRetry(RetryPolicy.NONE);
                })
                .step("pay").action((d, ctx) -> {
                    throw new IllegalStateException("card declined");
                }).retry(RetryPolicy.NONE)
                .build();
    }
}
