//! The gRPC edge: services, live sessions, the scheduler driver, and server assembly.

pub mod admin_svc;
pub mod agent_svc;
pub mod convert;
pub mod core;
pub mod driver;
pub mod registry;
pub mod serve;

pub use self::core::{Coordinator, Registration};
pub use serve::{serve, serve_with, signal};
