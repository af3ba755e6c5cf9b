//! The pytorch engine (cargo feature `torch`): libtorch through tch, on the CPU or CUDA.
//!
//! - [`engine`]: [`TorchEngine`], its support probes and figure preparation.
//! - [`kernel`]: the tensors of one figure and the libtorch call that is timed.
//! - [`dtype`]: precisions as libtorch kinds, input filling, libtorch error reasons.
//! - [`cuda_info`]: CUDA availability, device name, compute capability, versions.
//! - [`info`]: the engine facts a result records, and the banner.
//! - [`version`]: the running libtorch's version.

pub mod cuda_info;
pub mod dtype;
pub mod engine;
pub mod info;
pub mod kernel;
pub mod version;

#[cfg(test)]
mod kernel_tests;

pub use cuda_info::{cuda_available, cuda_info, CudaInfo};
pub use engine::TorchEngine;
pub use kernel::TorchKernel;
