//! The measured operations and the origin's `--operations` vocabulary.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::names::names;
use crate::ContractError;

/// One measured kernel.
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
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// BLAS level 1: `dot(x, y)`; 2n FLOPs, 2n elements moved.
    Dot,
    /// BLAS level 1: `y = a*x + y`; 2n FLOPs, 3n elements moved.
    Axpy,
    /// BLAS level 2: `y = a*(A@x) + b*y`; 2n² FLOPs, n²+2n elements moved.
    Gemv,
    /// BLAS level 3: `C = a*(A@B) + b*C`; 2n³ FLOPs, 3n² elements moved.
    Gemm,
    /// STREAM copy `c = a`: 2 arrays, 2 memory operations, 0 FLOPs per element.
    StreamCopy,
    /// STREAM scale `b = s*c`: 2 arrays, 2 memory operations, 1 FLOP per element.
    StreamScale,
    /// STREAM add `c = a + b`: 3 arrays, 3 memory operations, 1 FLOP per element.
    StreamAdd,
    /// STREAM triad `a = b + s*c` (one pass, no temporaries): 3 arrays, 3 memory operations, 2 FLOPs per element.
    StreamTriad,
}

/// The family an operation belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    /// A BLAS routine at the given level (1, 2 or 3), swept over sizes `n`.
    Blas(u8),
    /// A STREAM kernel, swept over array sizes in MiB.
    Stream,
}

impl Operation {
    /// Every operation in report order.
    pub const ALL: [Operation; 8] = [
        Operation::Dot,
        Operation::Axpy,
        Operation::Gemv,
        Operation::Gemm,
        Operation::StreamCopy,
        Operation::StreamScale,
        Operation::StreamAdd,
        Operation::StreamTriad,
    ];

    /// The origin profile's `operation_type` (`blas1_dot`, `stream_copy`, ...).
    pub fn origin_type(self) -> &'static str {
        match self {
            Operation::Dot => "blas1_dot",
            Operation::Axpy => "blas1_axpy",
            Operation::Gemv => "blas2_gemv",
            Operation::Gemm => "blas3_gemm",
            other => other.as_str(),
        }
    }

    /// BLAS level or STREAM.
    pub fn kind(self) -> OperationKind {
        match self {
            Operation::Dot | Operation::Axpy => OperationKind::Blas(1),
            Operation::Gemv => OperationKind::Blas(2),
            Operation::Gemm => OperationKind::Blas(3),
            _ => OperationKind::Stream,
        }
    }

    /// Whether this is a STREAM kernel.
    pub fn is_stream(self) -> bool {
        self.kind() == OperationKind::Stream
    }

    /// The STREAM kernel name (`copy`, `scale`, `add`, `triad`), if it is one.
    pub fn stream_kernel(self) -> Option<&'static str> {
        match self {
            Operation::StreamCopy => Some("copy"),
            Operation::StreamScale => Some("scale"),
            Operation::StreamAdd => Some("add"),
            Operation::StreamTriad => Some("triad"),
            _ => None,
        }
    }

    /// Floating-point (or integer) operations for problem size `n`
    /// (vector length, matrix order, or STREAM elements per array).
    pub fn flops(self, n: u64) -> f64 {
        let n = n as f64;
        match self {
            Operation::Dot | Operation::Axpy => 2.0 * n,
            Operation::Gemv => 2.0 * n * n,
            Operation::Gemm => 2.0 * n * n * n,
            Operation::StreamCopy => 0.0,
            Operation::StreamScale | Operation::StreamAdd => n,
            Operation::StreamTriad => 2.0 * n,
        }
    }

    /// Elements moved to or from memory for problem size `n` (multiply by the item size for bytes).
    ///
    /// STREAM counts by STREAM's rules: copy and scale move 2 arrays, add and triad 3.
    pub fn elements_moved(self, n: u64) -> f64 {
        let n = n as f64;
        match self {
            Operation::Dot => 2.0 * n,
            Operation::Axpy => 3.0 * n,
            Operation::Gemv => n * n + 2.0 * n,
            Operation::Gemm => 3.0 * n * n,
            Operation::StreamCopy | Operation::StreamScale => 2.0 * n,
            Operation::StreamAdd | Operation::StreamTriad => 3.0 * n,
        }
    }

    /// Number of distinct arrays a STREAM kernel touches (0 for BLAS).
    pub fn stream_arrays(self) -> u32 {
        match self {
            Operation::StreamCopy | Operation::StreamScale => 2,
            Operation::StreamAdd | Operation::StreamTriad => 3,
            _ => 0,
        }
    }

    /// FLOPs per element of a STREAM kernel (0 for BLAS).
    pub fn stream_flops_per_element(self) -> u32 {
        match self {
            Operation::StreamScale | Operation::StreamAdd => 1,
            Operation::StreamTriad => 2,
            _ => 0,
        }
    }
}

