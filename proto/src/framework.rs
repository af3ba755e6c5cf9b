//! Frameworks (whose code paths are measured), devices (where they run), and the framework
//! rules: the one place that decides which framework(s) a board runs.
//!
//! The rules ([`pick_one`] for one calibration, [`choose`] for a fleet campaign):
//! 1. The framework is the override (`--framework`, a plan's `framework`) if there is one,
//!    else the preset's `default_framework` (numpy for cpu presets, pytorch for cuda presets).
//! 2. `compare` (campaigns only) is numpy and pytorch on a cpu preset when the board has the
//!    pytorch engine (numpy alone otherwise), and pytorch on a cuda preset.
//! 3. numpy on a cuda device is refused ([`check_device`]): NumPy has no GPU support.
//! 4. A framework whose engine the board does not have is refused ([`Engines::require`]).
//!
//! A refusal is part of the answer ([`Pick::refused`]), not a panic or a silent substitute: the
//! agent turns it into an error (exit 3), the coordinator into a run that is failed from the
//! start. What happens when a preset's *device* is not usable (the device fallback) is the
//! agent's business (`agent/src/select.rs`), not a framework rule.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::names::names;
use crate::{ContractError, Preset};

/// The framework whose achievable performance a calibration measures.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Framework {
    /// NumPy-style CPU arrays (fleetcal's `ndarray` engine): CPU only.
    Numpy,
    /// PyTorch (fleetcal's `tch`/libtorch engine): CPU or CUDA.
    Pytorch,
}

impl Framework {
    /// Both frameworks.
    pub const ALL: [Framework; 2] = [Framework::Numpy, Framework::Pytorch];

    /// What the framework stands for, as the EXECUTION DEVICE block prints it.
    pub fn describe(self) -> &'static str {
        match self {
            Framework::Numpy => "CPU-only, real-world signal processing performance",
            Framework::Pytorch => "PyTorch DL framework, GPU-accelerated",
        }
    }
}

names! {
    /// The lowercase name used in files, file names and on the command line.
    Framework, parse as "framework" {
        Numpy => "numpy",
        Pytorch => "pytorch" | "torch",
    }
}

/// The kind of device a calibration targets.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// The host CPU.
    Cpu,
    /// An NVIDIA GPU through CUDA.
    Cuda,
}

names! {
    /// The lowercase name used in files (`device_type`) and on the command line.
    DeviceKind, parse as "device" {
        Cpu => "cpu",
        Cuda => "cuda" | "gpu",
    }
}

/// Which framework(s) to run: what `--framework` asks of one calibration ([`Default`] or
/// [`Only`]) or of a fleet campaign (also [`Compare`]). Stored by the coordinator as JSON
/// (`"default"`, `{"only":"numpy"}`, `"compare"`).
///
/// [`Default`]: FrameworkChoice::Default
/// [`Only`]: FrameworkChoice::Only
/// [`Compare`]: FrameworkChoice::Compare
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameworkChoice {
    /// The preset's `default_framework`: numpy on cpu presets, pytorch on cuda presets.
    Default,
    /// This framework on every board (numpy on a cuda preset is refused).
    Only(Framework),
    /// numpy and pytorch on cpu presets whose board has the pytorch engine (numpy alone
    /// otherwise); pytorch on cuda presets.
    Compare,
}

impl FrameworkChoice {
    /// The name on the command line and in requests: `""` (the default), `numpy`, `pytorch`
    /// or `compare`.
    pub fn as_str(self) -> &'static str {
        match self {
            FrameworkChoice::Default => "",
            FrameworkChoice::Only(f) => f.as_str(),
            FrameworkChoice::Compare => "compare",
        }
    }
}

impl From<Option<Framework>> for FrameworkChoice {
    /// An optional override: `None` is the default.
    fn from(framework: Option<Framework>) -> FrameworkChoice {
        framework.map_or(FrameworkChoice::Default, FrameworkChoice::Only)
    }
}

impl FromStr for FrameworkChoice {
    type Err = ContractError;

