//! Precisions as libtorch element kinds, and the tensors every kernel starts from.
//!
//! Inputs are allocated and filled once per figure, outside the timed region: floats are
//! `randn` scaled by [`FLOAT_SCALE`] (drawn in fp32, then converted, so fp16/bf16 inputs hold
//! the same values on every device), integers are uniform in `[-INT_BOUND, INT_BOUND]` (the
//! numpy engine's range). Floats are zero-mean, unlike the numpy engine's uniform `[0, 1)`,
//! because axpy, gemv and gemm accumulate in place on every call (`y += ...`): zero-mean
//! inputs keep repeated fp16 calls far from its range limit. Integer results that leave the
//! type's range wrap, as they do in PyTorch. Values do not change the work done.

use fleetcal_proto::Precision;
use tch::{Device, Kind, TchError, Tensor};

/// The scalar of axpy (`a`) and of the STREAM scale and triad kernels (`s`): STREAM's 3.
pub const SCALAR: i64 = 3;

/// Standard deviation of the float inputs.
pub const FLOAT_SCALE: f64 = 0.5;

/// Integer inputs lie in `[-INT_BOUND, INT_BOUND]`.
pub const INT_BOUND: i64 = 3;

/// The libtorch element kind that stores `precision` (its item size is `precision.item_size()`).
pub fn kind(precision: Precision) -> Kind {
    match precision {
        Precision::Fp64 => Kind::Double,
        Precision::Fp32 => Kind::Float,
        Precision::Fp16 => Kind::Half,
        Precision::Bf16 => Kind::BFloat16,
        Precision::Int64 => Kind::Int64,
        Precision::Int32 => Kind::Int,
        Precision::Int16 => Kind::Int16,
        Precision::Int8 => Kind::Int8,
    }
}

/// libtorch's error as a one-line reason: the first line, without tch's prefix or the C++
/// backtrace that follows it.
pub fn reason(err: TchError) -> String {
    let text = match err {
        TchError::Torch(msg) => msg,
        other => other.to_string(),
    };
    let first = text.lines().next().unwrap_or_default().trim();
    format!("libtorch: {first}")
}

/// A tensor of `shape` at `precision` on `device`, filled with small random values.
pub fn random(shape: &[i64], precision: Precision, device: Device) -> Result<Tensor, String> {
    let tensor = if precision.is_integer() {
        Tensor::f_randint_low(-INT_BOUND, INT_BOUND + 1, shape, (kind(precision), device))
    } else {
        Tensor::f_randn(shape, (Kind::Float, device))
            .and_then(|t| t.f_mul_scalar(FLOAT_SCALE))
            .and_then(|t| t.f_to_kind(kind(precision)))
    };
    tensor.map_err(reason)
}

/// A zero-filled tensor of `shape` at `precision` on `device`.
pub fn zeros(shape: &[i64], precision: Precision, device: Device) -> Result<Tensor, String> {
    Tensor::f_zeros(shape, (kind(precision), device)).map_err(reason)
}

/// A 0-dimensional tensor holding [`SCALAR`] at `precision` on `device`: the scalar operand of
/// `mul.out` (scale) and of the fused `addcmul` kernels (axpy, triad).
pub fn scalar(precision: Precision, device: Device) -> Result<Tensor, String> {
    Tensor::f_full([0i64; 0].as_slice(), SCALAR, (kind(precision), device)).map_err(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_have_the_precision_item_size_and_bounded_values() {
        for p in Precision::ALL {
            let t = random(&[64], p, Device::Cpu).unwrap();
            assert_eq!(t.kind(), kind(p), "{p}");
            assert_eq!(t.kind().elt_size_in_bytes(), p.item_size(), "{p}");
            let max = t.abs().max().double_value(&[]);
            if p.is_integer() {
                assert!(max <= INT_BOUND as f64, "{p}: {max}");
            } else {
                assert!(max > 0.0 && max < 10.0 * FLOAT_SCALE, "{p}: {max}");
            }
        }
        let s = scalar(Precision::Int8, Device::Cpu).unwrap();
        assert_eq!(s.size(), Vec::<i64>::new());
        assert_eq!(s.int64_value(&[]), SCALAR);
    }

    #[test]
    fn reason_keeps_the_first_line_of_libtorch_errors() {
        let err = TchError::Torch(
            "\"addmm_cuda\" not implemented for 'Int'\nException raised from x".into(),
        );
        assert_eq!(
            reason(err),
            "libtorch: \"addmm_cuda\" not implemented for 'Int'"
        );
    }
}
