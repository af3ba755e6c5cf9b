//! The benchmark core shared by every engine.

pub mod engine;
pub mod plan;

pub use engine::{Engine, Kernel};
pub use plan::{BenchPlan, SizeSweep};
