//! Framework selection, platform validation and device fallback: the origin's rules.
//!
//! 1. The framework comes from the one home of the framework rules,
//!    [`fleetcal_proto::framework::pick_one`]: the override (`--framework`), else the preset's
//!    `default_framework`; numpy on a cuda preset is refused; a framework whose engine is not
//!    built into this binary is refused with how to build it.
//! 2. The requested device is the preset's. If it is cuda and CUDA is not usable here, that is a
//!    *device fallback*: never silent — the caller shows the warning block and asks (terminal),
//!    refuses (no terminal, the default), or proceeds (`--allow-fallback`), and the result
//!    records requested and actual device. A cuda preset on a host with no NVIDIA GPU at all
//!    shows the fallback first, even when the pytorch engine is missing too; an accepted
//!    fallback is then refused by [`check_runnable`].

use fleetcal_proto::framework::{self, Engines, Target};
use fleetcal_proto::{ContractError, DeviceKind, Framework, Preset};

use crate::AgentError;

/// How to build the pytorch engine, for error messages.
pub const TORCH_BUILD_HINT: &str = "rebuild with the pytorch engine: eval \"$(scripts/setup-libtorch)\" && cargo build --release -p fleetcal-agent --features torch";

/// What this binary and host can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Availability {
    /// The pytorch engine is compiled in (cargo feature `torch`).
    pub pytorch_built: bool,
    /// CUDA is usable through the pytorch engine.
    pub cuda_usable: bool,
    /// An NVIDIA GPU is visible to the OS (driver present), usable or not.
    pub gpu_present: bool,
}

impl Availability {
    /// Detects the availability on this host.
    pub fn detect() -> Availability {
        let gpu_present = std::path::Path::new("/proc/driver/nvidia/version").exists()
            || std::path::Path::new("/dev/nvidia0").exists();
        Availability {
            pytorch_built: cfg!(feature = "torch"),
            cuda_usable: crate::engines::cuda_usable(),
            gpu_present,
        }
    }

    /// The engines built into this binary: numpy always, pytorch with feature `torch`.
    pub fn engines(self) -> Engines {
        Engines {
            numpy: true,
            pytorch: self.pytorch_built,
        }
    }
}

/// What to do when the requested device is not available.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FallbackPolicy {
    /// Refuse with a non-zero exit and write nothing (the default without a terminal).
    #[default]
    Refuse,
    /// Ask "Continue anyway? (yes/no)" (on a terminal).
    Ask,
    /// Proceed on the fallback device (`--allow-fallback`), recording it.
    Allow,
}

/// The decision of [`decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The framework to run.
    pub framework: Framework,
    /// The device the preset asked for.
    pub requested: DeviceKind,
    /// The device to run on.
    pub actual: DeviceKind,
    /// Set when `actual` differs from `requested`: the reason.
    pub fallback_reason: Option<String>,
}

/// A refusal of the framework rules as the agent reports it (exit 3); a missing engine says
/// how to build it.
pub fn framework_error(e: ContractError) -> AgentError {
    match e {
        ContractError::NoEngine { .. } => AgentError::Framework(format!("{e}; {TORCH_BUILD_HINT}")),
        e => AgentError::Framework(e.to_string()),
    }
}

/// Applies the rules to a preset, an optional override and what is available.
///
/// The returned decision may carry a fallback reason: the caller must show the warning block
/// and apply its [`FallbackPolicy`] before running anything.
pub fn decide(
    preset: &Preset,
    framework: Option<Framework>,
    avail: Availability,
) -> Result<Decision, AgentError> {
    let requested = preset.device;
    let pick = framework::pick_one(Target::from(preset), framework, avail.engines());
    match pick.refused {
        None => {}
        // No GPU here at all: the device fallback comes first; if it is accepted,
        // `check_runnable` refuses the missing engine.
        Some(ContractError::NoEngine { .. })
            if requested == DeviceKind::Cuda && !avail.gpu_present => {}
        Some(e) => return Err(framework_error(e)),
    }
    let framework = pick.framework;
    let (actual, fallback_reason) = match requested {
        DeviceKind::Cuda if !avail.cuda_usable => (
            DeviceKind::Cpu,
            Some(if avail.gpu_present {
                "CUDA requested but not usable (an NVIDIA driver is present, but libtorch sees no CUDA device)".to_string()
            } else {
                "CUDA requested but not available".to_string()
            }),
        ),
        d => (d, None),
    };
    Ok(Decision {
        framework,
        requested,
        actual,
        fallback_reason,
    })
}

/// After a fallback was accepted: the framework must also be runnable on the fallback device.
pub fn check_runnable(decision: &Decision, avail: Availability) -> Result<(), AgentError> {
    framework::check_device(decision.framework, decision.actual)
        .and_then(|()| avail.engines().require(decision.framework))
        .map_err(framework_error)
}

