//! Numeric precisions a benchmark runs at.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ContractError;

/// A numeric precision (element type) of a benchmark.
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
pub enum Precision {
    /// IEEE 754 binary64.
    Fp64,
    /// IEEE 754 binary32.
    Fp32,
    /// IEEE 754 binary16.
    Fp16,
    /// bfloat16.
    Bf16,
    /// 64-bit signed integer.
    Int64,
    /// 32-bit signed integer.
    Int32,
    /// 16-bit signed integer.
    Int16,
    /// 8-bit signed integer.
    Int8,
}

impl Precision {
    /// Every precision, widest float first (the order of tables and reports).
    pub const ALL: [Precision; 8] = [
        Precision::Fp64,
        Precision::Fp32,
        Precision::Fp16,
        Precision::Bf16,
        Precision::Int64,
        Precision::Int32,
        Precision::Int16,
        Precision::Int8,
    ];

    /// The lowercase name used in files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Fp64 => "fp64",
            Precision::Fp32 => "fp32",
            Precision::Fp16 => "fp16",
            Precision::Bf16 => "bf16",
            Precision::Int64 => "int64",
            Precision::Int32 => "int32",
            Precision::Int16 => "int16",
            Precision::Int8 => "int8",
        }
    }

    /// Bytes per element.
    pub fn item_size(self) -> usize {
        match self {
            Precision::Fp64 | Precision::Int64 => 8,
            Precision::Fp32 | Precision::Int32 => 4,
            Precision::Fp16 | Precision::Bf16 | Precision::Int16 => 2,
            Precision::Int8 => 1,
        }
    }

    /// Whether this is an integer type (rates are GIOPS rather than GFLOPS).
    pub fn is_integer(self) -> bool {
        matches!(
            self,
            Precision::Int64 | Precision::Int32 | Precision::Int16 | Precision::Int8
        )
    }

    /// The unit of a rate at this precision: `GFLOPS` or `GIOPS`.
    pub fn rate_unit(self) -> &'static str {
        if self.is_integer() {
            "GIOPS"
        } else {
            "GFLOPS"
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Precision {
    type Err = ContractError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        Precision::ALL
            .into_iter()
            .find(|p| p.as_str() == lower)
            .ok_or_else(|| ContractError::UnknownName {
                what: "precision",
                got: s.to_string(),
                expected: Precision::ALL.map(Precision::as_str).join(", "),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sizes_are_real() {
        for p in Precision::ALL {
            assert_eq!(p.as_str().parse::<Precision>().unwrap(), p);
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{p}\""));
        }
        assert_eq!(Precision::Bf16.item_size(), 2);
        assert_eq!(Precision::Int64.item_size(), 8);
        assert_eq!(Precision::Int8.rate_unit(), "GIOPS");
        assert_eq!(Precision::Fp16.rate_unit(), "GFLOPS");
    }

    #[test]
    fn unknown_precision_names_the_input() {
        let err = "fp8".parse::<Precision>().unwrap_err().to_string();
        assert!(err.contains("'fp8'"), "{err}");
        assert!(err.contains("fp64"), "{err}");
    }
}
