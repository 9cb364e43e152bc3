-- StreamSaga schema version 6: message ids of up to 500 characters in the outbox and the inbox.
-- The ids JdbcSagaStore's messages derive from a saga id (up to 200) and a step name (up to 200), such as
-- <saga id>/<step>/compensation/<attempt>, did not fit the 200 of version 1.
ALTER TABLE ss_outbox ALTER COLUMN message_id SET DATA TYPE VARCHAR(500);
ALTER TABLE ss_inbox ALTER COLUMN message_id SET DATA TYPE VARCHAR(500);
