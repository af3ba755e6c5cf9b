//! The engines: numpy (ndarray, CPU only) and pytorch (tch, CPU or CUDA, feature `torch`).

mod cuda;
mod factory;
pub mod numpy;
#[cfg(feature = "torch")]
pub mod torch;

pub use cuda::cuda_usable;
pub use factory::create;
