-- fleetcal coordinator schema v2: an operator can remove an agent (fleetctl agents remove).
-- The row stays for the history of its runs and results; removed agents are left out of every
-- listing and selector, and a Register of the same id brings the agent back (removed_at NULL).
ALTER TABLE agents ADD COLUMN removed_at BIGINT;
