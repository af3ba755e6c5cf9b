-- fleetcal coordinator schema v11: slimmer figure rows (issue 12's stored bytes per result).
-- Portable SQL: the same file migrates SQLite and PostgreSQL.

-- Every fleet_runs row gets an integer key, which its figures are keyed by instead of the
-- 36-character run id repeated on each of ~164 rows and in their primary key's index.
-- Keys are handed out by the store from store_counters ('run_key'), in the transaction that
-- inserts the run's rows (on PostgreSQL the counter row's lock orders concurrent writers).
CREATE TABLE store_counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
ALTER TABLE fleet_runs ADD COLUMN run_key BIGINT NOT NULL DEFAULT 0;
UPDATE fleet_runs SET run_key = k.n
    FROM (SELECT run_id, ROW_NUMBER() OVER (ORDER BY run_id) AS n FROM fleet_runs) k
    WHERE k.run_id = fleet_runs.run_id;
INSERT INTO store_counters (name, value)
    SELECT 'run_key', COALESCE(MAX(run_key), 0) FROM fleet_runs;
CREATE UNIQUE INDEX fleet_runs_key ON fleet_runs (run_key);

-- fleet::FleetFigure, one row per record, by run key (result_records by run id before).
CREATE TABLE fleet_figures (
    run_key            BIGINT NOT NULL REFERENCES fleet_runs (run_key),
    idx                BIGINT NOT NULL,
    operation          TEXT NOT NULL,
    precision          TEXT NOT NULL,
    size               BIGINT NOT NULL,
    status             TEXT NOT NULL,
    reason             TEXT,
    best_gops          DOUBLE PRECISION,
    median_gops        DOUBLE PRECISION,
    best_gbps          DOUBLE PRECISION,
    median_gbps        DOUBLE PRECISION,
    efficiency         DOUBLE PRECISION,
    trials             BIGINT NOT NULL,
    cv_pct             DOUBLE PRECISION,
    above_theoretical  BOOLEAN NOT NULL,
    noisy              BOOLEAN NOT NULL,
    throttled          BOOLEAN NOT NULL,
    in_cache           BOOLEAN NOT NULL,
    bandwidth_eligible BOOLEAN NOT NULL,
    PRIMARY KEY (run_key, idx)
);
-- The figures of results that have fleet rows; any other (a database written before 0004
-- whose fleet rows are not filled in yet) are derived again from the document when the
-- store opens, as before.
INSERT INTO fleet_figures (run_key, idx, operation, precision, size, status, reason,
        best_gops, median_gops, best_gbps, median_gbps, efficiency, trials, cv_pct,
        above_theoretical, noisy, throttled, in_cache, bandwidth_eligible)
    SELECT r.run_key, f.idx, f.operation, f.precision, f.size, f.status, f.reason,
        f.best_gops, f.median_gops, f.best_gbps, f.median_gbps, f.efficiency, f.trials,
        f.cv_pct, f.above_theoretical, f.noisy, f.throttled, f.in_cache, f.bandwidth_eligible
    FROM result_records f JOIN fleet_runs r ON r.run_id = f.run_id;
DROP TABLE result_records;
