//! The fleetcal coordinator.
