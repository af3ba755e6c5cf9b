//! The engines: numpy (ndarray, CPU only) and pytorch (tch, CPU or CUDA, feature `torch`).

mod cuda;
pub mod numpy;

pub use cuda::cuda_usable;
