//! The element types of the numpy engine and how NumPy computes with each.
//!
//! - `f32`, `f64`: dot, gemv and gemm are one OpenBLAS call each (NumPy's float `dot`/`@`
//!   call OpenBLAS too), multi-threaded by OpenBLAS.
//! - `f16` ([`half::f16`]): NumPy's float16 has no BLAS; its dot and matmul are plain loops
//!   that accumulate in `f32` (row × column, the column strided) and round once at the end.
//! - integers, as [`Wrapping`] so that overflow wraps like NumPy's C arithmetic and can never
//!   panic: matmul is NumPy's plain row × strided-column loop ([`numpy_matmul`], shared with
//!   fp16), gemv a row dot per output, and dot accumulates in 64 bits and truncates at the
//!   end (NumPy's `@name@_dot`).
//!
//! Everything that is not a float BLAS call is single-threaded, as in NumPy.

use std::hint::black_box;
use std::num::Wrapping;

use half::f16;
use ndarray::linalg::{general_mat_mul, general_mat_vec_mul};
use ndarray::{Array1, Array2, ArrayView1, Zip};

/// One NumPy dtype as the engine computes with it.
pub(crate) trait Element: Copy + Send + std::fmt::Debug + PartialEq + 'static {
    /// A value from a small real number (truncated toward zero for integers).
    fn of(v: f64) -> Self;
    /// An input value from a uniform sample `u` in [0, 1): `u` for floats, an integer in
    /// -3..=3 for integers (small, so products stay readable; overflow wraps anyway).
    fn sample(u: f64) -> Self;
    /// The value as `f64`, for checks.
    #[cfg_attr(not(test), allow(dead_code))]
    fn to_f64(self) -> f64;
    /// `self + o`, with the type's rounding or wrapping.
    fn add(self, o: Self) -> Self;
    /// `self * o`, with the type's rounding or wrapping.
    fn mul(self, o: Self) -> Self;
    /// `dot(x, y)`.
    fn dot(x: ArrayView1<Self>, y: ArrayView1<Self>) -> Self;
    /// `y = alpha*(A@x) + beta*y`.
    fn gemv(alpha: Self, a: &Array2<Self>, x: &Array1<Self>, beta: Self, y: &mut Array1<Self>);
    /// `C = alpha*(A@B) + beta*C`.
    fn gemm(alpha: Self, a: &Array2<Self>, b: &Array2<Self>, beta: Self, c: &mut Array2<Self>);
}

