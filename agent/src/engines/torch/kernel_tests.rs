//! Every operation at every precision on tiny CPU tensors, against a naive computation in f64.

use fleetcal_proto::{Operation, Precision};
use tch::{Device, Kind, Tensor};

use super::dtype::{random, SCALAR};
use super::kernel::{Call, TorchKernel};
use crate::bench::Kernel;

/// The elements of `t` as f64, flattened.
fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(&t.to_kind(Kind::Double).reshape([-1])).unwrap()
}

/// `v` wrapped into the range of an integer precision, as libtorch's integer arithmetic wraps.
fn wrap(v: f64, p: Precision) -> f64 {
    let v = v as i64;
    match p {
        Precision::Int32 => v as i32 as f64,
        Precision::Int16 => v as i16 as f64,
        Precision::Int8 => v as i8 as f64,
        _ => v as f64,
    }
}

/// Relative tolerance of a result at `p`, against the sum of the magnitudes of its terms.
fn tolerance(p: Precision) -> f64 {
    match p {
        Precision::Fp64 => 1e-12,
        Precision::Fp32 => 1e-5,
        Precision::Fp16 => 2e-3,
        Precision::Bf16 => 1.6e-2,
        _ => 0.0,
    }
}

/// Asserts `got[i]` equals `want[i]` (wrapped for integers) within the tolerance of `p`
/// relative to `scale[i]`, the sum of the magnitudes of the terms of `want[i]`.
fn assert_close(what: &str, p: Precision, got: &[f64], want: &[f64], scale: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what} {p}: length");
    for i in 0..want.len() {
        let (w, g) = if p.is_integer() {
            (wrap(want[i], p), got[i])
        } else {
            (want[i], got[i])
        };
        let tol = tolerance(p) * scale[i].max(1e-30);
        assert!(
            (g - w).abs() <= tol,
            "{what} {p}[{i}]: got {g}, want {w} (tol {tol})"
        );
    }
}

/// Prepares `op` at `p`, snapshots its inputs, runs it once and checks the output.
fn check(op: Operation, p: Precision, n: u64) {
    let mut k = TorchKernel::new(op, p, n, Device::Cpu).unwrap();
    let s = SCALAR as f64;
    let n = n as usize;
    // (inputs before the call, a function of them giving (want, scale), the output tensor)
    let before: Vec<Vec<f64>> = match &k.call {
        Call::Dot { x, y, .. } | Call::Axpy { x, y, .. } => vec![values(x), values(y)],
        Call::Gemv { a, x, y } => vec![values(a), values(x), values(y)],
        Call::Gemm { a, b, c } | Call::IntMm { a, b, c } => vec![values(a), values(b), values(c)],
        Call::Copy { a, .. } => vec![values(a)],
        Call::Scale { c, .. } => vec![values(c)],
        Call::Add { a, b, .. } | Call::Triad { b, c: a, .. } => vec![values(a), values(b)],
    };
    k.run().unwrap();
    k.synchronize().unwrap();
    let (got, want, scale): (Vec<f64>, Vec<f64>, Vec<f64>) = match &k.call {
        Call::Dot { r, .. } => {
            let (x, y) = (&before[0], &before[1]);
            let want = x.iter().zip(y).map(|(a, b)| a * b).sum();
            let scale = x.iter().zip(y).map(|(a, b)| (a * b).abs()).sum();
            (values(r), vec![want], vec![scale])
        }
        Call::Axpy { y, .. } => {
            let (x, y0) = (&before[0], &before[1]);
            let want = x.iter().zip(y0).map(|(x, y)| y + s * x).collect();
            let scale = x
                .iter()
                .zip(y0)
                .map(|(x, y)| y.abs() + (s * x).abs())
                .collect();
            (values(y), want, scale)
        }
        Call::Gemv { y, .. } => {
            let (a, x, y0) = (&before[0], &before[1], &before[2]);
            let row = |i: usize| (0..n).map(move |j| a[i * n + j] * x[j]);
            let want = (0..n).map(|i| y0[i] + row(i).sum::<f64>()).collect();
            let scale = (0..n)
                .map(|i| y0[i].abs() + row(i).map(f64::abs).sum::<f64>())
                .collect();
            (values(y), want, scale)
        }
        Call::Gemm { c, .. } | Call::IntMm { c, .. } => {
            let (a, b, c0) = (&before[0], &before[1], &before[2]);
            let accumulate = matches!(k.call, Call::Gemm { .. });
            let term = |i: usize, j: usize| (0..n).map(move |l| a[i * n + l] * b[l * n + j]);
            let init = |i: usize| if accumulate { c0[i] } else { 0.0 };
            let want = (0..n * n)
                .map(|e| init(e) + term(e / n, e % n).sum::<f64>())
                .collect();
            let scale = (0..n * n)
                .map(|e| init(e).abs() + term(e / n, e % n).map(f64::abs).sum::<f64>())
                .collect();
            (values(c), want, scale)
        }
        Call::Copy { c, .. } => (values(c), before[0].clone(), before[0].clone()),
        Call::Scale { b, .. } => {
            let want: Vec<f64> = before[0].iter().map(|c| s * c).collect();
            let scale = want.iter().map(|w| w.abs()).collect();
            (values(b), want, scale)
        }
        Call::Add { c: out, .. } | Call::Triad { a: out, .. } => {
            let (u, v) = (&before[0], &before[1]);
            let f = if op == Operation::StreamTriad { s } else { 1.0 };
            // add: c = a + b; triad: a = b + s*c (u = c, v = b here).
            let want = u.iter().zip(v).map(|(u, v)| v + f * u).collect();
            let scale = u
                .iter()
                .zip(v)
                .map(|(u, v)| v.abs() + (f * u).abs())
                .collect();
            (values(out), want, scale)
        }
    };
    assert_close(op.as_str(), p, &got, &want, &scale);
}

