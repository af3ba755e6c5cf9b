//! The benchmark core shared by every engine.

pub mod blas_kernel;
pub mod cancel;
pub mod efficiency;
pub mod engine;
pub mod noise;
pub mod plan;
pub mod runner;
pub mod stats;
pub mod summary;
pub mod telemetry;

pub use cancel::{CancelToken, Cancelled};
pub use engine::{Engine, Kernel};
pub use plan::{BenchPlan, ModeDefaults, SizeSweep};
pub use runner::{NullObserver, Observer};
