-- StreamSaga schema version 9: what each node of saga ownership can run, advertised with its heartbeat.
-- ss_saga_node.definitions: the saga definition versions the node has registered, as JSON ({"pay-saga":[1,2]}),
-- written with each heartbeat; null for a node of an earlier release (it advertises nothing), which the start guard
-- takes as unknown. A nullable column: the earlier release's heartbeat, which does not name it, still works.
ALTER TABLE ss_saga_node ADD COLUMN definitions CHARACTER VARYING;