macro_rules! float_element {
    ($t:ty) => {
        impl Element for $t {
            fn of(v: f64) -> Self {
                v as $t
            }
            fn sample(u: f64) -> Self {
                u as $t
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn add(self, o: Self) -> Self {
                self + o
            }
            fn mul(self, o: Self) -> Self {
                self * o
            }
            fn dot(x: ArrayView1<Self>, y: ArrayView1<Self>) -> Self {
                x.dot(&y)
            }
            fn gemv(
                alpha: Self,
                a: &Array2<Self>,
                x: &Array1<Self>,
                beta: Self,
                y: &mut Array1<Self>,
            ) {
                general_mat_vec_mul(alpha, a, x, beta, y);
            }
            fn gemm(
                alpha: Self,
                a: &Array2<Self>,
                b: &Array2<Self>,
                beta: Self,
                c: &mut Array2<Self>,
            ) {
                general_mat_mul(alpha, a, b, beta, c);
            }
        }
    };
}

float_element!(f32);
float_element!(f64);

macro_rules! int_element {
    ($t:ty) => {
        impl Element for Wrapping<$t> {
            fn of(v: f64) -> Self {
                Wrapping(v as $t)
            }
            fn sample(u: f64) -> Self {
                Wrapping(((u * 7.0).floor() - 3.0) as $t)
            }
            fn to_f64(self) -> f64 {
                self.0 as f64
            }
            fn add(self, o: Self) -> Self {
                self + o
            }
            fn mul(self, o: Self) -> Self {
                self * o
            }
            fn dot(x: ArrayView1<Self>, y: ArrayView1<Self>) -> Self {
                let sum = Zip::from(&x).and(&y).fold(0i64, |s, a, b| {
                    s.wrapping_add((a.0 as i64).wrapping_mul(b.0 as i64))
                });
                Wrapping(sum as $t)
            }
            fn gemv(
                alpha: Self,
                a: &Array2<Self>,
                x: &Array1<Self>,
                beta: Self,
                y: &mut Array1<Self>,
            ) {
                general_mat_vec_mul(alpha, a, x, beta, y);
            }
            fn gemm(
                alpha: Self,
                a: &Array2<Self>,
                b: &Array2<Self>,
                beta: Self,
                c: &mut Array2<Self>,
            ) {
                numpy_matmul(a, b, c, |sum: <Self as IntAcc>::Acc, c: Self| {
                    alpha * <Self as IntAcc>::narrow(sum) + beta * c
                });
            }
        }
    };
}

int_element!(i64);
int_element!(i32);
int_element!(i16);
int_element!(i8);

impl Element for f16 {
    fn of(v: f64) -> Self {
        f16::from_f64(v)
    }
    fn sample(u: f64) -> Self {
        f16::from_f64(u)
    }
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    fn add(self, o: Self) -> Self {
        self + o
    }
    fn mul(self, o: Self) -> Self {
        self * o
    }
    fn dot(x: ArrayView1<Self>, y: ArrayView1<Self>) -> Self {
        let sum = Zip::from(&x)
            .and(&y)
            .fold(0f32, |s, &a, &b| s + widen(a) * widen(b));
        narrow(sum)
    }
    fn gemv(alpha: Self, a: &Array2<Self>, x: &Array1<Self>, beta: Self, y: &mut Array1<Self>) {
        let (alpha, beta) = (widen(alpha), widen(beta));
        Zip::from(a.rows()).and(y).for_each(|row, y| {
            let sum = Zip::from(&row)
                .and(x)
                .fold(0f32, |s, &a, &b| s + widen(a) * widen(b));
            *y = narrow(alpha * sum + beta * widen(*y));
        });
    }
    fn gemm(alpha: Self, a: &Array2<Self>, b: &Array2<Self>, beta: Self, c: &mut Array2<Self>) {
        let (alpha, beta) = (widen(alpha), widen(beta));
        numpy_matmul(a, b, c, |sum: HalfSum, c: f16| {
            narrow(alpha * sum.0 + beta * widen(c))
        });
    }
}

/// float16 → float32 as NumPy converts: NumPy's x86-64 wheels are built for a baseline
/// without F16C, so `npy_half_to_float` is an out-of-line bit-manipulation routine called
/// for every element; on aarch64 it is the hardware conversion. The engine does the same
/// (software, not inlined, on x86-64) so its fp16 loops run at NumPy's speed.
#[cfg_attr(target_arch = "x86_64", inline(never))]
fn widen(h: f16) -> f32 {
    if cfg!(target_arch = "x86_64") {
        h.to_f32_const()
    } else {
        h.to_f32()
    }
}

/// float32 → float16, the counterpart of [`widen`].
#[inline]
fn narrow(v: f32) -> f16 {
    if cfg!(target_arch = "x86_64") {
        f16::from_f32_const(v)
    } else {
        f16::from_f32(v)
    }
}

/// An fp16 dot product's float32 accumulator, as a matmul element.
#[derive(Clone, Copy)]
struct HalfSum(f32);

/// What one matmul output element accumulates in, and from which inputs.
trait Accumulate<T>: Copy {
    /// Whether NumPy's loop accumulates through memory (`*op += a*b` re-read and re-stored
    /// every step, a store-to-load chain that also keeps the walk down the column one load
    /// at a time). Measured against NumPy 2.4 on x86-64: so for 16-, 32- and 64-bit
    /// integers (int16 carried in 32 bits, see [`Wide16`]); its 8-bit and float16 loops run
    /// at register speed.
    const THROUGH_MEMORY: bool;
    fn zero() -> Self;
    fn mul_add(self, a: T, b: T) -> Self;
}

impl Accumulate<f16> for HalfSum {
    const THROUGH_MEMORY: bool = false;
    fn zero() -> Self {
        HalfSum(0.0)
    }
    #[inline]
    fn mul_add(self, a: f16, b: f16) -> Self {
        HalfSum(self.0 + widen(a) * widen(b))
    }
}

macro_rules! wrapping_accumulate {
    ($($t:ty: $memory:expr),*) => {$(
        impl Accumulate<Wrapping<$t>> for Wrapping<$t> {
            const THROUGH_MEMORY: bool = $memory;
            fn zero() -> Self {
                Wrapping(0)
            }
            #[inline]
            fn mul_add(self, a: Wrapping<$t>, b: Wrapping<$t>) -> Self {
                self + a * b
            }
        }
    )*};
}

wrapping_accumulate!(i64: true, i32: true, i16: false, i8: false);

/// An int16 matmul sum carried in 32 bits through memory: the same value modulo 2^16 as
/// NumPy's 16-bit `*op +=`, at NumPy's speed (a 16-bit value through memory is far slower).
#[derive(Clone, Copy)]
struct Wide16(Wrapping<i32>);

impl Accumulate<Wrapping<i16>> for Wide16 {
    const THROUGH_MEMORY: bool = true;
    fn zero() -> Self {
        Wide16(Wrapping(0))
    }
    #[inline]
    fn mul_add(self, a: Wrapping<i16>, b: Wrapping<i16>) -> Self {
        Wide16(self.0 + Wrapping(i32::from(a.0)) * Wrapping(i32::from(b.0)))
    }
}

/// The accumulator an integer matmul uses, and its value in the element type.
trait IntAcc: Sized {
    type Acc: Accumulate<Self>;
    fn narrow(acc: Self::Acc) -> Self;
}

macro_rules! same_acc {
    ($($t:ty),*) => {$(
        impl IntAcc for Wrapping<$t> {
            type Acc = Wrapping<$t>;
            fn narrow(acc: Self::Acc) -> Self {
                acc
            }
        }
    )*};
}

same_acc!(i64, i32, i8);

impl IntAcc for Wrapping<i16> {
    type Acc = Wide16;
    fn narrow(acc: Wide16) -> Self {
        // truncation keeps the value modulo 2^16, as 16-bit wrapping arithmetic would
        Wrapping(acc.0 .0 as i16)
    }
}

/// NumPy's non-BLAS matmul (`_matmul_inner_noblas`): for each output row and column, the
/// row of A times the strided column of B, then `finish(sum, c)` stores the element.
fn numpy_matmul<T: Copy, S: Accumulate<T>>(
    a: &Array2<T>,
    b: &Array2<T>,
    c: &mut Array2<T>,
    finish: impl Fn(S, T) -> T,
) {
    let (k, n) = b.dim();
    // no copies for the engine's own (row-major) matrices
    let (a, b) = (a.as_standard_layout(), b.as_standard_layout());
    let a = a.as_slice().expect("a standard-layout array is one slice");
    let b = b.as_slice().expect("a standard-layout array is one slice");
    for (a_row, c_row) in a.chunks_exact(k.max(1)).zip(c.rows_mut()) {
        for (j, c) in c_row.into_iter().enumerate() {
            let col = b[j..].iter().step_by(n.max(1));
            let sum = if S::THROUGH_MEMORY {
                a_row
                    .iter()
                    .zip(col)
                    .fold(S::zero(), |s, (&x, &y)| black_box(s.mul_add(x, y)))
            } else {
                a_row
                    .iter()
                    .zip(col)
                    .fold(S::zero(), |s, (&x, &y)| s.mul_add(x, y))
            };
            *c = finish(sum, *c);
        }
    }
}
