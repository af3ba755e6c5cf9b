//! Numeric precisions a benchmark runs at.

use serde::{Deserialize, Serialize};

use crate::names::names;

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

names! {
    /// The lowercase name used in files and on the command line.
    Precision, parse as "precision" {
        Fp64 => "fp64",
        Fp32 => "fp32",
        Fp16 => "fp16",
        Bf16 => "bf16",
        Int64 => "int64",
        Int32 => "int32",
        Int16 => "int16",
        Int8 => "int8",
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
        assert_eq!(
            err,
            "unknown precision 'fp8' (expected one of: fp64, fp32, fp16, bf16, int64, int32, \
             int16, int8)"
        );
        assert_eq!(" BF16".parse::<Precision>().unwrap(), Precision::Bf16);
    }
}
