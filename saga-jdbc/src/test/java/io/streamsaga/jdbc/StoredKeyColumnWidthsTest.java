package io.streamsaga.jdbc;

import io.streamsaga.jdbc.testing.DatabaseExtension;
import io.streamsaga.jdbc.testing.TestDatabase;
import io.streamsaga.spi.StoredKeys;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The limits every store holds ids, keys and names to ({@link StoredKeys}' {@code MAX_*_LENGTH}, which the in-memory
 * stores enforce too) are the widths of the schema's columns: a migration that narrowed or widened one without the
 * constant would let the in-memory test kit take what production refuses, or refuse what it takes.
 */
abstract class StoredKeyColumnWidthsTest {
    @RegisterExtension
    final DatabaseExtension db = DatabaseExtension.of(kind());

    abstract TestDatabase.Kind kind();

    @Test
    void everyColumnHoldingAnIdKeyOrNameIsAsWideAsItsStoredKeysLimit() {
        JdbcSchema.of(db.database().dataSource()).migrate();
        Map<String, Integer> expected = new LinkedHashMap<>();
        expected.put("ss_saga.saga_id", StoredKeys.MAX_SAGA_ID_LENGTH);
        expected.put("ss_saga_transition.saga_id", StoredKeys.MAX_SAGA_ID_LENGTH);
        expected.put("ss_saga.saga_name", StoredKeys.MAX_SAGA_NAME_LENGTH);
        expected.put("ss_saga.business_key", StoredKeys.MAX_BUSINESS_KEY_LENGTH);
        expected.put("ss_saga.data_type", StoredKeys.MAX_DATA_TYPE_LENGTH);
        expected.put("ss_saga.failure_step", StoredKeys.MAX_STEP_NAME_LENGTH);
        expected.put("ss_saga.comp_failure_step", StoredKeys.MAX_STEP_NAME_LENGTH);
        expected.put("ss_saga_transition.step", StoredKeys.MAX_STEP_NAME_LENGTH);
        expected.put("ss_saga.failure_class", StoredKeys.MAX_FAILURE_CLASS_LENGTH);
        expected.put("ss_saga.comp_failure_class", StoredKeys.MAX_FAILURE_CLASS_LENGTH);
        expected.put("ss_saga.owner", StoredKeys.MAX_NODE_ID_LENGTH);
        expected.put("ss_saga_node.node_id", StoredKeys.MAX_NODE_ID_LENGTH);
        expected.put("ss_aggregation_group.aggregator", StoredKeys.MAX_AGGREGATOR_NAME_LENGTH);
        expected.put("ss_aggregation_part.aggregator", StoredKeys.MAX_AGGREGATOR_NAME_LENGTH);
        expected.put("ss_aggregation_group.group_key", StoredKeys.MAX_GROUP_KEY_LENGTH);
        expected.put("ss_aggregation_part.group_key", StoredKeys.MAX_GROUP_KEY_LENGTH);
        expected.put("ss_payload_holder.holder", StoredKeys.MAX_HOLDER_LENGTH);
        expected.put("ss_dedup.owner", StoredKeys.MAX_DEDUP_OWNER_LENGTH);
        Map<String, Integer> actual = new LinkedHashMap<>();
        for (String column : expected.keySet()) {
            String[] parts = column.split("\\.");
            actual.put(column, (int) db.database().queryLong("SELECT character_maximum_length FROM"
                    + " information_schema.columns WHERE table_schema = CURRENT_SCHEMA AND LOWER(table_name) = '"
                    + parts[0] + "' AND LOWER(column_name) = '" + parts[1] + "'"));
        }
        assertEquals(expected, actual);
    }
}