/// The platform check: architecture must match (an error unless skipped); a CPU vendor or
/// model unlike the preset's is a warning (the origin ignored it).
pub fn platform_check(
    preset: &Preset,
    host: &fleetcal_proto::result::Host,
) -> (Option<String>, Vec<String>) {
    let mut warnings = Vec::new();
    let error = (preset.architecture != host.architecture).then(|| {
        format!(
            "preset '{}' expects architecture {} but this host is {}",
            preset.id, preset.architecture, host.architecture
        )
    });
    if let Some(vendor) = &preset.matches.cpu_vendor {
        if !host.cpu_vendor.is_empty() && &host.cpu_vendor != vendor {
            warnings.push(format!(
                "CPU vendor differs: preset '{}' is {vendor}, this host is {}",
                preset.id, host.cpu_vendor
            ));
        }
    }
    let models = &preset.matches.cpu_model;
    if !models.is_empty() && !models.iter().any(|m| host.cpu_model.contains(m.as_str())) {
        warnings.push(format!(
            "CPU model differs: preset '{}' expects one of [{}], this host is '{}'",
            preset.id,
            models.join(", "),
            host.cpu_model
        ));
    }
    (error, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn preset(device: DeviceKind) -> Preset {
        Preset {
            schema_version: 1,
            id: "p".into(),
            hardware_name: "P".into(),
            device,
            architecture: "x86_64".into(),
            platform: fleetcal_proto::preset::Platform::Desktop,
            default_framework: if device == DeviceKind::Cuda {
                Framework::Pytorch
            } else {
                Framework::Numpy
            },
            bandwidth_gbps: None,
            notes: String::new(),
            matches: Default::default(),
            peaks: BTreeMap::from([(fleetcal_proto::Precision::Fp32, 1.0)]),
            derivation: None,
        }
    }

    const NONE: Availability = Availability {
        pytorch_built: false,
        cuda_usable: false,
        gpu_present: false,
    };
    const TORCH_CPU: Availability = Availability {
        pytorch_built: true,
        cuda_usable: false,
        gpu_present: false,
    };
    const TORCH_GPU: Availability = Availability {
        pytorch_built: true,
        cuda_usable: true,
        gpu_present: true,
    };

    #[test]
    fn cpu_prefers_numpy_and_cuda_requires_pytorch() {
        let d = decide(&preset(DeviceKind::Cpu), None, NONE).unwrap();
        assert_eq!((d.framework, d.actual), (Framework::Numpy, DeviceKind::Cpu));
        let d = decide(&preset(DeviceKind::Cuda), None, TORCH_GPU).unwrap();
        assert_eq!(
            (d.framework, d.actual),
            (Framework::Pytorch, DeviceKind::Cuda)
        );
        assert!(d.fallback_reason.is_none());
    }

    #[test]
    fn override_is_validated() {
        let err = decide(&preset(DeviceKind::Cuda), Some(Framework::Numpy), TORCH_GPU).unwrap_err();
        assert!(
            err.to_string().contains("'numpy' cannot run on a cuda"),
            "{err}"
        );
        let d = decide(
            &preset(DeviceKind::Cpu),
            Some(Framework::Pytorch),
            TORCH_CPU,
        )
        .unwrap();
        assert_eq!(
            (d.framework, d.actual),
            (Framework::Pytorch, DeviceKind::Cpu)
        );
    }

    #[test]
    fn pytorch_missing_is_an_error_that_says_how_to_build() {
        let err = decide(&preset(DeviceKind::Cpu), Some(Framework::Pytorch), NONE).unwrap_err();
        assert!(err.to_string().contains("--features torch"), "{err}");
        let gpu_no_torch = Availability {
            gpu_present: true,
            ..NONE
        };
        let err = decide(&preset(DeviceKind::Cuda), None, gpu_no_torch).unwrap_err();
        assert_eq!(err.exit_code(), 3);
        assert!(
            err.to_string().starts_with(
                "framework 'pytorch' is not built into this agent (it has: numpy); rebuild"
            ),
            "{err}"
        );
    }

    #[test]
    fn the_presets_default_framework_is_followed() {
        let mut p = preset(DeviceKind::Cpu);
        p.default_framework = Framework::Pytorch;
        let d = decide(&p, None, TORCH_CPU).unwrap();
        assert_eq!(
            (d.framework, d.actual),
            (Framework::Pytorch, DeviceKind::Cpu)
        );
        let err = decide(&p, None, NONE).unwrap_err();
        assert!(err.to_string().contains("--features torch"), "{err}");
        assert_eq!(
            decide(&p, Some(Framework::Numpy), NONE).unwrap().framework,
            Framework::Numpy
        );
        // A cuda preset defaulting to numpy fails preset validation; the rules refuse it too.
        let mut p = preset(DeviceKind::Cuda);
        p.default_framework = Framework::Numpy;
        let err = decide(&p, None, TORCH_GPU).unwrap_err();
        assert!(
            err.to_string().contains("'numpy' cannot run on a cuda"),
            "{err}"
        );
    }

    #[test]
    fn missing_cuda_is_a_fallback_never_silent() {
        for avail in [NONE, TORCH_CPU] {
            let d = decide(&preset(DeviceKind::Cuda), None, avail).unwrap();
            assert_eq!(d.requested, DeviceKind::Cuda);
            assert_eq!(d.actual, DeviceKind::Cpu);
            assert_eq!(
                d.fallback_reason.as_deref(),
                Some("CUDA requested but not available")
            );
            assert_eq!(check_runnable(&d, avail).is_ok(), avail.pytorch_built);
        }
    }

    #[test]
    fn platform_check_errors_on_arch_and_warns_on_model() {
        let mut p = preset(DeviceKind::Cpu);
        p.matches.cpu_vendor = Some("GenuineIntel".into());
        p.matches.cpu_model = vec!["12700K".into()];
        let host = fleetcal_proto::result::Host {
            architecture: "x86_64".into(),
            cpu_vendor: "AuthenticAMD".into(),
            cpu_model: "AMD EPYC".into(),
            ..Default::default()
        };
        let (err, warnings) = platform_check(&p, &host);
        assert!(err.is_none());
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        p.architecture = "aarch64".into();
        let (err, _) = platform_check(&p, &host);
        assert!(err.unwrap().contains("aarch64"));
    }
}
