-- fleetcal coordinator schema v1. Portable SQL: the same file migrates SQLite and PostgreSQL.
-- Timestamps are milliseconds since the Unix epoch.

CREATE TABLE agents (
    agent_id      TEXT PRIMARY KEY,
    hostname      TEXT NOT NULL,
    labels        TEXT NOT NULL,            -- JSON object
    preset        TEXT,
    capabilities  TEXT NOT NULL,            -- JSON object
    agent_version TEXT NOT NULL,
    registered_at BIGINT NOT NULL,
    last_seen     BIGINT NOT NULL
);

CREATE TABLE campaigns (
    id         TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    deadline   BIGINT NOT NULL,
    spec       TEXT NOT NULL                -- JSON CampaignSpec
);

CREATE TABLE runs (
    run_id      TEXT PRIMARY KEY,
    campaign_id TEXT NOT NULL REFERENCES campaigns (id),
    agent_id    TEXT NOT NULL REFERENCES agents (agent_id),
    hostname    TEXT NOT NULL,
    preset_id   TEXT NOT NULL,
    framework   TEXT NOT NULL,
    device      TEXT NOT NULL,
    state       TEXT NOT NULL,
    fraction    DOUBLE PRECISION NOT NULL,
    message     TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    started_at  BIGINT,
    finished_at BIGINT
);
CREATE INDEX runs_campaign ON runs (campaign_id, seq);
CREATE INDEX runs_state ON runs (state);

CREATE TABLE results (
    run_id      TEXT PRIMARY KEY REFERENCES runs (run_id),
    agent_id    TEXT NOT NULL REFERENCES agents (agent_id),
    stored_at   BIGINT NOT NULL,
    result_json TEXT NOT NULL
);

CREATE TABLE result_records (
    run_id             TEXT NOT NULL REFERENCES results (run_id),
    idx                BIGINT NOT NULL,
    operation          TEXT NOT NULL,
    precision          TEXT NOT NULL,
    size               BIGINT NOT NULL,
    status             TEXT NOT NULL,
    best_gops          DOUBLE PRECISION,
    best_gbps          DOUBLE PRECISION,
    efficiency         DOUBLE PRECISION,
    above_theoretical  BOOLEAN NOT NULL,
    noisy              BOOLEAN NOT NULL,
    in_cache           BOOLEAN NOT NULL,
    bandwidth_eligible BOOLEAN NOT NULL,
    PRIMARY KEY (run_id, idx)
);
CREATE INDEX result_records_op ON result_records (operation, precision);
