-- fleetcal coordinator schema v10: enrollment requests made without a join token
-- (`fleetcal-agent run --request-approval`). A request waits as 'pending' until an operator
-- approves ('approved': the agent gets its certificate when it asks again with the same key)
-- or denies it ('denied': refused from then on). The key is kept as its SHA-256 fingerprint
-- only; how many may wait at once is bounded by the coordinator.
CREATE TABLE enrollment_requests (
    agent_id TEXT PRIMARY KEY,
    hostname TEXT NOT NULL,
    key_fingerprint TEXT NOT NULL,
    state TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    decided_at BIGINT
);
CREATE INDEX enrollment_requests_state ON enrollment_requests (state);
