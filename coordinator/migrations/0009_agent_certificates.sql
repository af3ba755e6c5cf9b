-- fleetcal coordinator schema v9: when each agent's client certificate expires. Written when an
-- agent registers with a certificate (its not_after) and when the coordinator renews one
-- (`AgentService.Renew`); `fleetctl agents` shows it and which expire soon. Times are Unix
-- milliseconds, as everywhere.
CREATE TABLE agent_certificates (
    agent_id TEXT PRIMARY KEY,
    not_after BIGINT NOT NULL,
    seen_at BIGINT NOT NULL
);
