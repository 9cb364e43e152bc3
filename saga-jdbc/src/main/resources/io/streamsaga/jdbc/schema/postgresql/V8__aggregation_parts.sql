-- StreamSaga schema version 8: the parts of an aggregation group, one row each, so that adding a part to a group
-- writes that part only (with version 3 a group's parts were one JSON document, rewritten whole for each part).
-- seq numbers a group's parts in arrival order. ss_aggregation_group.parts keeps the parts of a group stored before
-- this version (a JSON array, moved to rows by the group's next write) and, for the others, a mark that is no array
-- (so that a node of an earlier version finds such a group unreadable rather than read it without its rows).
CREATE TABLE ss_aggregation_part (
    aggregator  VARCHAR(200) NOT NULL,
    group_key   VARCHAR(500) NOT NULL,
    seq         INTEGER      NOT NULL,
    part        BYTEA        NOT NULL,
    PRIMARY KEY (aggregator, group_key, seq)
);
