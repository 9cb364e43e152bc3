package io.streamsaga.inmemory.internal;

import io.streamsaga.bus.RecordPosition;
import org.junit.jupiter.api.Test;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AppendedStageTest {

    @Test
    void behavesAsACompletedFutureOfThePosition() {
        AppendedStage stage = new AppendedStage("orders", 3, 41L);

        CompletableFuture<RecordPosition> future = stage.toCompletableFuture();
        assertTrue(future.isDone());
        assertEquals(new RecordPosition("orders", 3, 41L), future.join());
        assertEquals(42L, stage.thenApply(position -> position.offset() + 1).toCompletableFuture().join());
        AtomicReference<RecordPosition> seen = new AtomicReference<>();
        stage.whenComplete((position, error) -> seen.set(position));
        assertEquals(new RecordPosition("orders", 3, 41L), seen.get());
        assertEquals("ok", stage.thenCombine(CompletableFuture.completedFuture("ok"), (position, other) -> other)
                .toCompletableFuture().join());
    }

    @Test
    void buildsItsFutureOnceAndReusesIt() {
        AppendedStage stage = new AppendedStage("orders", 0, 0L);

        assertSame(stage.toCompletableFuture(), stage.toCompletableFuture());
    }
}
