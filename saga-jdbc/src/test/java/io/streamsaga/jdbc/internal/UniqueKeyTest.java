package io.streamsaga.jdbc.internal;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link Sql.UniqueKey} tells a unique violation of its key by table and column in the messages of PostgreSQL's and
 * H2's drivers, whatever the key is named, and no other key's for it (as {@code RenamedKeysTest} shows on the
 * databases, where a key of several columns was not staged).
 */
class UniqueKeyTest {
    private final Sql.UniqueKey messageId = new Sql.UniqueKey("ss_outbox", "message_id", "ss_outbox_message_id_key");

    @Test
    void aViolationOfTheColumnAloneIsTheKeysUnderAnyNameAndAKeyOfSeveralColumnsOrAnotherColumnIsNot() {
        assertTrue(messageId.violatedBy("23505", "ERROR: duplicate key value violates unique constraint \"uq_by_dba\"\n"
                + "  Detail: Key (message_id)=(m-1) already exists."));
        assertTrue(messageId.violatedBy("23505", "FEHLER: doppelter Schlüsselwert verletzt Unique-Constraint »uq«\n"
                + "  Detail: Schlüssel »(message_id)=(m-1)« existiert bereits."), "the server's language");
        assertTrue(messageId.violatedBy("23505", "Unique index or primary key violation: \"PUBLIC.UQ_BY_DBA_INDEX_8 ON"
                + " PUBLIC.SS_OUTBOX(MESSAGE_ID NULLS FIRST) VALUES ( /* 1 */ 'm-1' )\""));
        assertTrue(messageId.violatedBy("23505", "duplicate key value violates unique constraint"
                + " \"ss_outbox_message_id_key\""), "PostgreSQL without its detail, the default name");

        assertFalse(messageId.violatedBy("23505", "ERROR: duplicate key value violates unique constraint \"app_key\"\n"
                + "  Detail: Key (message_id, topic)=(m-1, t) already exists."));
        assertFalse(messageId.violatedBy("23505", "Unique index or primary key violation: \"PUBLIC.APP_KEY_INDEX_9 ON"
                + " PUBLIC.SS_OUTBOX(MESSAGE_ID NULLS FIRST, TOPIC NULLS FIRST) VALUES ( /* 1 */ 'm-1', 't' )\""));
        assertFalse(messageId.violatedBy("23505", "Unique index or primary key violation: \"PUBLIC.APP_INDEX_3 ON"
                + " PUBLIC.SS_OUTBOX(MESSAGE_ID_HASH NULLS FIRST) VALUES ( /* 1 */ 7 )\""));
        assertFalse(messageId.violatedBy("23505", "ERROR: duplicate key value violates unique constraint \"ss_outbox_pkey\"\n"
                + "  Detail: Key (seq)=(5) already exists."));
        assertFalse(messageId.violatedBy("23503", "Detail: Key (message_id)=(m-1) is not present"), "not a unique violation");
    }

    @Test
    void anotherKeysViolationWhoseValueHoldsThisKeysColumnTableOrNameIsNotThisKeys() {
        // The key's description comes before the values in both databases' messages: only that part tells the key.
        // Searched in the whole message, a value (a business key, an outbox message's key) holding the text of this
        // key's description was taken for its violation.
        for (String value : new String[]{"x(message_id)=(m-1", "x ss_outbox(message_id) y", "ss_outbox_message_id_key"}) {
            assertFalse(messageId.violatedBy("23505", "ERROR: duplicate key value violates unique constraint \"app_key\"\n"
                    + "  Detail: Key (key)=(" + value + ") already exists."), value);
            assertFalse(messageId.violatedBy("23505", "Unique index or primary key violation: \"PUBLIC.APP_KEY_INDEX_9 ON"
                    + " PUBLIC.SS_OUTBOX(KEY NULLS FIRST) VALUES ( /* 1 */ '" + value + "' )\"; SQL statement:\n"
                    + "INSERT INTO ss_outbox (message_id, key) VALUES (?, ?) [23505-232]"), value);
        }
        assertFalse(messageId.violatedBy("23505", "duplicate key value violates unique constraint"
                + " \"ss_outbox_message_id_key_old\""), "another name that begins with the default one");
        assertTrue(messageId.violatedBy("23505", "ERROR: duplicate key value violates unique constraint \"uq\"\n"
                + "  Detail: Key (message_id)=(x(seq)=(1) already exists."), "the value holding another key's text");
    }
}
