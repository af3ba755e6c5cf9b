//! The STREAM kernels as NumPy runs them without temporaries (its `out=` forms): copy
//! `copyto(c, a)`, scale `multiply(c, s, out=b)`, add `add(a, b, out=c)`, and triad
//! `multiply(c, s, out=a); add(a, b, out=a)` — two passes, since NumPy cannot fuse them (a
//! fused pass is about 1.35x faster than anything NumPy code achieves). Bytes are counted by
//! STREAM's rule (2 or 3 arrays) whatever the passes move, so the figures compare with any
//! NumPy STREAM script's.

use std::hint::black_box;

use fleetcal_proto::Operation;
use ndarray::Array1;

use super::data::vector;
use super::element::Element;
use super::ufunc;
use crate::bench::Kernel;

/// The STREAM scalar `s`.
pub(crate) const SCALAR: f64 = 3.0;

/// One STREAM kernel over its arrays (unused arrays are empty).
pub(crate) struct Stream<T> {
    pub(crate) op: Operation,
    pub(crate) s: T,
    pub(crate) a: Array1<T>,
    pub(crate) b: Array1<T>,
    pub(crate) c: Array1<T>,
}

impl<T: Element> Stream<T> {
    /// The arrays `op` touches, `n` elements each; `Err` if `op` is not a STREAM kernel.
    pub(crate) fn new(op: Operation, n: u64) -> Result<Stream<T>, String> {
        let (a, b, c) = match op {
            Operation::StreamCopy => (true, false, true),
            Operation::StreamScale => (false, true, true),
            Operation::StreamAdd | Operation::StreamTriad => (true, true, true),
            other => return Err(format!("'{other}' is not a STREAM kernel")),
        };
        let array = |used: bool, seed| {
            if used {
                vector(n, seed)
            } else {
                Ok(Array1::from_vec(Vec::new()))
            }
        };
        Ok(Stream {
            op,
            s: T::of(SCALAR),
            a: array(a, 11)?,
            b: array(b, 12)?,
            c: array(c, 13)?,
        })
    }
}

impl<T: Element> Kernel for Stream<T> {
    fn run(&mut self) -> Result<(), String> {
        let s = self.s;
        match self.op {
            Operation::StreamCopy => {
                ufunc::copy(&mut self.c, &self.a)?;
                black_box(&mut self.c);
            }
            Operation::StreamScale => {
                ufunc::scale(&mut self.b, &self.c, s)?;
                black_box(&mut self.b);
            }
            Operation::StreamAdd => {
                ufunc::add(&mut self.c, &self.a, &self.b)?;
                black_box(&mut self.c);
            }
            _ => {
                ufunc::scale(&mut self.a, &self.c, s)?;
                ufunc::add_assign(&mut self.a, &self.b)?;
                black_box(&mut self.a);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::num::Wrapping;

    use half::f16;

    use super::*;

    fn check<T: Element>() {
        for op in [
            Operation::StreamCopy,
            Operation::StreamScale,
            Operation::StreamAdd,
            Operation::StreamTriad,
        ] {
            let mut k = Stream::<T>::new(op, 37).unwrap();
            let (a0, b0, c0) = (k.a.clone(), k.b.clone(), k.c.clone());
            k.run().unwrap();
            let s = T::of(SCALAR);
            for i in 0..37 {
                let (out, want) = match op {
                    Operation::StreamCopy => (k.c[i], a0[i]),
                    Operation::StreamScale => (k.b[i], s.mul(c0[i])),
                    Operation::StreamAdd => (k.c[i], a0[i].add(b0[i])),
                    _ => (k.a[i], b0[i].add(s.mul(c0[i]))),
                };
                assert_eq!(out, want, "{op} element {i}");
            }
            let touched = [&k.a, &k.b, &k.c].iter().filter(|x| !x.is_empty()).count();
            assert_eq!(touched as u32, op.stream_arrays(), "{op}");
        }
    }

    #[test]
    fn every_kernel_computes_its_formula_for_every_precision() {
        check::<f64>();
        check::<f32>();
        check::<f16>();
        check::<Wrapping<i64>>();
        check::<Wrapping<i32>>();
        check::<Wrapping<i16>>();
        check::<Wrapping<i8>>();
    }

    #[test]
    fn triad_with_known_values() {
        let mut k = Stream::<f64>::new(Operation::StreamTriad, 3).unwrap();
        k.b = Array1::from_vec(vec![1.0, 2.0, 3.0]);
        k.c = Array1::from_vec(vec![0.5, 1.0, -1.0]);
        k.run().unwrap();
        assert_eq!(k.a.to_vec(), vec![2.5, 5.0, 0.0]);
        assert!(Stream::<f64>::new(Operation::Gemm, 3).is_err());
    }
}
