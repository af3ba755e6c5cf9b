//! The gRPC edge: services, live sessions, the dispatch driver, and server assembly (one
//! shutdown for every listener).

pub mod admin_svc;
pub mod agent_svc;
pub mod convert;
pub mod core;
pub mod driver;
pub mod registry;
pub mod schedules;
pub mod serve;

pub use self::core::{Coordinator, Registration};
pub use serve::{serve, serve_with, signal};