    /// `""` or `default`, `compare`, or a framework name (trimmed, any ASCII case).
    fn from_str(s: &str) -> Result<FrameworkChoice, ContractError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "default" => Ok(FrameworkChoice::Default),
            "compare" => Ok(FrameworkChoice::Compare),
            _ => s
                .parse()
                .map(FrameworkChoice::Only)
                .map_err(|_| ContractError::UnknownName {
                    what: "framework",
                    got: s.to_string(),
                    expected: "numpy, pytorch, compare".into(),
                }),
        }
    }
}

/// The engines a board can run: what the agent is built with, or what it reports when it
/// registers (`Capabilities.engines`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Engines {
    /// The numpy engine (every agent has it).
    pub numpy: bool,
    /// The pytorch engine (an agent built with the cargo feature `torch`).
    pub pytorch: bool,
}

impl Engines {
    /// Both engines.
    pub const ALL: Engines = Engines {
        numpy: true,
        pytorch: true,
    };

    /// The engines named in a list (`numpy`, `pytorch`; names as [`Framework`] parses them);
    /// other names are ignored.
    pub fn from_names<I, S>(names: I) -> Engines
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        names
            .into_iter()
            .filter_map(|n| n.as_ref().parse::<Framework>().ok())
            .fold(Engines::default(), |mut e, f| {
                match f {
                    Framework::Numpy => e.numpy = true,
                    Framework::Pytorch => e.pytorch = true,
                }
                e
            })
    }

    /// Whether the engine of this framework is there.
    pub fn has(self, framework: Framework) -> bool {
        match framework {
            Framework::Numpy => self.numpy,
            Framework::Pytorch => self.pytorch,
        }
    }

    /// Rule 4: the framework's engine must be there; [`ContractError::NoEngine`] otherwise.
    pub fn require(self, framework: Framework) -> Result<(), ContractError> {
        if self.has(framework) {
            Ok(())
        } else {
            Err(ContractError::NoEngine {
                framework,
                engines: self,
            })
        }
    }
}

impl fmt::Display for Engines {
    /// `numpy, pytorch`, one of them, or `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Framework::ALL
            .into_iter()
            .filter(|&fw| self.has(fw))
            .map(Framework::as_str)
            .collect();
        if names.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&names.join(", "))
        }
    }
}

/// What the rules read from a preset: the device it targets and its `default_framework`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// The preset's device.
    pub device: DeviceKind,
    /// The preset's `default_framework`.
    pub default_framework: Framework,
}

impl From<&Preset> for Target {
    fn from(p: &Preset) -> Target {
        Target {
            device: p.device,
            default_framework: p.default_framework,
        }
    }
}

/// One framework the rules picked for a board, and why the board cannot run it, if it cannot.
#[derive(Debug)]
pub struct Pick {
    /// The framework.
    pub framework: Framework,
    /// `Some` when the board cannot run it ([`ContractError::NumpyOnCuda`] or
    /// [`ContractError::NoEngine`]).
    pub refused: Option<ContractError>,
}

impl Pick {
    /// The framework, or the refusal.
    pub fn into_result(self) -> Result<Framework, ContractError> {
        match self.refused {
            None => Ok(self.framework),
            Some(e) => Err(e),
        }
    }
}

/// Rule 3: numpy cannot run on a cuda device ([`ContractError::NumpyOnCuda`]); every other
/// framework and device pair can.
pub fn check_device(framework: Framework, device: DeviceKind) -> Result<(), ContractError> {
    if framework == Framework::Numpy && device == DeviceKind::Cuda {
        return Err(ContractError::NumpyOnCuda);
    }
    Ok(())
}

fn pick(framework: Framework, device: DeviceKind, engines: Engines) -> Pick {
    Pick {
        framework,
        refused: check_device(framework, device)
            .and_then(|()| engines.require(framework))
            .err(),
    }
}

