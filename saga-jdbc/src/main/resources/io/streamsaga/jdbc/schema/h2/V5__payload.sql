-- StreamSaga schema version 5: claim-check payloads (content-addressed) and their holders (message ids).
CREATE TABLE ss_payload (
    id         VARCHAR(128) PRIMARY KEY,
    content    BINARY LARGE OBJECT        NOT NULL,
    stored_at  TIMESTAMP WITH TIME ZONE NOT NULL
);
CREATE INDEX ss_payload_stored ON ss_payload (stored_at);

CREATE TABLE ss_payload_holder (
    id      VARCHAR(128) NOT NULL,
    holder  VARCHAR(200) NOT NULL,
    PRIMARY KEY (id, holder)
);
