//! The generated `fleetcal.v1` gRPC messages and services (`proto/fleetcal/v1/*.proto`).
//!
//! Agents use [`agent_service_client`]; the coordinator implements [`agent_service_server`]
//! and [`admin_service_server`]; fleetctl uses [`admin_service_client`]. The proto comments
//! are the documentation of every message and field.
#![allow(missing_docs, clippy::all, clippy::pedantic)]

tonic::include_proto!("fleetcal.v1");

/// The encoded `FileDescriptorSet` of `fleetcal.v1`, for tonic-reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/fleetcal_v1_descriptor.bin"));

/// The largest message either side decodes or encodes (16 MiB): anything larger is refused
/// with OUT_OF_RANGE (tonic's status for an over-limit message) rather than buffered.
/// Clients and servers set both limits to it.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// The largest answer of the admin service (256 MiB): a fleet report's model grows with the
/// fleet (a roofline of 100 boards is ~18 MB of JSON, a month of drift of 100 boards ~11 MB),
/// so the coordinator encodes and fleetctl decodes admin answers up to this; requests stay
/// within [`MAX_MESSAGE_BYTES`].
pub const MAX_ADMIN_ANSWER_BYTES: usize = 256 * 1024 * 1024;

/// The most warm-up calls per figure a campaign may ask for (`warmup` of
/// `StartCampaignRequest` and `Plan`; 0 is allowed).
pub const MAX_WARMUP: u32 = 100;

/// The most timed trials per figure a campaign may ask for (`trials` of `StartCampaignRequest`
/// and `Plan`; at least 1, 0 on the wire meaning the engine's default).
pub const MAX_TRIALS: u32 = 1000;

/// The longest wall-time cap a run may have, in seconds (a week): `max_duration_s` of
/// `StartCampaignRequest` and `Plan` (0 on the wire meaning none), and `calibrate
/// --max-duration` (at least 1 s).
pub const MAX_DURATION_S: u32 = 604_800;
