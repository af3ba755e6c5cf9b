//! What the agent tells the coordinator it is and can do (`Register.capabilities`).

use fleetcal_proto::environment::HostEnvironment;
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

/// Builds the Register capabilities from the detected host and its environment (whose
/// fingerprint is the `host_key` of this agent's results).
pub fn from_host(
    host: &Host,
    environment: &HostEnvironment,
    engines: Vec<String>,
    cuda: CudaInfo,
) -> Capabilities {
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
        environment_key: environment.key(),
        environment_json: serde_json::to_string(environment).unwrap_or_default(),
    }
}

/// Detects everything (reads `/proc` and `/sys`, may run `nvpmodel`: call off the async
/// threads).
pub fn detect() -> (Host, Capabilities) {
    let host = crate::detect::host();
    let environment = crate::detect::environment::detect_host();
    let caps = from_host(&host, &environment, engines(), CudaInfo::detect());
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
        let root = crate::detect::environment::Root::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/detect/fixtures/env/orin"
        ));
        let env =
            crate::detect::environment::host_environment(&root, &|| root.read("nvpmodel-q.txt"));
        let c = from_host(&host, &env, vec!["numpy".into(), "pytorch".into()], cuda);
        assert_eq!(c.arch, "aarch64");
        assert_eq!(c.cpu_count, 6);
        assert_eq!(c.jetson_model, "NVIDIA Jetson Orin Nano Developer Kit");
        assert_eq!(c.power_mode, "15W");
        assert!(c.cuda_available);
        assert_eq!(c.engines, ["numpy", "pytorch"]);
        assert_eq!(c.environment_key, env.key());
        let back: HostEnvironment = serde_json::from_str(&c.environment_json).unwrap();
        assert_eq!(back, env);
        let plain = from_host(&Host::default(), &env, engines(), CudaInfo::default());
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
        assert_eq!(caps.environment_key.len(), 16);
        assert!(caps.environment_json.contains("\"cpu_model\""));
    }
}
