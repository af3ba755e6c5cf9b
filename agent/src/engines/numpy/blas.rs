//! The BLAS figures, each one NumPy expression:
//! dot `dot(x, y)`; axpy `y = a*x + y` as NumPy runs it without a temporary
//! (`multiply(x, a, out=t); add(t, y, out=y)`: two passes over a scratch vector allocated
//! outside the timing); gemv `y = a*(A@x) + b*y`; gemm `C = a*(A@B) + b*C` (one BLAS call
//! for floats).

use std::hint::black_box;

use ndarray::{Array1, Array2};

use super::data::{matrix, vector};
use super::element::Element;
use super::ufunc;
use crate::bench::Kernel;

/// The `a` of axpy, gemv and gemm (1 for integers).
pub(crate) const ALPHA: f64 = 1.5;
/// The `b` of gemv and gemm (0 for integers); below 1, so repeated calls stay bounded.
pub(crate) const BETA: f64 = 0.5;

/// `dot(x, y)`, the result kept.
pub(crate) struct Dot<T> {
    pub(crate) x: Array1<T>,
    pub(crate) y: Array1<T>,
    pub(crate) out: T,
}

impl<T: Element> Dot<T> {
    /// Vectors of length `n`.
    pub(crate) fn new(n: u64) -> Result<Dot<T>, String> {
        Ok(Dot {
            x: vector(n, 1)?,
            y: vector(n, 2)?,
            out: T::of(0.0),
        })
    }
}

impl<T: Element> Kernel for Dot<T> {
    fn run(&mut self) -> Result<(), String> {
        self.out = black_box(T::dot(self.x.view(), self.y.view()));
        Ok(())
    }
}

/// `y = a*x + y` in NumPy's two passes.
pub(crate) struct Axpy<T> {
    pub(crate) a: T,
    pub(crate) x: Array1<T>,
    pub(crate) y: Array1<T>,
    /// NumPy's `a*x`, preallocated.
    pub(crate) t: Array1<T>,
}

impl<T: Element> Axpy<T> {
    /// Vectors of length `n`.
    pub(crate) fn new(n: u64) -> Result<Axpy<T>, String> {
        Ok(Axpy {
            a: T::of(ALPHA),
            x: vector(n, 3)?,
            y: vector(n, 4)?,
            t: vector(n, 0)?,
        })
    }
}

impl<T: Element> Kernel for Axpy<T> {
    fn run(&mut self) -> Result<(), String> {
        ufunc::scale(&mut self.t, &self.x, self.a)?;
        ufunc::add_assign(&mut self.y, &self.t)?;
        black_box(&mut self.y);
        Ok(())
    }
}

/// `y = a*(A@x) + b*y`.
pub(crate) struct Gemv<T> {
    pub(crate) alpha: T,
    pub(crate) beta: T,
    pub(crate) a: Array2<T>,
    pub(crate) x: Array1<T>,
    pub(crate) y: Array1<T>,
}

impl<T: Element> Gemv<T> {
    /// An `n` × `n` matrix and vectors of length `n`.
    pub(crate) fn new(n: u64) -> Result<Gemv<T>, String> {
        Ok(Gemv {
            alpha: T::of(ALPHA),
            beta: T::of(BETA),
            a: matrix(n, 5)?,
            x: vector(n, 6)?,
            y: vector(n, 7)?,
        })
    }
}

impl<T: Element> Kernel for Gemv<T> {
    fn run(&mut self) -> Result<(), String> {
        T::gemv(self.alpha, &self.a, &self.x, self.beta, &mut self.y);
        black_box(&mut self.y);
        Ok(())
    }
}

/// `C = a*(A@B) + b*C`.
pub(crate) struct Gemm<T> {
    pub(crate) alpha: T,
    pub(crate) beta: T,
    pub(crate) a: Array2<T>,
    pub(crate) b: Array2<T>,
    pub(crate) c: Array2<T>,
}

impl<T: Element> Gemm<T> {
    /// Three `n` × `n` matrices.
    pub(crate) fn new(n: u64) -> Result<Gemm<T>, String> {
        Ok(Gemm {
            alpha: T::of(ALPHA),
            beta: T::of(BETA),
            a: matrix(n, 8)?,
            b: matrix(n, 9)?,
            c: matrix(n, 10)?,
        })
    }
}

impl<T: Element> Kernel for Gemm<T> {
    fn run(&mut self) -> Result<(), String> {
        T::gemm(self.alpha, &self.a, &self.b, self.beta, &mut self.c);
        black_box(&mut self.c);
        Ok(())
    }
}

#[cfg(test)]
#[path = "blas_tests.rs"]
mod tests;
