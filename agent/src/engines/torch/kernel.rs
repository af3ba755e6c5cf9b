//! One prepared pytorch figure: its tensors, allocated once, and the one libtorch call that is
//! timed.
//!
//! Every call writes into a tensor allocated in [`TorchKernel::new`] (`out=` or in place), so
//! the timed region allocates nothing. tch 0.26 drops the `alpha`/`beta` arguments of `add`,
//! `addmv` and `addmm`, so the calls are:
//!
//! | operation | libtorch call | note |
//! |---|---|---|
//! | dot | `torch.dot(x, y, out=r)` | |
//! | axpy | `y.addcmul_(x, a)` | `y += x*a`, `a` a 0-dim tensor: one fused pass |
//! | gemv | `y.addmv_(A, x)` | `y = A@x + y` (alpha = beta = 1) |
//! | gemm | `C.addmm_(A, B)` | `C = A@B + C` (alpha = beta = 1) |
//! | gemm int8 on CUDA | `torch._int_mm(A, B, out=C)` | int8 × int8 → int32 (Tensor Cores) |
//! | copy | `c.copy_(a)` | |
//! | scale | `torch.mul(c, s, out=b)` | `s` a 0-dim tensor, as Python passes it to `mul.out` |
//! | add | `torch.add(a, b, out=c)` | |
//! | triad | `torch.addcmul(b, c, s, out=a)` | `a = b + c*s`: one pass, no temporary |
//!
//! tch's `mul_scalar_out` is not that call: libtorch's generated `mul.Scalar_out` computes
//! into a fresh temporary and copies it (≈ 6× slower on 256 MiB arrays), so scale, like axpy and
//! triad, takes its scalar as a 0-dim tensor.
//!
//! BLAS cost does not depend on the values of alpha and beta, so gemv and gemm do the same
//! work as `a*(A@x) + b*y` with a library that exposes them.

use fleetcal_proto::{Operation, Precision};
use tch::{Device, Kind, Tensor};

use super::dtype::{random, reason, scalar, zeros};
use crate::bench::Kernel;

/// The tensors of one figure, by operation.
pub(crate) enum Call {
    Dot {
        x: Tensor,
        y: Tensor,
        r: Tensor,
    },
    Axpy {
        x: Tensor,
        y: Tensor,
        a: Tensor,
    },
    Gemv {
        a: Tensor,
        x: Tensor,
        y: Tensor,
    },
    Gemm {
        a: Tensor,
        b: Tensor,
        c: Tensor,
    },
    IntMm {
        a: Tensor,
        b: Tensor,
        c: Tensor,
    },
    Copy {
        a: Tensor,
        c: Tensor,
    },
    Scale {
        b: Tensor,
        c: Tensor,
        s: Tensor,
    },
    Add {
        a: Tensor,
        b: Tensor,
        c: Tensor,
    },
    Triad {
        a: Tensor,
        b: Tensor,
        c: Tensor,
        s: Tensor,
    },
}

/// A prepared figure of the pytorch engine.
pub struct TorchKernel {
    pub(crate) call: Call,
    device: Device,
}

/// Whether a GEMM at `precision` on `device` runs `torch._int_mm` rather than `addmm`.
pub fn uses_int_mm(precision: Precision, device: Device) -> bool {
    precision == Precision::Int8 && device.is_cuda()
}

impl TorchKernel {
    /// Allocates and fills the tensors of `op` at `precision` for problem size `size`
    /// (vector length, matrix order, or STREAM elements per array) on `device`.
    pub fn new(
        op: Operation,
        precision: Precision,
        size: u64,
        device: Device,
    ) -> Result<TorchKernel, String> {
        let n = i64::try_from(size).map_err(|_| format!("size {size} is too large"))?;
        let p = precision;
        let rand = |shape: &[i64]| random(shape, p, device);
        let call = match op {
            Operation::Dot => Call::Dot {
                x: rand(&[n])?,
                y: rand(&[n])?,
                r: zeros(&[], p, device)?,
            },
            Operation::Axpy => Call::Axpy {
                x: rand(&[n])?,
                y: rand(&[n])?,
                a: scalar(p, device)?,
            },
            Operation::Gemv => Call::Gemv {
                a: rand(&[n, n])?,
                x: rand(&[n])?,
                y: rand(&[n])?,
            },
            Operation::Gemm if uses_int_mm(p, device) => Call::IntMm {
                a: rand(&[n, n])?,
                b: rand(&[n, n])?,
                c: Tensor::f_zeros([n, n].as_slice(), (Kind::Int, device)).map_err(reason)?,
            },
            Operation::Gemm => Call::Gemm {
                a: rand(&[n, n])?,
                b: rand(&[n, n])?,
                c: rand(&[n, n])?,
            },
            Operation::StreamCopy => Call::Copy {
                a: rand(&[n])?,
                c: zeros(&[n], p, device)?,
            },
            Operation::StreamScale => Call::Scale {
                b: zeros(&[n], p, device)?,
                c: rand(&[n])?,
                s: scalar(p, device)?,
            },
            Operation::StreamAdd => Call::Add {
                a: rand(&[n])?,
                b: rand(&[n])?,
                c: zeros(&[n], p, device)?,
            },
            Operation::StreamTriad => Call::Triad {
                a: zeros(&[n], p, device)?,
                b: rand(&[n])?,
                c: rand(&[n])?,
                s: scalar(p, device)?,
            },
        };
        Ok(TorchKernel { call, device })
    }

    fn call_once(&mut self) -> Result<(), tch::TchError> {
        match &mut self.call {
            Call::Dot { x, y, r } => x.f_dot_out(r, y).map(drop),
            Call::Axpy { x, y, a } => y.f_addcmul_(x, a).map(drop),
            Call::Gemv { a, x, y } => y.f_addmv_(a, x).map(drop),
            Call::Gemm { a, b, c } => c.f_addmm_(a, b).map(drop),
            Call::IntMm { a, b, c } => a.f_internal_int_mm_out(c, b).map(drop),
            Call::Copy { a, c } => c.f_copy_(a),
            Call::Scale { b, c, s } => c.f_mul_out(b, s).map(drop),
            Call::Add { a, b, c } => a.f_add_out(c, b).map(drop),
            Call::Triad { a, b, c, s } => b.f_addcmul_out(a, c, s).map(drop),
        }
    }
}

impl Kernel for TorchKernel {
    fn run(&mut self) -> Result<(), String> {
        tch::no_grad(|| self.call_once()).map_err(reason)
    }

    fn synchronize(&mut self) -> Result<(), String> {
        synchronize(self.device)
    }
}

/// Waits for all work on `device` (CUDA); a no-op on the CPU, where calls return finished.
pub fn synchronize(device: Device) -> Result<(), String> {
    let Device::Cuda(index) = device else {
        return Ok(());
    };
    // tch's synchronize has no fallible variant: it panics on a CUDA error (e.g. an
    // asynchronous fault of an earlier kernel), which must become a failed figure instead.
    std::panic::catch_unwind(|| tch::Cuda::synchronize(index as i64)).map_err(|panic| {
        let msg = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        format!(
            "cuda synchronize failed: {}",
            msg.lines().next().unwrap_or("unknown error")
        )
    })
}
