-- fleetcal coordinator schema v13: the reports of 1,000 boards read no result document but
-- the compare report's pairs (issue 12's report latency). Portable SQL: the same file
-- migrates SQLite and PostgreSQL.
--
-- The compare report reads only the runs paired with a run of the other framework on the
-- same board in the same campaign: a probe on (campaign_id, agent_id), which also serves
-- what the campaign_id index served.
DROP INDEX fleet_runs_campaign;
CREATE INDEX fleet_runs_pair ON fleet_runs (campaign_id, agent_id);
-- Two packed values beside `summary` (store/packed.rs), each read only by the report that
-- needs it: `flags`, what a result's figures show (above theoretical, skipped, noisy: the
-- anomalies report), and `points`, per BLAS operation and precision its best record (the
-- roofline report). The store fills both in from the documents when it opens; the partial
-- index finds the rows still to do without reading the table.
ALTER TABLE fleet_runs ADD COLUMN flags BYTEA;
ALTER TABLE fleet_runs ADD COLUMN points BYTEA;
CREATE INDEX fleet_runs_unflagged ON fleet_runs (run_id) WHERE flags IS NULL;
-- The drift decision after each upload reads the board's own alerts, not every alert.
CREATE INDEX alerts_agent ON alerts (agent_id, created_at);