#[test]
fn every_operation_is_correct_at_every_precision_on_cpu() {
    for p in Precision::ALL {
        for op in Operation::ALL {
            let n = if op.is_stream() { 1000 } else { 24 };
            check(op, p, n);
        }
    }
}

#[test]
fn repeated_calls_keep_working_on_the_same_tensors() {
    let mut k = TorchKernel::new(Operation::Gemm, Precision::Fp32, 16, Device::Cpu).unwrap();
    for _ in 0..5 {
        k.run().unwrap();
    }
    let Call::Gemm { c, .. } = &k.call else {
        panic!("fp32 gemm on cpu is an addmm");
    };
    assert_eq!(c.size(), vec![16, 16]);
    assert!(values(c).iter().all(|v| v.is_finite()));
}

#[test]
fn a_libtorch_refusal_is_an_error_with_its_reason_not_a_panic() {
    // torch._int_mm takes only int8 inputs: an int16 one is refused by libtorch itself.
    let mut k = TorchKernel::new(Operation::Gemm, Precision::Int16, 32, Device::Cpu).unwrap();
    let Call::Gemm { a, b, .. } = &k.call else {
        panic!("int16 gemm on cpu is an addmm");
    };
    let (a, b) = (a.shallow_clone(), b.shallow_clone());
    let c = Tensor::zeros([32, 32], (Kind::Int, Device::Cpu));
    k.call = Call::IntMm { a, b, c };
    let err = k.run().unwrap_err();
    assert!(err.starts_with("libtorch: "), "{err}");
    assert!(!err.contains('\n'), "{err}");
    assert!(err.len() > "libtorch: ".len() + 10, "{err}");
}

#[test]
fn random_inputs_differ_between_tensors() {
    let a = values(&random(&[256], Precision::Fp32, Device::Cpu).unwrap());
    let b = values(&random(&[256], Precision::Fp32, Device::Cpu).unwrap());
    assert_ne!(a, b);
}

#[test]
fn only_int8_gemm_on_cuda_takes_the_int_mm_path() {
    use super::kernel::uses_int_mm;
    assert!(uses_int_mm(Precision::Int8, Device::Cuda(0)));
    assert!(!uses_int_mm(Precision::Int8, Device::Cpu));
    assert!(!uses_int_mm(Precision::Int16, Device::Cuda(0)));
    assert!(!uses_int_mm(Precision::Fp16, Device::Cuda(0)));
}
