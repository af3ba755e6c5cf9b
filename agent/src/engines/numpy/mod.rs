//! The numpy engine: NumPy's operations on ndarray, CPU only.
//!
//! Float (fp32/fp64) dot, gemv and gemm go to the system OpenBLAS — the library NumPy's own
//! wheels and Debian's python3-numpy run — multi-threaded; fp16 (the `half` crate, fp32
//! accumulation) and integer (wrapping) matmul, axpy and the STREAM kernels are plain
//! single-threaded loops, as they are in NumPy. bf16 is not a NumPy dtype: unsupported.
//!
//! Two things keep it at NumPy's speed rather than near it: the element-wise loops run as
//! code for the instruction set NumPy's dispatch picks (`ufunc`), and an OpenBLAS older than
//! the one NumPy's wheels ship is made to wait for its threads as the newer one does
//! (`spin_yield`).

mod blas;
mod data;
mod element;
mod engine;
mod hugepage;
mod openblas;
mod spin_yield;
mod stream;
mod ufunc;

pub use engine::{NumpyEngine, NDARRAY_VERSION, UNSUPPORTED_REASON};
