//! Each BLAS figure against a naive loop in exact (`f64` / `i128`) arithmetic, for every
//! precision the engine supports.

use std::num::Wrapping;

use half::f16;
use ndarray::Array1;

use super::*;
use crate::bench::Kernel;

/// How a computed element is judged against the exact value.
trait Check: Element {
    /// `got` matches `exact` (whose terms sum to `magnitude` in absolute value).
    fn close(got: Self, exact: f64, magnitude: f64) -> bool;
}

macro_rules! float_check {
    ($t:ty, $tol:expr) => {
        impl Check for $t {
            fn close(got: Self, exact: f64, magnitude: f64) -> bool {
                (got.to_f64() - exact).abs() <= $tol * magnitude.max(1.0)
            }
        }
    };
}

float_check!(f64, 1e-12);
float_check!(f32, 1e-5);
float_check!(f16, 4e-3);

macro_rules! int_check {
    ($t:ty) => {
        impl Check for Wrapping<$t> {
            fn close(got: Self, exact: f64, _magnitude: f64) -> bool {
                // the exact value wrapped to the type's width, as NumPy's C arithmetic does
                got.0 == (exact as i128) as $t
            }
        }
    };
}

int_check!(i64);
int_check!(i32);
int_check!(i16);
int_check!(i8);

fn f(v: impl Element) -> f64 {
    v.to_f64()
}

fn dot_is_right<T: Check>() {
    // 130 is past ndarray's BLAS cut-off for floats; 5 stays under it
    for n in [5, 130] {
        let mut k = Dot::<T>::new(n).unwrap();
        k.run().unwrap();
        let (exact, mag) = k.x.iter().zip(&k.y).fold((0.0, 0.0), |(s, m), (&x, &y)| {
            (s + f(x) * f(y), m + (f(x) * f(y)).abs())
        });
        assert!(
            T::close(k.out, exact, mag),
            "dot n={n}: {:?} vs {exact}",
            k.out
        );
    }
}

fn axpy_is_right<T: Check>() {
    let mut k = Axpy::<T>::new(33).unwrap();
    let y0 = k.y.clone();
    k.run().unwrap();
    for i in 0..33 {
        let exact = f(k.a) * f(k.x[i]) + f(y0[i]);
        assert!(T::close(k.y[i], exact, exact.abs()), "axpy element {i}");
    }
}

fn gemv_is_right<T: Check>() {
    let n = 19;
    let mut k = Gemv::<T>::new(n).unwrap();
    let y0 = k.y.clone();
    k.run().unwrap();
    for i in 0..n as usize {
        let (sum, mag) = (0..n as usize).fold((0.0, 0.0), |(s, m), j| {
            let p = f(k.a[(i, j)]) * f(k.x[j]);
            (s + p, m + p.abs())
        });
        let exact = f(k.alpha) * sum + f(k.beta) * f(y0[i]);
        assert!(T::close(k.y[i], exact, mag * 1.5 + 1.0), "gemv row {i}");
    }
}

fn gemm_is_right<T: Check>() {
    let n = 17; // past ndarray's BLAS cut-off for floats
    let mut k = Gemm::<T>::new(n).unwrap();
    let c0 = k.c.clone();
    k.run().unwrap();
    let n = n as usize;
    for i in 0..n {
        for j in 0..n {
            let (sum, mag) = (0..n).fold((0.0, 0.0), |(s, m), x| {
                let p = f(k.a[(i, x)]) * f(k.b[(x, j)]);
                (s + p, m + p.abs())
            });
            let exact = f(k.alpha) * sum + f(k.beta) * f(c0[(i, j)]);
            assert!(
                T::close(k.c[(i, j)], exact, mag * 1.5 + 1.0),
                "gemm ({i}, {j}): {:?} vs {exact}",
                k.c[(i, j)]
            );
        }
    }
}

fn all_ops<T: Check>() {
    dot_is_right::<T>();
    axpy_is_right::<T>();
    gemv_is_right::<T>();
    gemm_is_right::<T>();
}

#[test]
fn fp64_ops_match_a_naive_loop() {
    all_ops::<f64>();
}

#[test]
fn fp32_ops_match_a_naive_loop() {
    all_ops::<f32>();
}

#[test]
fn fp16_ops_match_a_naive_loop() {
    all_ops::<f16>();
}

#[test]
fn integer_ops_match_a_naive_loop() {
    all_ops::<Wrapping<i64>>();
    all_ops::<Wrapping<i32>>();
    all_ops::<Wrapping<i16>>();
    all_ops::<Wrapping<i8>>();
}

#[test]
fn integer_overflow_wraps_like_numpy_instead_of_panicking() {
    let mut k = Dot::<Wrapping<i8>>::new(1000).unwrap();
    k.x.fill(Wrapping(100));
    k.y.fill(Wrapping(100));
    k.run().unwrap();
    assert_eq!(k.out.0, 10_000_000i64 as i8);

    let mut g = Gemm::<Wrapping<i16>>::new(40).unwrap();
    g.a.fill(Wrapping(i16::MAX));
    g.b.fill(Wrapping(3));
    g.run().unwrap();
    let exact = 40 * 3 * i16::MAX as i128; // alpha 1, beta 0 for integers
    assert!(g.c.iter().all(|c| c.0 == exact as i16));

    let mut a = Axpy::<Wrapping<i32>>::new(4).unwrap();
    a.x = Array1::from_elem(4, Wrapping(i32::MAX));
    a.y = Array1::from_elem(4, Wrapping(i32::MAX));
    a.run().unwrap();
    assert!(a.y.iter().all(|v| v.0 == (2 * i32::MAX as i128) as i32));
}

#[test]
fn integer_scalars_truncate_and_float_scalars_are_exact() {
    assert_eq!(Wrapping::<i32>::of(ALPHA).0, 1);
    assert_eq!(Wrapping::<i32>::of(BETA).0, 0);
    assert_eq!(f16::of(ALPHA).to_f64(), 1.5);
    assert_eq!(f32::of(BETA), 0.5);
}
