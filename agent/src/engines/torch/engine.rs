//! The pytorch engine: libtorch through tch, on the CPU or a CUDA device.

use std::collections::HashMap;
use std::sync::Mutex;

use fleetcal_proto::environment::SoftwareEnvironment;
use fleetcal_proto::result::EngineInfo;
use fleetcal_proto::{DeviceKind, Framework, Operation, Precision};
use tch::Device;

use super::cuda_info::{cuda_info, CudaInfo};
use super::kernel::{synchronize, TorchKernel};
use crate::bench::{Engine, Kernel};

/// The problem size of a support probe: small, yet valid for `torch._int_mm` (more than 16 rows,
/// dimensions multiples of 8).
pub const PROBE_SIZE: u64 = 32;

/// PyTorch's achievable performance, measured through libtorch.
pub struct TorchEngine {
    device: DeviceKind,
    tch_device: Device,
    cuda: Option<CudaInfo>,
    /// `--threads` set the intra-op pool.
    threads_requested: bool,
    /// Probe outcomes per (operation, precision): libtorch is asked once.
    support: Mutex<HashMap<(Operation, Precision), Result<(), String>>>,
}

impl TorchEngine {
    /// An engine on `device` (CUDA device 0 for [`DeviceKind::Cuda`]); `threads` sets libtorch's
    /// intra-op thread count for the whole process (else libtorch's default stays).
    ///
    /// Errs, naming the cause, when CUDA is requested but libtorch cannot use it, or `threads`
    /// is 0.
    pub fn new(device: DeviceKind, threads: Option<usize>) -> Result<TorchEngine, String> {
        let (tch_device, cuda) = match device {
            DeviceKind::Cpu => (Device::Cpu, None),
            DeviceKind::Cuda => match cuda_info() {
                Some(info) => (Device::Cuda(0), Some(info)),
                None => return Err(cuda_missing_reason()),
            },
        };
        if let Some(n) = threads {
            let n = i32::try_from(n)
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("threads {n} must be between 1 and {}", i32::MAX))?;
            tch::set_num_threads(n);
        }
        Ok(TorchEngine {
            device,
            tch_device,
            cuda,
            threads_requested: threads.is_some(),
            support: Mutex::new(HashMap::new()),
        })
    }

    /// The CUDA device this engine runs on, when it runs on one.
    pub fn cuda(&self) -> Option<&CudaInfo> {
        self.cuda.as_ref()
    }

    /// Runs `op` at `precision` once on tiny tensors: `Err` carries libtorch's reason.
    fn probe(&self, op: Operation, precision: Precision) -> Result<(), String> {
        let mut kernel = TorchKernel::new(op, precision, PROBE_SIZE, self.tch_device)?;
        kernel.run()?;
        kernel.synchronize()
    }
}

/// Why CUDA cannot be used, for the error of [`TorchEngine::new`].
fn cuda_missing_reason() -> String {
    let why = if !tch::utils::has_cuda() {
        "this libtorch is built for the cpu only"
    } else {
        "libtorch sees no cuda device (no nvidia driver, or no gpu visible to this process)"
    };
    format!("cuda requested but not available: {why}")
}

impl Engine for TorchEngine {
    fn framework(&self) -> Framework {
        Framework::Pytorch
    }

    fn device(&self) -> DeviceKind {
        self.device
    }

    fn info(&self) -> EngineInfo {
        super::info::engine_info(self.cuda.as_ref())
    }

    fn software(&self) -> SoftwareEnvironment {
        super::info::software(self.cuda.as_ref(), self.threads_requested)
    }

    fn banner(&self) -> String {
        super::info::banner(self.cuda.as_ref())
    }

    fn check_support(&self, op: Operation, precision: Precision) -> Result<(), String> {
        let mut cache = self.support.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry((op, precision))
            .or_insert_with(|| {
                self.probe(op, precision)
                    .map_err(|e| format!("pytorch cannot run {op} at {precision} here: {e}"))
            })
            .clone()
    }

    fn prepare(
        &mut self,
        op: Operation,
        precision: Precision,
        size: u64,
    ) -> Result<Box<dyn Kernel>, String> {
        let kernel = TorchKernel::new(op, precision, size, self.tch_device)?;
        // Allocation and filling are asynchronous on CUDA: finish them before any timing.
        synchronize(self.tch_device)?;
        Ok(Box::new(kernel))
    }
}
