package io.streamsaga.jdbc;

import io.streamsaga.ConfigurationException;
import org.h2.jdbcx.JdbcDataSource;
import org.junit.jupiter.api.Test;

import java.sql.Connection;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class JdbcTransactionsTest {
    @Test
    void anIsolationLevelNoConnectionKnowsIsRefusedWhenSetNotAtTheFirstTransaction() {
        JdbcTransactions tx = new JdbcTransactions(new JdbcDataSource());
        for (int level : new int[] {Connection.TRANSACTION_NONE, 3, -1, 42}) {
            ConfigurationException e = assertThrows(ConfigurationException.class, () -> tx.withIsolation(level));
            assertTrue(e.getMessage().contains("but was " + level), e.getMessage());
        }
        assertDoesNotThrow(() -> tx.withIsolation(Connection.TRANSACTION_SERIALIZABLE));
    }
}
