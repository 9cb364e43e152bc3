-- StreamSaga schema version 7 (PostgreSQL 15+): saga ownership and wider claim-check holders.
-- ss_saga.owner: the node id of the orchestrator that last wrote the saga (null without ownership, and for the
-- sagas written before this version; adding a nullable column rewrites nothing). ss_saga_node: one heartbeat
-- row per live orchestrator with ownership. ss_payload_holder.holder: up to 500 characters, as the message ids a
-- holder is made of (version 6); widening a VARCHAR rewrites nothing.
ALTER TABLE ss_saga ADD COLUMN owner VARCHAR(200);
CREATE TABLE ss_saga_node (
    node_id       VARCHAR(200) PRIMARY KEY,
    heartbeat_at  TIMESTAMP WITH TIME ZONE NOT NULL
);
ALTER TABLE ss_payload_holder ALTER COLUMN holder TYPE VARCHAR(500);
