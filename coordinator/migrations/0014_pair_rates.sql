-- fleetcal coordinator schema v14: the compare report reads no result document (issue 12's
-- report latency: its 2,000 documents of a night of 1,000 boards were ~70 % of its time).
-- Portable SQL: the same file migrates SQLite and PostgreSQL.
--
-- `fleet_rates.rates` (store/packed.rs): every other measured record of a result with the
-- two rates the compare report reads (best and median), beside the headline records
-- (`summary`) and the roofline points (`points`): ~2 KB a quick result. A table of its own,
-- read only by the compare report: in `fleet_runs` it made each row twice as large, and
-- the drift report, which reads every row of a month, read twice the pages.
CREATE TABLE fleet_rates (
    run_id TEXT PRIMARY KEY REFERENCES fleet_runs (run_id),
    rates  BYTEA NOT NULL
);
-- The rows to fill in from their documents when the store opens (with the other packed
-- values: a row of v12 has no flags or points either), each deleted once done.
CREATE TABLE fleet_rates_todo (run_id TEXT PRIMARY KEY);
INSERT INTO fleet_rates_todo (run_id) SELECT run_id FROM fleet_runs;
-- v13's partial index found the rows without flags: the to-do table does that now.
DROP INDEX fleet_runs_unflagged;
