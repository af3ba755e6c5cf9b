//! The one benchmark interface every engine implements.
//!
//! An engine knows how to allocate inputs for one figure and run one call of the operation;
//! everything else — warm-ups, trials, timing, statistics, early stop, efficiency and flags —
//! lives once in [`crate::bench::runner`], shared by all engines.

use fleetcal_proto::environment::{Fact, SoftwareEnvironment};
use fleetcal_proto::result::EngineInfo;
use fleetcal_proto::{DeviceKind, Framework, Operation, Precision};

/// A framework's implementation of the measured operations on one device.
pub trait Engine {
    /// The framework this engine stands for.
    fn framework(&self) -> Framework;

    /// The device it runs on.
    fn device(&self) -> DeviceKind;

    /// Library versions, BLAS back-end, threads, device facts — recorded in the result metadata.
    fn info(&self) -> EngineInfo;

    /// The software stack as the result's environment records it (BLAS and its threading,
    /// libtorch and its back-ends, the CUDA runtime). The default names the engine and its
    /// library from [`Engine::info`] and records every other fact as not reported.
    fn software(&self) -> SoftwareEnvironment {
        let info = self.info();
        let unreported = || Fact::unknown(format!("the {} engine does not report it", info.name));
        SoftwareEnvironment {
            engine: info.name.clone(),
            library: info.library.clone(),
            blas_library: unreported(),
            blas_version: unreported(),
            blas_kernel: unreported(),
            blas_threading: unreported(),
            libtorch: None,
            cuda_runtime: None,
            thread_pools: Vec::new(),
        }
    }

    /// One line for the section header, e.g. `NumPy-compatible ndarray 0.17 (CPU-only)`.
    fn banner(&self) -> String;

    /// `Ok(())` if this engine can run `op` at `precision` here, else the framework's reason
    /// (recorded as `unsupported`, never a crash).
    fn check_support(&self, op: Operation, precision: Precision) -> Result<(), String>;

    /// Allocates and fills the inputs of one figure, outside the timed region.
    ///
    /// `size` is the vector length, matrix order, or STREAM elements per array.
    /// An `Err` is recorded as `failed` with the message (e.g. out of memory).
    fn prepare(
        &mut self,
        op: Operation,
        precision: Precision,
        size: u64,
    ) -> Result<Box<dyn Kernel>, String>;
}

/// One prepared figure: inputs allocated, ready to be called repeatedly.
pub trait Kernel {
    /// Issues one call of the operation (may return before a GPU has finished).
    fn run(&mut self) -> Result<(), String>;

    /// Waits until all work issued so far has finished (a no-op on CPU).
    fn synchronize(&mut self) -> Result<(), String> {
        Ok(())
    }
}
