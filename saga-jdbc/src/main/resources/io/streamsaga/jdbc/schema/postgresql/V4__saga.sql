-- StreamSaga schema version 4: saga instances and their transition history.
-- data: the saga data as JSON under data_type (a stable type id); steps: the step states as JSON.
CREATE TABLE ss_saga (
    saga_id             VARCHAR(200) PRIMARY KEY,
    saga_name           VARCHAR(200) NOT NULL,
    definition_version  INTEGER      NOT NULL,
    business_key        VARCHAR(500),
    data_type           VARCHAR(255) NOT NULL,
    data                BYTEA,
    status              VARCHAR(32)  NOT NULL,
    steps               BYTEA        NOT NULL,
    failure_step        VARCHAR(200),
    failure_class       VARCHAR(500),
    failure_message     VARCHAR(4000),
    comp_failure_step   VARCHAR(200),
    comp_failure_class  VARCHAR(500),
    comp_failure_message VARCHAR(4000),
    created_at          TIMESTAMP WITH TIME ZONE NOT NULL,
    updated_at          TIMESTAMP WITH TIME ZONE NOT NULL,
    version             BIGINT       NOT NULL
);
CREATE INDEX ss_saga_status ON ss_saga (status, created_at);
CREATE INDEX ss_saga_business_key ON ss_saga (business_key);
CREATE INDEX ss_saga_updated ON ss_saga (updated_at);

CREATE TABLE ss_saga_transition (
    seq      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    saga_id  VARCHAR(200) NOT NULL,
    version  BIGINT       NOT NULL,
    at       TIMESTAMP WITH TIME ZONE NOT NULL,
    type     VARCHAR(64)  NOT NULL,
    step     VARCHAR(200),
    attempt  INTEGER      NOT NULL,
    detail   VARCHAR(4000)
);
CREATE INDEX ss_saga_transition_saga ON ss_saga_transition (saga_id, seq);
