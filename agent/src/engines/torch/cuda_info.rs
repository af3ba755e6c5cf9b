//! CUDA as libtorch sees it: availability, the runtime version, and the device's name and
//! compute capability.
//!
//! tch 0.26 exposes availability, the device count and the CUDA runtime and cuDNN versions,
//! but not the device's name or compute capability; those come from
//! `nvidia-smi --query-gpu=name,compute_cap`, or on a Jetson (whose `nvidia-smi`, when
//! present, may lack `compute_cap`) from the module name and a table of Tegra GPUs.

use std::process::Command;

/// What a calibration records about the CUDA device it runs on (device 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CudaInfo {
    /// The device's name (`NVIDIA H100 80GB HBM3`, a Jetson module name), or `CUDA device 0`.
    pub name: String,
    /// The compute capability (`9.0`), when known.
    pub compute_capability: Option<String>,
    /// The CUDA runtime version libtorch runs on (`12.8`).
    pub cuda_version: String,
    /// CUDA devices libtorch sees.
    pub device_count: usize,
}

/// Whether libtorch can run on a CUDA device here.
pub fn cuda_available() -> bool {
    tch::Cuda::is_available()
}

/// The CUDA device the pytorch engine would use, or `None` when CUDA is not available.
pub fn cuda_info() -> Option<CudaInfo> {
    if !cuda_available() {
        return None;
    }
    let (name, compute_capability) = smi_device()
        .or_else(jetson_device)
        .unwrap_or_else(|| ("CUDA device 0".to_string(), None));
    Some(CudaInfo {
        name,
        compute_capability,
        cuda_version: format_cuda_version(tch::utils::version_cudart()),
        device_count: usize::try_from(tch::Cuda::device_count()).unwrap_or(0),
    })
}

/// The cuDNN version libtorch uses (`9.1.0`), when it has cuDNN on a usable CUDA device.
pub fn cudnn_version() -> Option<String> {
    if !cuda_available() || !tch::Cuda::cudnn_is_available() {
        return None;
    }
    let v = tch::utils::version_cudnn();
    // cuDNN 9 encodes major*10000 + minor*100 + patch; cuDNN 8 major*1000 + minor*100 + patch.
    let (major, rest) = if v >= 10_000 {
        (v / 10_000, v % 10_000)
    } else {
        (v / 1000, v % 1000)
    };
    Some(format!("{major}.{}.{}", rest / 100, rest % 100))
}

/// CUDA's integer version (`12080`) as `major.minor` (`12.8`).
pub fn format_cuda_version(v: i64) -> String {
    format!("{}.{}", v / 1000, (v % 1000) / 10)
}

/// Whether Tensor Cores serve a GEMM at `precision` on compute capability `cc`: fp16 from
/// Volta (7.0), int8 from Xavier/Turing (7.2), bf16 and tf32 from Ampere (8.0).
pub fn tensor_cores(cc: &str, precision: fleetcal_proto::Precision) -> bool {
    use fleetcal_proto::Precision::*;
    let Some(cc) = parse_cc(cc) else {
        return false;
    };
    match precision {
        Fp16 => cc >= (7, 0),
        Int8 => cc >= (7, 2),
        Bf16 | Fp32 => cc >= (8, 0),
        _ => false,
    }
}

fn parse_cc(cc: &str) -> Option<(u32, u32)> {
    let (major, minor) = cc.trim().split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

fn smi_device() -> Option<(String, Option<String>)> {
    let out = Command::new("nvidia-smi")
        .args(["--query-gpu=name,compute_cap", "--format=csv,noheader"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    parse_smi(&String::from_utf8_lossy(&out.stdout))
}

/// The first device of `nvidia-smi --query-gpu=name,compute_cap --format=csv,noheader`.
pub fn parse_smi(text: &str) -> Option<(String, Option<String>)> {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    let (name, cc) = line.rsplit_once(',')?;
    let cc = cc.trim();
    let cc = parse_cc(cc).map(|_| cc.to_string());
    Some((name.trim().to_string(), cc))
}

fn jetson_device() -> Option<(String, Option<String>)> {
    let model = crate::detect::jetson::detect_jetson()?;
    let cc = tegra_compute_capability(&model).map(str::to_string);
    Some((model, cc))
}

/// The compute capability of a Jetson module's GPU, from its name.
pub fn tegra_compute_capability(model: &str) -> Option<&'static str> {
    let m = model.to_ascii_lowercase();
    [
        ("thor", "11.0"),
        ("orin", "8.7"),
        ("xavier", "7.2"),
        ("tx2", "6.2"),
        ("nano", "5.3"),
    ]
    .into_iter()
    .find(|(key, _)| m.contains(key))
    .map(|(_, cc)| cc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetcal_proto::Precision;

    #[test]
    fn smi_output_gives_name_and_capability() {
        let text = "NVIDIA H100 80GB HBM3, 9.0\nNVIDIA H100 80GB HBM3, 9.0\n";
        assert_eq!(
            parse_smi(text),
            Some(("NVIDIA H100 80GB HBM3".into(), Some("9.0".into())))
        );
        assert_eq!(
            parse_smi("Orin (nvgpu), [N/A]\n"),
            Some(("Orin (nvgpu)".into(), None))
        );
        assert_eq!(parse_smi("\n"), None);
    }

    #[test]
    fn versions_and_tensor_core_eligibility() {
        assert_eq!(format_cuda_version(12080), "12.8");
        assert_eq!(format_cuda_version(13000), "13.0");
        assert!(tensor_cores("9.0", Precision::Int8));
        assert!(tensor_cores("7.0", Precision::Fp16));
        assert!(!tensor_cores("7.0", Precision::Int8));
        assert!(!tensor_cores("7.5", Precision::Bf16));
        assert!(!tensor_cores("8.7", Precision::Fp64));
        assert!(!tensor_cores("n/a", Precision::Fp16));
        assert_eq!(
            tegra_compute_capability("NVIDIA Jetson Orin Nano Developer Kit"),
            Some("8.7")
        );
        assert_eq!(tegra_compute_capability("Jetson AGX Xavier"), Some("7.2"));
    }

    #[test]
    fn no_cuda_here_means_no_info() {
        // The CI libtorch is the CPU build: CUDA must read as absent, not crash.
        if !tch::utils::has_cuda() {
            assert!(!cuda_available());
            assert_eq!(cuda_info(), None);
            assert_eq!(cudnn_version(), None);
        }
    }
}
