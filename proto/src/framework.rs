//! Frameworks (whose code paths are measured) and devices (where they run).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ContractError;

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

    /// The lowercase name used in files, file names and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Framework::Numpy => "numpy",
            Framework::Pytorch => "pytorch",
        }
    }

    /// What the framework stands for, as the EXECUTION DEVICE block prints it.
    pub fn describe(self) -> &'static str {
        match self {
            Framework::Numpy => "CPU-only, real-world signal processing performance",
            Framework::Pytorch => "PyTorch DL framework, GPU-accelerated",
        }
    }
}

impl fmt::Display for Framework {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Framework {
    type Err = ContractError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "numpy" => Ok(Framework::Numpy),
            "pytorch" | "torch" => Ok(Framework::Pytorch),
            _ => Err(ContractError::UnknownName {
                what: "framework",
                got: s.to_string(),
                expected: "numpy, pytorch".into(),
            }),
        }
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

impl DeviceKind {
    /// The lowercase name used in files (`device_type`) and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Cpu => "cpu",
            DeviceKind::Cuda => "cuda",
        }
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeviceKind {
    type Err = ContractError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cpu" => Ok(DeviceKind::Cpu),
            "cuda" | "gpu" => Ok(DeviceKind::Cuda),
            _ => Err(ContractError::UnknownName {
                what: "device",
                got: s.to_string(),
                expected: "cpu, cuda".into(),
            }),
        }
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
    }
}
