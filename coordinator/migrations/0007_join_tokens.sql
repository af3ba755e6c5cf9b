-- fleetcal coordinator schema v7: join tokens for agent enrollment (fleetctl token create).
-- Only a token's SHA-256 is kept (hex); the token itself is printed once and never stored.
-- A redemption takes one use, atomically, while the token has uses left and has not expired.
CREATE TABLE join_tokens (
    token_hash TEXT PRIMARY KEY,
    labels TEXT NOT NULL,
    uses_left BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Revoked agents (fleetctl agents revoke): refused on every call, never enrolled again.
CREATE TABLE revoked_agents (
    agent_id TEXT PRIMARY KEY,
    revoked_at BIGINT NOT NULL
);
