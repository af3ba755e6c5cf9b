//! Input arrays: fallible allocation (an impossible size is a `failed` figure, not an abort),
//! NumPy's huge-page hint for large buffers, and deterministic pseudo-random fills.

use ndarray::{Array1, Array2};

use super::element::Element;
use super::hugepage;

/// A deterministic uniform [0, 1) sequence (splitmix64), so runs are reproducible.
struct Uniform(u64);

impl Uniform {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `len` sampled elements, or an error naming the size that could not be allocated.
fn filled<T: Element>(len: usize, seed: u64) -> Result<Vec<T>, String> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| {
        format!(
            "cannot allocate {:.1} MiB for an array of {len} elements",
            (len as f64) * std::mem::size_of::<T>() as f64 / (1024.0 * 1024.0)
        )
    })?;
    let _hint = hugepage::advise(&mut v);
    let mut rng = Uniform(seed);
    v.extend((0..len).map(|_| T::sample(rng.next())));
    Ok(v)
}

/// A length as `usize`, or an error naming it.
pub(crate) fn length(n: u64) -> Result<usize, String> {
    usize::try_from(n).map_err(|_| format!("size {n} does not fit this machine's address space"))
}

/// A vector of `n` sampled elements.
pub(crate) fn vector<T: Element>(n: u64, seed: u64) -> Result<Array1<T>, String> {
    Ok(Array1::from_vec(filled(length(n)?, seed)?))
}

/// An `n` × `n` row-major matrix of sampled elements.
pub(crate) fn matrix<T: Element>(n: u64, seed: u64) -> Result<Array2<T>, String> {
    let n = length(n)?;
    let len = n
        .checked_mul(n)
        .ok_or_else(|| format!("a {n} x {n} matrix does not fit this machine's address space"))?;
    Array2::from_shape_vec((n, n), filled(len, seed)?).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use std::num::Wrapping;

    use super::*;

    #[test]
    fn fills_are_deterministic_and_in_range() {
        let a: Array1<f64> = vector(1000, 7).unwrap();
        let b: Array1<f64> = vector(1000, 7).unwrap();
        assert_eq!(a, b);
        assert!(a.iter().all(|&v| (0.0..1.0).contains(&v)));
        assert_ne!(a, vector::<f64>(1000, 8).unwrap());
        let ints: Array1<Wrapping<i8>> = vector(1000, 1).unwrap();
        assert!(ints.iter().all(|v| (-3..=3).contains(&v.0)));
        assert!(ints.iter().any(|v| v.0 < 0) && ints.iter().any(|v| v.0 > 0));
        let m: Array2<f32> = matrix(3, 1).unwrap();
        assert_eq!(m.dim(), (3, 3));
    }

    #[test]
    fn impossible_sizes_are_errors_not_aborts() {
        let err = matrix::<f64>(u64::MAX / 2, 1).unwrap_err();
        assert!(
            err.contains("does not fit") || err.contains("cannot allocate"),
            "{err}"
        );
        let err = vector::<f64>(1 << 60, 1).unwrap_err();
        assert!(err.contains("cannot allocate"), "{err}");
    }
}