names! {
    /// The short name (`dot`, `stream_triad`, ...).
    Operation {
        Dot => "dot",
        Axpy => "axpy",
        Gemv => "gemv",
        Gemm => "gemm",
        StreamCopy => "stream_copy",
        StreamScale => "stream_scale",
        StreamAdd => "stream_add",
        StreamTriad => "stream_triad",
    }
}

// Parsing is not a table: the origin's operation types (`blas1_dot`, ...) are accepted too, and
// an unknown name lists the `--operations` groups as well.
impl FromStr for Operation {
    type Err = ContractError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        Operation::ALL
            .into_iter()
            .find(|o| o.as_str() == lower || o.origin_type() == lower)
            .ok_or_else(|| unknown_operation(s))
    }
}

/// Every name `--operations` accepts, groups first.
pub const OPERATION_NAMES: &[&str] = &[
    "blas",
    "blas1",
    "blas2",
    "blas3",
    "stream",
    "matmul",
    "memory",
    "dot",
    "axpy",
    "gemv",
    "gemm",
    "stream_copy",
    "stream_scale",
    "stream_add",
    "stream_triad",
];

fn unknown_operation(s: &str) -> ContractError {
    ContractError::UnknownName {
        what: "operation",
        got: crate::quote::bounded(s),
        expected: OPERATION_NAMES.join(", "),
    }
}

/// Expands a comma-separated `--operations` list into the operations to run, in report order.
///
/// Every listed name runs (the origin honoured only the first BLAS level); groups expand
/// (`blas` = `blas1,blas2,blas3`, `stream` = the four STREAM kernels, legacy `matmul` = `gemm`,
/// `memory` = `stream`); an unknown or empty name is an error that names it.
pub fn parse_operations(list: &str) -> Result<Vec<Operation>, ContractError> {
    use Operation::*;
    let mut out = Vec::new();
    for raw in list.split(',') {
        let name = raw.trim().to_ascii_lowercase();
        let group: &[Operation] = match name.as_str() {
            "blas" => &[Dot, Axpy, Gemv, Gemm],
            "blas1" => &[Dot, Axpy],
            "blas2" => &[Gemv],
            "blas3" | "matmul" => &[Gemm],
            "stream" | "memory" => &[StreamCopy, StreamScale, StreamAdd, StreamTriad],
            _ => {
                let op: Operation = name.parse().map_err(|_| unknown_operation(raw))?;
                out.push(op);
                continue;
            }
        };
        out.extend_from_slice(group);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_expand_and_every_listed_level_runs() {
        let ops = parse_operations("blas1,blas3").unwrap();
        assert_eq!(ops, vec![Operation::Dot, Operation::Axpy, Operation::Gemm]);
        assert_eq!(
            parse_operations("blas,stream").unwrap(),
            Operation::ALL.to_vec()
        );
        assert_eq!(parse_operations("matmul").unwrap(), vec![Operation::Gemm]);
        assert_eq!(parse_operations("memory").unwrap().len(), 4);
        assert_eq!(
            parse_operations(" gemv , stream_triad,gemv").unwrap(),
            vec![Operation::Gemv, Operation::StreamTriad]
        );
    }

    #[test]
    fn unknown_operation_is_an_error_naming_it() {
        let err = parse_operations("blas,fft").unwrap_err().to_string();
        assert!(err.contains("'fft'"), "{err}");
        assert!(parse_operations("").is_err());
        assert_eq!(
            "fft".parse::<Operation>().unwrap_err().to_string(),
            format!(
                "unknown operation 'fft' (expected one of: {})",
                OPERATION_NAMES.join(", ")
            )
        );
    }

    #[test]
    fn names_and_origin_types_parse() {
        for op in Operation::ALL {
            assert_eq!(op.to_string().parse::<Operation>().unwrap(), op);
            assert_eq!(op.origin_type().parse::<Operation>().unwrap(), op);
        }
        assert_eq!(Operation::StreamTriad.to_string(), "stream_triad");
        assert_eq!(" BLAS1_Dot".parse::<Operation>().unwrap(), Operation::Dot);
    }

    #[test]
    fn counts_follow_the_origin_and_stream_rules() {
        assert_eq!(Operation::Gemm.flops(10), 2000.0);
        assert_eq!(Operation::Gemm.elements_moved(10), 300.0);
        assert_eq!(Operation::Gemv.elements_moved(10), 120.0);
        assert_eq!(Operation::Axpy.elements_moved(10), 30.0);
        assert_eq!(Operation::StreamCopy.elements_moved(10), 20.0);
        assert_eq!(Operation::StreamTriad.elements_moved(10), 30.0);
        assert_eq!(Operation::StreamTriad.flops(10), 20.0);
        assert_eq!(Operation::StreamCopy.stream_arrays(), 2);
        assert_eq!(Operation::StreamAdd.stream_arrays(), 3);
    }
}
