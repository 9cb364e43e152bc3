package io.streamsaga.samples.cqrs;

import io.streamsaga.cqrs.CommandResult;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

class CqrsOrdersSampleTest {

    @Test
    void commandsFeedTheProjectionAndQueriesReadTheDenormalisedModelThroughARebuild() {
        CqrsOrdersSample.Result result = CqrsOrdersSample.run();

        assertEquals(new CommandResult.Accepted<>("ord-1"), result.commandResults().get(0));
        CommandResult.Rejected<String> rejected = assertInstanceOf(CommandResult.Rejected.class, result.commandResults().get(3));
        assertEquals(2, rejected.violations().size());

        assertEquals(List.of("ord-1", "ord-3"), result.ordersOfU1().stream().map(CqrsOrdersSample.OrderView::orderId).toList());
        assertEquals("Nguyen An", result.ordersOfU1().get(0).userName());
        assertEquals(List.of(2, 2), result.sizesSeenDuringRebuild());
        assertEquals(2, result.versionAfterRebuild());
        assertEquals(3, result.rowsAfterRebuild());
    }
}
