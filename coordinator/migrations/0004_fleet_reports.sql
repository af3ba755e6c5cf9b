-- fleetcal coordinator schema v4: fleet reports and drift alerts.
-- Portable SQL: the same file migrates SQLite and PostgreSQL. Timestamps are milliseconds
-- since the Unix epoch. Rows written before this version are filled in by the store when it
-- opens (the result documents are parsed once, in Rust: portable SQL cannot read JSON).

-- A result's document is stored zstd-compressed in result_zstd (result_json is then '');
-- rows stored before hold the plain text in result_json and NULL here, and still read.
-- BYTEA is PostgreSQL's binary type; SQLite stores the blob as it is under any type name.
ALTER TABLE results ADD COLUMN result_zstd BYTEA;

-- One row per stored result, as the fleet reports read it (fleet::FleetRun).
CREATE TABLE fleet_runs (
    run_id               TEXT PRIMARY KEY REFERENCES results (run_id),
    campaign_id          TEXT NOT NULL,
    schedule             TEXT,
    agent_id             TEXT NOT NULL,
    hostname             TEXT NOT NULL,
    framework            TEXT NOT NULL,
    device               TEXT NOT NULL,
    fallback_from        TEXT,
    preset_id            TEXT NOT NULL,
    quick                BOOLEAN NOT NULL,
    started_at           BIGINT NOT NULL,   -- the result's metadata.started_at
    stored_at            BIGINT NOT NULL,
    cpu_model            TEXT,
    microarch            TEXT,
    cores                BIGINT,
    logical_cpus         BIGINT,
    memory_gb            BIGINT,
    gpu_model            TEXT,
    jetson_model         TEXT,
    power_mode           TEXT,
    blas                 TEXT,
    libtorch             TEXT,
    tool_version         TEXT,
    host_key             TEXT,
    env_key              TEXT,
    noise_floor_pct      DOUBLE PRECISION,
    bandwidth_gbps       DOUBLE PRECISION,
    bandwidth_efficiency DOUBLE PRECISION,
    anomalies            TEXT NOT NULL      -- JSON array of strings
);
CREATE INDEX fleet_runs_agent ON fleet_runs (agent_id, started_at);
CREATE INDEX fleet_runs_started ON fleet_runs (started_at);
CREATE INDEX fleet_runs_campaign ON fleet_runs (campaign_id);
CREATE INDEX fleet_runs_schedule ON fleet_runs (schedule, started_at);

-- A result's headline peak per precision (summary.peak_by_precision), in its order.
CREATE TABLE fleet_peaks (
    run_id     TEXT NOT NULL REFERENCES fleet_runs (run_id),
    idx        BIGINT NOT NULL,
    precision  TEXT NOT NULL,
    gops       DOUBLE PRECISION NOT NULL,
    operation  TEXT NOT NULL,
    size       BIGINT NOT NULL,
    efficiency DOUBLE PRECISION,
    PRIMARY KEY (run_id, idx)
);

-- result_records holds every column of fleet::FleetFigure.
ALTER TABLE result_records ADD COLUMN reason TEXT;
ALTER TABLE result_records ADD COLUMN median_gops DOUBLE PRECISION;
ALTER TABLE result_records ADD COLUMN median_gbps DOUBLE PRECISION;
ALTER TABLE result_records ADD COLUMN trials BIGINT NOT NULL DEFAULT 0;
ALTER TABLE result_records ADD COLUMN cv_pct DOUBLE PRECISION;
ALTER TABLE result_records ADD COLUMN throttled BOOLEAN NOT NULL DEFAULT FALSE;
-- Figures are read by run (the primary key), never by operation: the index of 0001 only
-- cost bytes on every record.
DROP INDEX result_records_op;

-- The agents' labels, one row per (agent, key), kept by upsert_agent (for --select k=v).
CREATE TABLE agent_labels (
    agent_id TEXT NOT NULL REFERENCES agents (agent_id),
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (agent_id, key)
);
CREATE INDEX agent_labels_pair ON agent_labels (key, value);

-- Drift alerts (fleet::AlertRecord). At most one live alert (suspected, open, acknowledged)
-- per (agent, framework, figure): a partial unique index, which both databases enforce.
CREATE TABLE alerts (
    id                  TEXT PRIMARY KEY,
    agent_id            TEXT NOT NULL REFERENCES agents (agent_id),
    hostname            TEXT NOT NULL,
    group_key           TEXT NOT NULL,
    framework           TEXT NOT NULL,
    figure              TEXT NOT NULL,
    baseline            DOUBLE PRECISION NOT NULL,
    current_value       DOUBLE PRECISION NOT NULL,
    change_pct          DOUBLE PRECISION NOT NULL,
    kind                TEXT NOT NULL,
    began_at            BIGINT NOT NULL,
    run_id              TEXT NOT NULL,
    confirm_campaign_id TEXT,
    state               TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    message             TEXT NOT NULL
);
CREATE UNIQUE INDEX alerts_live ON alerts (agent_id, framework, figure)
    WHERE state IN ('suspected', 'open', 'acknowledged');
CREATE INDEX alerts_state ON alerts (state, created_at);