/// The framework of one calibration (rules 1, 3, 4): the override, else the preset's
/// `default_framework`; refused when it cannot run on the preset's device or the engine is
/// missing.
pub fn pick_one(target: Target, framework: Option<Framework>, engines: Engines) -> Pick {
    pick(
        framework.unwrap_or(target.default_framework),
        target.device,
        engines,
    )
}

/// The frameworks a campaign runs on one board (rules 1 to 4), in run order: one pick, or two
/// for `compare` on a cpu preset whose board has the pytorch engine.
pub fn choose(target: Target, choice: FrameworkChoice, engines: Engines) -> Vec<Pick> {
    let device = target.device;
    match choice {
        FrameworkChoice::Default => vec![pick_one(target, None, engines)],
        FrameworkChoice::Only(f) => vec![pick_one(target, Some(f), engines)],
        FrameworkChoice::Compare => match device {
            DeviceKind::Cuda => vec![pick(Framework::Pytorch, device, engines)],
            DeviceKind::Cpu if engines.pytorch => vec![
                pick(Framework::Numpy, device, engines),
                pick(Framework::Pytorch, device, engines),
            ],
            DeviceKind::Cpu => vec![pick(Framework::Numpy, device, engines)],
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display_agree() {
        for f in Framework::ALL {
            assert_eq!(f.to_string().parse::<Framework>().unwrap(), f);
        }
        assert_eq!("CUDA".parse::<DeviceKind>().unwrap(), DeviceKind::Cuda);
        let err = "jax".parse::<Framework>().unwrap_err().to_string();
        assert!(err.contains("'jax'") && err.contains("numpy"), "{err}");
        assert_eq!(" Torch ".parse::<Framework>().unwrap(), Framework::Pytorch);
        assert_eq!("gpu".parse::<DeviceKind>().unwrap(), DeviceKind::Cuda);
        assert_eq!(DeviceKind::Cuda.to_string(), "cuda");
        assert_eq!(
            err,
            "unknown framework 'jax' (expected one of: numpy, pytorch)"
        );
        assert_eq!(
            "tpu".parse::<DeviceKind>().unwrap_err().to_string(),
            "unknown device 'tpu' (expected one of: cpu, cuda)"
        );
    }

    const NONE: Engines = Engines {
        numpy: false,
        pytorch: false,
    };
    const NUMPY: Engines = Engines {
        numpy: true,
        pytorch: false,
    };
    const TORCH: Engines = Engines {
        numpy: false,
        pytorch: true,
    };
    const BOTH: Engines = Engines::ALL;

    /// A pick as the table writes it: `numpy`, `pytorch`, or `<framework>:cuda` (refused,
    /// numpy on cuda) / `<framework>:engine` (refused, no engine).
    fn show(p: &Pick) -> String {
        match &p.refused {
            None => p.framework.to_string(),
            Some(ContractError::NumpyOnCuda) => format!("{}:cuda", p.framework),
            Some(ContractError::NoEngine { framework, .. }) if *framework == p.framework => {
                format!("{}:engine", p.framework)
            }
            Some(other) => format!("{}:{other}", p.framework),
        }
    }

    /// Every case of the rules: preset device × `default_framework` × choice × the board's
    /// engines. (A cuda preset with `default_framework = "numpy"` fails preset validation;
    /// the rules refuse it all the same.)
    #[rustfmt::skip]
    const RULES: [(DeviceKind, Framework, FrameworkChoice, Engines, &str); 64] = {
        use DeviceKind::{Cpu, Cuda};
        use Framework::{Numpy, Pytorch};
        use FrameworkChoice::{Compare, Default, Only};
        [
            (Cpu, Numpy, Default, NONE, "numpy:engine"),
            (Cpu, Numpy, Default, NUMPY, "numpy"),
            (Cpu, Numpy, Default, TORCH, "numpy:engine"),
            (Cpu, Numpy, Default, BOTH, "numpy"),
            (Cpu, Numpy, Only(Numpy), NONE, "numpy:engine"),
            (Cpu, Numpy, Only(Numpy), NUMPY, "numpy"),
            (Cpu, Numpy, Only(Numpy), TORCH, "numpy:engine"),
            (Cpu, Numpy, Only(Numpy), BOTH, "numpy"),
            (Cpu, Numpy, Only(Pytorch), NONE, "pytorch:engine"),
            (Cpu, Numpy, Only(Pytorch), NUMPY, "pytorch:engine"),
            (Cpu, Numpy, Only(Pytorch), TORCH, "pytorch"),
            (Cpu, Numpy, Only(Pytorch), BOTH, "pytorch"),
            (Cpu, Numpy, Compare, NONE, "numpy:engine"),
            (Cpu, Numpy, Compare, NUMPY, "numpy"),
            (Cpu, Numpy, Compare, TORCH, "numpy:engine pytorch"),
            (Cpu, Numpy, Compare, BOTH, "numpy pytorch"),
            (Cpu, Pytorch, Default, NONE, "pytorch:engine"),
            (Cpu, Pytorch, Default, NUMPY, "pytorch:engine"),
            (Cpu, Pytorch, Default, TORCH, "pytorch"),
            (Cpu, Pytorch, Default, BOTH, "pytorch"),
            (Cpu, Pytorch, Only(Numpy), NONE, "numpy:engine"),
            (Cpu, Pytorch, Only(Numpy), NUMPY, "numpy"),
            (Cpu, Pytorch, Only(Numpy), TORCH, "numpy:engine"),
            (Cpu, Pytorch, Only(Numpy), BOTH, "numpy"),
            (Cpu, Pytorch, Only(Pytorch), NONE, "pytorch:engine"),
            (Cpu, Pytorch, Only(Pytorch), NUMPY, "pytorch:engine"),
            (Cpu, Pytorch, Only(Pytorch), TORCH, "pytorch"),
            (Cpu, Pytorch, Only(Pytorch), BOTH, "pytorch"),
            (Cpu, Pytorch, Compare, NONE, "numpy:engine"),
            (Cpu, Pytorch, Compare, NUMPY, "numpy"),
            (Cpu, Pytorch, Compare, TORCH, "numpy:engine pytorch"),
            (Cpu, Pytorch, Compare, BOTH, "numpy pytorch"),
            (Cuda, Numpy, Default, NONE, "numpy:cuda"),
            (Cuda, Numpy, Default, NUMPY, "numpy:cuda"),
            (Cuda, Numpy, Default, TORCH, "numpy:cuda"),
            (Cuda, Numpy, Default, BOTH, "numpy:cuda"),
            (Cuda, Numpy, Only(Numpy), NONE, "numpy:cuda"),
            (Cuda, Numpy, Only(Numpy), NUMPY, "numpy:cuda"),
            (Cuda, Numpy, Only(Numpy), TORCH, "numpy:cuda"),
            (Cuda, Numpy, Only(Numpy), BOTH, "numpy:cuda"),
            (Cuda, Numpy, Only(Pytorch), NONE, "pytorch:engine"),
            (Cuda, Numpy, Only(Pytorch), NUMPY, "pytorch:engine"),
            (Cuda, Numpy, Only(Pytorch), TORCH, "pytorch"),
            (Cuda, Numpy, Only(Pytorch), BOTH, "pytorch"),
            (Cuda, Numpy, Compare, NONE, "pytorch:engine"),
            (Cuda, Numpy, Compare, NUMPY, "pytorch:engine"),
            (Cuda, Numpy, Compare, TORCH, "pytorch"),
            (Cuda, Numpy, Compare, BOTH, "pytorch"),
            (Cuda, Pytorch, Default, NONE, "pytorch:engine"),
            (Cuda, Pytorch, Default, NUMPY, "pytorch:engine"),
            (Cuda, Pytorch, Default, TORCH, "pytorch"),
            (Cuda, Pytorch, Default, BOTH, "pytorch"),
            (Cuda, Pytorch, Only(Numpy), NONE, "numpy:cuda"),
            (Cuda, Pytorch, Only(Numpy), NUMPY, "numpy:cuda"),
            (Cuda, Pytorch, Only(Numpy), TORCH, "numpy:cuda"),
            (Cuda, Pytorch, Only(Numpy), BOTH, "numpy:cuda"),
            (Cuda, Pytorch, Only(Pytorch), NONE, "pytorch:engine"),
            (Cuda, Pytorch, Only(Pytorch), NUMPY, "pytorch:engine"),
            (Cuda, Pytorch, Only(Pytorch), TORCH, "pytorch"),
            (Cuda, Pytorch, Only(Pytorch), BOTH, "pytorch"),
            (Cuda, Pytorch, Compare, NONE, "pytorch:engine"),
            (Cuda, Pytorch, Compare, NUMPY, "pytorch:engine"),
            (Cuda, Pytorch, Compare, TORCH, "pytorch"),
            (Cuda, Pytorch, Compare, BOTH, "pytorch"),
        ]
    };

    #[test]
    fn the_rules_table() {
        for (device, default_framework, choice, engines, want) in RULES {
            let target = Target {
                device,
                default_framework,
            };
            let picks = choose(target, choice, engines);
            let got: Vec<String> = picks.iter().map(show).collect();
            assert_eq!(
                got.join(" "),
                want,
                "{device} preset, default {default_framework}, {choice:?}, engines {engines}"
            );
            // One calibration (the agent's `calibrate` and daemon) and a campaign agree.
            let single = match choice {
                FrameworkChoice::Default => Some(None),
                FrameworkChoice::Only(f) => Some(Some(f)),
                FrameworkChoice::Compare => None,
            };
            if let Some(framework) = single {
                assert_eq!(show(&pick_one(target, framework, engines)), want);
            }
        }
    }

    #[test]
    fn refusals_name_the_framework_device_and_engines() {
        let target = Target {
            device: DeviceKind::Cuda,
            default_framework: Framework::Pytorch,
        };
        let err = pick_one(target, Some(Framework::Numpy), BOTH)
            .into_result()
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "framework 'numpy' cannot run on a cuda device: numpy has no GPU support (use pytorch, or a cpu preset)"
        );
        let err = pick_one(target, None, NUMPY)
            .into_result()
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "framework 'pytorch' is not built into this agent (it has: numpy)"
        );
        let err = NONE.require(Framework::Numpy).unwrap_err().to_string();
        assert!(err.ends_with("(it has: none)"), "{err}");
        assert_eq!(
            pick_one(target, None, TORCH).into_result().unwrap(),
            Framework::Pytorch
        );
    }

    #[test]
    fn engines_from_names() {
        assert_eq!(Engines::from_names(["numpy", "pytorch"]), BOTH);
        assert_eq!(Engines::from_names([" Torch ", "jax"]), TORCH);
        assert_eq!(Engines::from_names(Vec::<String>::new()), NONE);
        assert_eq!(BOTH.to_string(), "numpy, pytorch");
    }

    #[test]
    fn framework_choice_names_and_json() {
        use FrameworkChoice::*;
        for (text, choice) in [
            ("", Default),
            (" default", Default),
            ("Compare", Compare),
            ("numpy", Only(Framework::Numpy)),
            ("torch", Only(Framework::Pytorch)),
        ] {
            assert_eq!(text.parse::<FrameworkChoice>().unwrap(), choice, "{text}");
        }
        for choice in [Default, Compare, Only(Framework::Pytorch)] {
            assert_eq!(choice.as_str().parse::<FrameworkChoice>().unwrap(), choice);
        }
        assert_eq!(
            "jax".parse::<FrameworkChoice>().unwrap_err().to_string(),
            "unknown framework 'jax' (expected one of: numpy, pytorch, compare)"
        );
        // The coordinator stores it as JSON: these forms must keep loading.
        assert_eq!(serde_json::to_string(&Compare).unwrap(), "\"compare\"");
        assert_eq!(
            serde_json::from_str::<FrameworkChoice>(r#"{"only":"numpy"}"#).unwrap(),
            Only(Framework::Numpy)
        );
        assert_eq!(FrameworkChoice::from(None), Default);
    }
}
