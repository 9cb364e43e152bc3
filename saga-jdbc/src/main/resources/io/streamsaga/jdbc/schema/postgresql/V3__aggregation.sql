-- StreamSaga schema version 3: aggregation groups of the event aggregator.
-- parts holds the group's parts as one JSON document (UTF-8), written with the group in one statement.
CREATE TABLE ss_aggregation_group (
    aggregator  VARCHAR(200) NOT NULL,
    group_key   VARCHAR(500) NOT NULL,
    version     BIGINT       NOT NULL,
    state       VARCHAR(32)  NOT NULL,
    created_at  TIMESTAMP WITH TIME ZONE NOT NULL,
    deadline    TIMESTAMP WITH TIME ZONE,
    parts       BYTEA        NOT NULL,
    PRIMARY KEY (aggregator, group_key)
);
CREATE INDEX ss_aggregation_deadline ON ss_aggregation_group (aggregator, deadline);
