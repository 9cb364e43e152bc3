-- StreamSaga schema version 10: the sagas of a business key in the order a page of them is read.
-- ss_saga_business_key_created (business_key, created_at, saga_id): a page of a key (findByBusinessKey paged) is read
-- in its keyset order (created_at, saga_id) from it and stops at its limit, rather than every saga of the key after
-- the page's start read and sorted. It serves every query the index of version 4 on (business_key) alone served, which
-- it replaces (one index less to write with each saga).
CREATE INDEX IF NOT EXISTS ss_saga_business_key_created ON ss_saga (business_key, created_at, saga_id);
DROP INDEX IF EXISTS ss_saga_business_key;
