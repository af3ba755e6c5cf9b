//! What the agent tells the coordinator it is and can do (`Register.capabilities`).

use fleetcal_proto::pb::Capabilities;
use fleetcal_proto::result::Host;

/// The engines this binary runs: `numpy`, plus `pytorch` when built with feature `torch`.
pub fn engines() -> Vec<String> {
    let mut engines = vec!["numpy".to_string()];
    if cfg!(feature = "torch") {
        engines.push("pytorch".to_string());
    }
    engines
}

/// CUDA as the pytorch engine sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CudaInfo {
    /// A CUDA device is usable.
    pub available: bool,
    /// Its name, when known.
    pub gpu_name: String,
    /// The CUDA runtime version, when known.
    pub cuda_version: String,
}

impl CudaInfo {
    /// Asks the pytorch engine (never available without feature `torch`).
    pub fn detect() -> CudaInfo {
        #[cfg(feature = "torch")]
        {
            match crate::engines::torch::cuda_info() {
                Some(c) => CudaInfo {
                    available: true,
                    gpu_name: c.name,
                    cuda_version: c.cuda_version,
                },
                None => CudaInfo::default(),
            }
        }
        #[cfg(not(feature = "torch"))]
        {
            CudaInfo::default()
        }
    }
}

/// Builds the Register capabilities from the detected host.
pub fn from_host(host: &Host, engines: Vec<String>, cuda: CudaInfo) -> Capabilities {
    let (jetson_model, power_mode) = match host.jetson.as_deref() {
        Some(j) => match j.rsplit_once(", power mode ") {
            Some((model, mode)) => (model.to_string(), mode.to_string()),
            None => (j.to_string(), String::new()),
        },
        None => (String::new(), String::new()),
    };
    Capabilities {
        arch: host.architecture.clone(),
        cpu_vendor: host.cpu_vendor.clone(),
        cpu_model: host.cpu_model.clone(),
        cpu_count: host.cpu_count,
        memory_gb: host.total_memory_gb,
        simd: host.simd.clone(),
        os: host.os.clone(),
        kernel: host.kernel.clone(),
        engines,
        cuda_available: cuda.available,
        gpu_name: cuda.gpu_name,
        cuda_version: cuda.cuda_version,
        jetson_model,
        power_mode,
    }
}

/// Detects everything (reads `/proc`, may run `nvpmodel`: call off the async threads).
pub fn detect() -> (Host, Capabilities) {
    let host = crate::detect::host();
    let caps = from_host(&host, engines(), CudaInfo::detect());
    (host, caps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_fields_map_and_jetson_splits() {
        let host = Host {
            hostname: "orin".into(),
            architecture: "aarch64".into(),
            cpu_model: "Cortex-A78AE".into(),
            cpu_count: 6,
            total_memory_gb: 7.6,
            simd: vec!["neon".into()],
            jetson: Some("NVIDIA Jetson Orin Nano Developer Kit, power mode 15W".into()),
            ..Host::default()
        };
        let cuda = CudaInfo {
            available: true,
            gpu_name: "Orin".into(),
            cuda_version: "12.6".into(),
        };
        let c = from_host(&host, vec!["numpy".into(), "pytorch".into()], cuda);
        assert_eq!(c.arch, "aarch64");
        assert_eq!(c.cpu_count, 6);
        assert_eq!(c.jetson_model, "NVIDIA Jetson Orin Nano Developer Kit");
        assert_eq!(c.power_mode, "15W");
        assert!(c.cuda_available);
        assert_eq!(c.engines, ["numpy", "pytorch"]);
        let plain = from_host(&Host::default(), engines(), CudaInfo::default());
        assert!(plain.jetson_model.is_empty() && plain.power_mode.is_empty());
    }

    #[test]
    fn engines_follow_the_build() {
        let e = engines();
        assert_eq!(e[0], "numpy");
        assert_eq!(e.contains(&"pytorch".to_string()), cfg!(feature = "torch"));
        if !cfg!(feature = "torch") {
            assert_eq!(
                CudaInfo::detect(),
                CudaInfo::default(),
                "no engine, no CUDA"
            );
        }
    }

    #[test]
    fn detect_reports_this_host() {
        let (host, caps) = detect();
        assert_eq!(caps.arch, std::env::consts::ARCH);
        assert_eq!(caps.cpu_count, host.cpu_count);
        assert!(caps.cpu_count >= 1);
    }
}
