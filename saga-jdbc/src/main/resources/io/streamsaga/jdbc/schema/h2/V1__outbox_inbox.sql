-- StreamSaga schema version 1 (H2 2.x, PostgreSQL mode): transactional outbox and consumer inbox.
CREATE TABLE ss_outbox (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id   VARCHAR(200)  NOT NULL UNIQUE,
    topic        VARCHAR(255)  NOT NULL,
    message_key  VARCHAR(1000),
    event_type   VARCHAR(255)  NOT NULL,
    event_version INTEGER      NOT NULL,
    payload      VARBINARY,
    headers      VARCHAR       NOT NULL,
    created_at   TIMESTAMP WITH TIME ZONE NOT NULL,
    status       VARCHAR(16)   NOT NULL,
    attempts     INTEGER       NOT NULL DEFAULT 0,
    last_error   VARCHAR(2000),
    sent_at      TIMESTAMP WITH TIME ZONE
);
CREATE INDEX ss_outbox_status ON ss_outbox (status, seq);
CREATE INDEX ss_outbox_sent ON ss_outbox (sent_at);

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
