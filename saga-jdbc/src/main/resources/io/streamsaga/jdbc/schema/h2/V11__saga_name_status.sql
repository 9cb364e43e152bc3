-- StreamSaga schema version 11: the sagas counted per saga name and status from an index alone.
-- ss_saga_status_name (status, saga_name): a count per saga name of the statuses asked for (countBySagaAndStatus,
-- behind the gauge streamsaga_sagas{saga,status}) reads the entries of those statuses and takes the name from them,
-- not from each counted saga's row. (PostgreSQL's version 11 orders the columns the other way, for its planner.)
CREATE INDEX IF NOT EXISTS ss_saga_status_name ON ss_saga (status, saga_name);
