-- StreamSaga schema version 2: deduplication store (idempotent consumer and producer).
-- A key is claimed (owner + lease_until), or done (done_at + done_seq); absent keys have no row.
CREATE TABLE ss_dedup (
    store_name   VARCHAR(100) NOT NULL,
    dedup_key    VARCHAR(500) NOT NULL,
    owner        VARCHAR(200),
    lease_until  TIMESTAMP WITH TIME ZONE,
    done_at      TIMESTAMP WITH TIME ZONE,
    done_seq     BIGINT,
    version      BIGINT       NOT NULL,
    PRIMARY KEY (store_name, dedup_key)
);
CREATE INDEX ss_dedup_done_at ON ss_dedup (store_name, done_at);
CREATE INDEX ss_dedup_done_seq ON ss_dedup (store_name, done_seq);

-- per store: how many keys were completed so far; keys whose done_seq falls more than max_entries
-- behind it count as evicted at once and are deleted later in bounded batches
CREATE TABLE ss_dedup_store (
    store_name  VARCHAR(100) PRIMARY KEY,
    done_count  BIGINT NOT NULL
);
