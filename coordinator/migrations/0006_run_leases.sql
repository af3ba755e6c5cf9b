-- fleetcal coordinator schema v6: several coordinators share one database. A running run is
-- leased by the coordinator that dispatched it (the one holding its agent's directive
-- stream): lease_owner is that coordinator's instance id, lease_expires (milliseconds since
-- the Unix epoch) when the lease lapses unless renewed. Another coordinator takes a run over
-- only once its lease has expired (a conditional UPDATE ... WHERE lease_expires <= now), so
-- a run is never dispatched by two coordinators at once. Rows from before have no lease: the
-- first coordinator that holds their agent takes them.
ALTER TABLE runs ADD COLUMN lease_owner TEXT;
ALTER TABLE runs ADD COLUMN lease_expires BIGINT;

-- When an agent was last heard on an open directive stream, by any coordinator (written at
-- Subscribe and with the periodic contact of a streaming agent, at least every half offline
-- window): an agent heard here within the window is live on some coordinator, so no other
-- marks its runs offline. (last_seen also counts a Register or a call without a stream.)
ALTER TABLE agents ADD COLUMN stream_seen BIGINT;
