-- fleetcal coordinator schema v8: agent ids quarantined as cloned boards (two agent processes
-- taking one id's directive stream from each other). A quarantined id gets no plans and its
-- uploads are refused until `fleetctl agents release` deletes its row.
CREATE TABLE quarantined_agents (
    agent_id TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    quarantined_at BIGINT NOT NULL
);
