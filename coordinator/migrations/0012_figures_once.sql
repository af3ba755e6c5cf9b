-- fleetcal coordinator schema v12: a result's figures are kept once (issue 12's stored bytes
-- per result). Portable SQL: the same file migrates SQLite and PostgreSQL.
--
-- Before, every record of a result was also a fleet_figures row (~164 for a quick result,
-- ~23 KB on SQLite and ~37 KB on PostgreSQL with the key's index: more than the compressed
-- document itself) and every peak a fleet_peaks row. Now each fleet_runs row carries one
-- packed, compressed `summary` (store/packed.rs): its peaks, its anomaly lines and the few
-- records its headline figures are made of (what the drift over many nights reads); every
-- other figure is read from the result document when a report needs it (the latest results
-- of the boards it shows). The store fills in `summary` for the rows of an older database
-- when it opens, from their documents.
ALTER TABLE fleet_runs ADD COLUMN summary BYTEA;
DROP TABLE fleet_figures;
DROP TABLE fleet_peaks;
ALTER TABLE fleet_runs DROP COLUMN anomalies;
-- The integer run key of 0011 keyed the figure rows; nothing else uses it.
DROP INDEX fleet_runs_key;
ALTER TABLE fleet_runs DROP COLUMN run_key;
DROP TABLE store_counters;
