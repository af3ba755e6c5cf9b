//! `fleetcal-agent run`: the fleet agent.
