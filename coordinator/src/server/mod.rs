//! The gRPC edge and the core: services, the use cases (`core`, `schedules`), live sessions,
//! the dispatch driver (which also fires due schedules), and server assembly (one shutdown for
//! every listener).

pub mod admin_svc;
pub mod agent_svc;
pub mod alerts;
pub mod auth;
pub mod clones;
pub mod convert;
pub mod core;
pub mod drift;
pub mod drift_checks;
pub mod driver;
pub mod enroll;
pub mod histories;
pub mod http;
pub mod registry;
pub mod renew;
pub mod reports;
pub mod schedules;
pub mod serve;

pub use self::core::{Coordinator, Registration};
pub use serve::{serve, serve_with, signal};
