//! Frameworks (whose code paths are measured) and devices (where they run).

use serde::{Deserialize, Serialize};

use crate::names::names;

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
}
