package io.streamsaga.cqrs;

import io.streamsaga.ConfigurationException;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CommandAndQueryBusTest {
    record CreateOrder(String userId, long amount) implements Command<String> {
    }

    record GetOrder(String orderId) implements Query<Long> {
    }

    private final Map<String, Long> store = new ConcurrentHashMap<>();

    private final CommandHandler<CreateOrder, String> createOrder = new CommandHandler<>() {
        @Override
        public List<Violation> validate(CreateOrder command) {
            List<Violation> violations = new ArrayList<>();
            if (command.userId() == null || command.userId().isBlank()) {
                violations.add(Violation.of("userId", "must not be blank, but was '" + command.userId() + "'"));
            }
            if (command.amount() <= 0) {
                violations.add(Violation.of("amount", "must be positive, but was " + command.amount()));
            }
            return violations;
        }

        @Override
        public String execute(CreateOrder command) {
            if (command.userId().equals("broken")) {
                throw new IllegalStateException("database down");
            }
            String id = "o-" + (store.size() + 1);
            store.put(id, command.amount());
            return id;
        }
    };

    @Test
    void validCommandIsExecutedAndItsResultReturned() {
        CommandBus bus = new CommandBus().register(CreateOrder.class, createOrder);
        CommandResult<String> result = bus.send(new CreateOrder("u-1", 250));
        assertEquals(new CommandResult.Accepted<>("o-1"), result);
        assertEquals(250L, store.get("o-1"));
    }

    @Test
    void invalidCommandIsRejectedWithEveryViolationAndNothingExecutes() {
        CommandBus bus = new CommandBus().register(CreateOrder.class, createOrder);
        CommandResult<String> result = bus.send(new CreateOrder("", -5));
        CommandResult.Rejected<String> rejected = assertInstanceOf(CommandResult.Rejected.class, result);
        assertEquals(List.of("userId", "amount"), rejected.violations().stream().map(Violation::field).toList());
        assertTrue(rejected.violations().get(1).message().contains("-5"));
        assertTrue(store.isEmpty());
    }

    @Test
    void handlerFailureIsReturnedAsFailedResult() {
        CommandBus bus = new CommandBus().register(CreateOrder.class, createOrder);
        CommandResult<String> result = bus.send(new CreateOrder("broken", 1));
        CommandResult.Failed<String> failed = assertInstanceOf(CommandResult.Failed.class, result);
        assertEquals("database down", failed.error().getMessage());
        String described = result instanceof CommandResult.Failed<String> f ? "failed " + f.error().getMessage() : "other";
        assertEquals("failed database down", described);
    }

    @Test
    void aValidationThatThrowsIsReturnedAsFailedResultAndNothingExecutes() {
        List<CreateOrder> executed = new ArrayList<>();
        CommandBus bus = new CommandBus().register(CreateOrder.class, new CommandHandler<>() {
            @Override
            public List<Violation> validate(CreateOrder command) {
                throw new IllegalStateException("customer lookup down");
            }

            @Override
            public String execute(CreateOrder command) {
                executed.add(command);
                return "o-1";
            }
        });
        CommandResult<String> result = bus.send(new CreateOrder("u-1", 1));
        CommandResult.Failed<String> failed = assertInstanceOf(CommandResult.Failed.class, result);
        assertEquals("customer lookup down", failed.error().getMessage());
        assertTrue(executed.isEmpty());
    }

    @Test
    void anAssertionErrorOrAStackOverflowErrorOfAHandlerIsAFailedResultAndTheJvmsOwnErrorsGoThrough() {
        // A handler's AssertionError or StackOverflowError went out of send() to the caller, where the event bus
        // retries and dead-letters them as handler failures and the strangler records them as the new side's.
        for (Error error : List.of(new AssertionError("invariant broken"), new StackOverflowError())) {
            CommandBus bus = new CommandBus().register(CreateOrder.class, failingWith(error, false));
            CommandResult.Failed<String> failed = assertInstanceOf(CommandResult.Failed.class,
                    bus.send(new CreateOrder("u-1", 1)));
            assertSame(error, failed.error());
            CommandBus validating = new CommandBus().register(CreateOrder.class, failingWith(error, true));
            assertSame(error, assertInstanceOf(CommandResult.Failed.class, validating.send(new CreateOrder("u-1", 1))).error());
        }
        // What is not the command's fault goes through, as the bus lets it through to the transport.
        OutOfMemoryError outOfMemory = new OutOfMemoryError("simulated");
        CommandBus bus = new CommandBus().register(CreateOrder.class, failingWith(outOfMemory, false));
        assertSame(outOfMemory, assertThrows(OutOfMemoryError.class, () -> bus.send(new CreateOrder("u-1", 1))));
        NoClassDefFoundError linkage = new NoClassDefFoundError("com/example/Missing");
        CommandBus linking = new CommandBus().register(CreateOrder.class, failingWith(linkage, false));
        assertSame(linkage, assertThrows(NoClassDefFoundError.class, () -> linking.send(new CreateOrder("u-1", 1))));
    }

    private static CommandHandler<CreateOrder, String> failingWith(Error error, boolean inValidation) {
        return new CommandHandler<>() {
            @Override
            public List<Violation> validate(CreateOrder command) {
                if (inValidation) {
                    throw error;
                }
                return List.of();
            }

            @Override
            public String execute(CreateOrder command) {
                throw error;
            }
        };
    }

    @Test
    void secondHandlerForACommandTypeIsRejected() {
        CommandBus bus = new CommandBus().register(CreateOrder.class, createOrder);
        assertThrows(ConfigurationException.class, () -> bus.register(CreateOrder.class, createOrder));
    }

    @Test
    void commandOrQueryWithoutHandlerIsATypedError() {
        MissingHandlerException error = assertThrows(MissingHandlerException.class, () -> new CommandBus().send(new CreateOrder("u", 1)));
        assertEquals(CreateOrder.class, error.requestType());
        assertThrows(MissingHandlerException.class, () -> new QueryBus().ask(new GetOrder("o-1")));
    }

    @Test
    void queryIsAnsweredByItsOneHandler() {
        store.put("o-9", 42L);
        QueryBus queries = new QueryBus().register(GetOrder.class, q -> store.get(q.orderId()));
        assertEquals(42L, queries.ask(new GetOrder("o-9")));
        assertThrows(ConfigurationException.class, () -> queries.register(GetOrder.class, q -> 0L));
    }

    @Test
    void whatAQueryHandlerThrowsGoesToTheCallerUnchangedAnExceptionAndAnAssertionErrorAlike() {
        // ask() returns the answer itself, with no result to carry a failure: what the handler throws is the caller's,
        // an exception, an AssertionError or a StackOverflowError (the command bus's Failed results) as the JVM's own
        // errors, so the query bus treats a handler's bug as its exception, as the command bus now does.
        List<Throwable> thrown = List.of(new IllegalStateException("read model not ready"),
                new AssertionError("invariant broken"), new StackOverflowError(), new OutOfMemoryError("simulated"));
        for (Throwable error : thrown) {
            QueryBus queries = new QueryBus().register(GetOrder.class, q -> {
                if (error instanceof RuntimeException e) {
                    throw e;
                }
                throw (Error) error;
            });
            assertSame(error, assertThrows(Throwable.class, () -> queries.ask(new GetOrder("o-1"))));
        }
    }
}
