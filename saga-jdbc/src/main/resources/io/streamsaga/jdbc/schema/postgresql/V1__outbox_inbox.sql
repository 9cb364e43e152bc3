-- StreamSaga schema version 1 (PostgreSQL 15+): transactional outbox and consumer inbox.
CREATE TABLE ss_outbox (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id   VARCHAR(200)  NOT NULL UNIQUE,
    topic        VARCHAR(255)  NOT NULL,
    message_key  VARCHAR(1000),
    event_type   VARCHAR(255)  NOT NULL,
    event_version INTEGER      NOT NULL,
    payload      BYTEA,
    headers      VARCHAR       NOT NULL,
    created_at   TIMESTAMP WITH TIME ZONE NOT NULL,
    status       VARCHAR(16)   NOT NULL,
    attempts     INTEGER       NOT NULL DEFAULT 0,
    last_error   VARCHAR(2000),
    sent_at      TIMESTAMP WITH TIME ZONE
);
-- the relay reads only pending rows, in sequence order
CREATE INDEX ss_outbox_pending ON ss_outbox (seq) WHERE status = 'PENDING';
CREATE INDEX ss_outbox_sent ON ss_outbox (sent_at) WHERE status = 'SENT';

-- one row per relay name; the relay locks it so that one node publishes at a time, in order
CREATE TABLE ss_outbox_lock (
    name VARCHAR(100) PRIMARY KEY
);

CREATE TABLE ss_inbox (
    consumer_group VARCHAR(255) NOT NULL,
    message_id     VARCHAR(200) NOT NULL,
    processed_at   TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (consumer_group, message_id)
);
CREATE INDEX ss_inbox_processed ON ss_inbox (processed_at);
