//! Creates the engine for a framework and device.

use fleetcal_proto::{DeviceKind, Framework};

use crate::bench::Engine;
use crate::AgentError;

/// The engine for `framework` on `device`, with an optional worker-thread count.
pub fn create(
    framework: Framework,
    device: DeviceKind,
    threads: Option<usize>,
) -> Result<Box<dyn Engine>, AgentError> {
    match (framework, device) {
        (Framework::Numpy, DeviceKind::Cpu) => {
            Ok(Box::new(super::numpy::NumpyEngine::new(threads)))
        }
        (Framework::Numpy, DeviceKind::Cuda) => Err(crate::select::framework_error(
            fleetcal_proto::ContractError::NumpyOnCuda,
        )),
        #[cfg(feature = "torch")]
        (Framework::Pytorch, device) => super::torch::TorchEngine::new(device, threads)
            .map(|e| Box::new(e) as Box<dyn Engine>)
            .map_err(AgentError::Engine),
        #[cfg(not(feature = "torch"))]
        (Framework::Pytorch, _) => Err(AgentError::Framework(format!(
            "framework 'pytorch' is not built into this fleetcal-agent; {}",
            crate::select::TORCH_BUILD_HINT
        ))),
    }
}
