package io.streamsaga.inmemory.saga.testkit;

import io.streamsaga.saga.spi.NodeRegistry;
import io.streamsaga.saga.spi.SagaStore;
import org.junit.jupiter.api.Test;

import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.Arrays;
import java.util.Set;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * {@link CrashingSagaStore} is the applications' (docs/sagas.md, samples: a store that dies at its n-th write):
 * its public surface is its constructors, the {@link SagaStore} and {@link NodeRegistry} methods (a node of a cluster
 * with saga ownership dies mid-saga over it), {@code crashed()} and {@code writes()}.
 * How the kit tells the crashes its store threw from an application's {@link SimulatedCrash} is the kit's own.
 */
class CrashingSagaStoreApiTest {

    @Test
    void itsPublicMethodsBeyondTheStoresAndTheNodeRegistrysAreCrashedAndWritesOnly() {
        Set<String> storeMethods = java.util.stream.Stream.of(SagaStore.class, NodeRegistry.class)
                .flatMap(type -> Arrays.stream(type.getMethods())).map(Method::getName)
                .collect(Collectors.toSet());

        Set<String> ownPublic = Arrays.stream(CrashingSagaStore.class.getDeclaredMethods())
                .filter(m -> Modifier.isPublic(m.getModifiers()) && !m.isSynthetic())
                .map(Method::getName)
                .filter(name -> !storeMethods.contains(name))
                .collect(Collectors.toSet());

        assertEquals(Set.of("crashed", "writes"), ownPublic);
    }
}
