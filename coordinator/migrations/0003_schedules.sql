-- fleetcal coordinator schema v3: cron schedules fire campaigns by themselves.
-- Portable SQL: the same file migrates SQLite and PostgreSQL. Timestamps are milliseconds
-- since the Unix epoch.

-- A schedule: its spec (cron, zone, the campaign settings, jitter, overlap, catch-up window)
-- as JSON, paused or active, and how far its firings are handled: every firing at or before
-- handled_until was fired, recorded missed, or passed while paused.
CREATE TABLE schedules (
    name          TEXT PRIMARY KEY,
    spec          TEXT NOT NULL,            -- JSON ScheduleSpec
    paused        BOOLEAN NOT NULL,
    created_at    BIGINT NOT NULL,
    handled_until BIGINT NOT NULL
);

-- One row per firing (schedule, scheduled time): the key is the claim. Whoever inserts it
-- creates the firing's campaign in the same transaction, so two coordinators on one database
-- never create two campaigns for one firing.
CREATE TABLE schedule_firings (
    schedule     TEXT NOT NULL REFERENCES schedules (name),
    scheduled_at BIGINT NOT NULL,
    outcome      TEXT NOT NULL,             -- fired | missed
    campaign_id  TEXT REFERENCES campaigns (id),
    message      TEXT NOT NULL,
    recorded_at  BIGINT NOT NULL,
    PRIMARY KEY (schedule, scheduled_at)
);

-- A campaign a schedule made names it and its firing; a run of one may wait for its jitter.
ALTER TABLE campaigns ADD COLUMN schedule TEXT;
ALTER TABLE campaigns ADD COLUMN scheduled_at BIGINT;
CREATE INDEX campaigns_created ON campaigns (created_at, id);
CREATE INDEX campaigns_schedule ON campaigns (schedule, created_at);
ALTER TABLE runs ADD COLUMN not_before BIGINT;
