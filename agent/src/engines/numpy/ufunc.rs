//! NumPy's element-wise loops (ufuncs with `out=`), compiled for the instruction set NumPy
//! would pick on this CPU.
//!
//! NumPy builds its arithmetic loops for several instruction sets and dispatches at import
//! time to the widest the CPU has: AVX-512 (Skylake-X level), then AVX2, else its baseline
//! (aarch64: NEON, always). The width shows even in memory-bound loops: on a 2-vCPU Zen 4
//! VM, `b = s*c` over 256 MiB moved 33 GB/s compiled for SSE2 (Rust's x86_64 baseline) and
//! 29 GB/s for AVX-512, which is what NumPy's own loop moves there. [`Isa::detect`] makes
//! the same choice and every loop here runs under it.
//!
//! A contiguous copy is `memmove` in NumPy, so [`copy`] is `copy_from_slice` (the C
//! library's `memcpy`).

#![allow(unsafe_code)]

use std::sync::OnceLock;

use ndarray::Array1;

use super::element::Element;

/// The instruction set the loops run under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isa {
    /// AVX-512 F/BW/DQ/VL (NumPy's `AVX512_SKX` level).
    Avx512,
    /// AVX2 with FMA (NumPy's `AVX2`/`FMA3`).
    Avx2,
    /// The compiler's baseline for the target (SSE2 on x86_64, NEON on aarch64).
    Baseline,
}

/// The CPU features (Linux `/proc/cpuinfo` names) each wide set needs, widest first.
const LEVELS: [(Isa, &[&str]); 2] = [
    (
        Isa::Avx512,
        &["avx512f", "avx512bw", "avx512dq", "avx512vl"],
    ),
    (Isa::Avx2, &["avx2", "fma"]),
];

impl Isa {
    /// The widest set this CPU has, once per process.
    pub(crate) fn detect() -> Isa {
        static ISA: OnceLock<Isa> = OnceLock::new();
        *ISA.get_or_init(|| Isa::choose(has_feature))
    }

    /// The widest set whose every feature `has` reports (NumPy's dispatch order), else the
    /// baseline.
    fn choose(has: impl Fn(&str) -> bool) -> Isa {
        LEVELS
            .iter()
            .find(|(_, needs)| needs.iter().all(|f| has(f)))
            .map_or(Isa::Baseline, |(isa, _)| *isa)
    }

    /// The name recorded in the result's engine details.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2",
            Isa::Baseline if cfg!(target_arch = "aarch64") => "neon",
            Isa::Baseline => "baseline",
        }
    }
}

/// Whether this CPU (and the OS) supports a feature named as in [`LEVELS`].
#[cfg(target_arch = "x86_64")]
fn has_feature(name: &str) -> bool {
    match name {
        "avx512f" => std::arch::is_x86_feature_detected!("avx512f"),
        "avx512bw" => std::arch::is_x86_feature_detected!("avx512bw"),
        "avx512dq" => std::arch::is_x86_feature_detected!("avx512dq"),
        "avx512vl" => std::arch::is_x86_feature_detected!("avx512vl"),
        "avx2" => std::arch::is_x86_feature_detected!("avx2"),
        "fma" => std::arch::is_x86_feature_detected!("fma"),
        _ => false,
    }
}

/// No wide x86 sets elsewhere: the baseline (NEON on aarch64) is NumPy's choice.
#[cfg(not(target_arch = "x86_64"))]
fn has_feature(_name: &str) -> bool {
    false
}

/// Runs `f` compiled for [`Isa::detect`]: `f` is inlined into a function built for that set.
#[inline(always)]
fn dispatch<F: FnOnce()>(f: F) {
    match Isa::detect() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: detect() saw every feature the callee enables on this CPU.
        Isa::Avx512 => unsafe { on_avx512(f) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, for AVX2 and FMA.
        Isa::Avx2 => unsafe { on_avx2(f) },
        _ => f(),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
unsafe fn on_avx512<F: FnOnce()>(f: F) {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn on_avx2<F: FnOnce()>(f: F) {
    f()
}

fn slice<T>(a: &Array1<T>) -> Result<&[T], String> {
    a.as_slice()
        .ok_or_else(|| "array is not contiguous".to_string())
}

fn slice_mut<T>(a: &mut Array1<T>) -> Result<&mut [T], String> {
    a.as_slice_mut()
        .ok_or_else(|| "array is not contiguous".to_string())
}

fn same_len(a: usize, b: usize) -> Result<(), String> {
    if a == b {
        Ok(())
    } else {
        Err(format!("arrays of {a} and {b} elements"))
    }
}

/// `np.copyto(out, x)`.
pub(crate) fn copy<T: Element>(out: &mut Array1<T>, x: &Array1<T>) -> Result<(), String> {
    let (out, x) = (slice_mut(out)?, slice(x)?);
    same_len(out.len(), x.len())?;
    out.copy_from_slice(x);
    Ok(())
}

/// `np.multiply(x, s, out=out)`.
pub(crate) fn scale<T: Element>(out: &mut Array1<T>, x: &Array1<T>, s: T) -> Result<(), String> {
    let (out, x) = (slice_mut(out)?, slice(x)?);
    same_len(out.len(), x.len())?;
    dispatch(|| {
        for (o, &x) in out.iter_mut().zip(x) {
            *o = x.mul(s);
        }
    });
    Ok(())
}

/// `np.add(x, y, out=out)`.
pub(crate) fn add<T: Element>(
    out: &mut Array1<T>,
    x: &Array1<T>,
    y: &Array1<T>,
) -> Result<(), String> {
    let (out, x, y) = (slice_mut(out)?, slice(x)?, slice(y)?);
    same_len(out.len(), x.len())?;
    same_len(out.len(), y.len())?;
    dispatch(|| {
        for ((o, &x), &y) in out.iter_mut().zip(x).zip(y) {
            *o = x.add(y);
        }
    });
    Ok(())
}

/// `np.add(out, x, out=out)`, i.e. `out += x`.
pub(crate) fn add_assign<T: Element>(out: &mut Array1<T>, x: &Array1<T>) -> Result<(), String> {
    let (out, x) = (slice_mut(out)?, slice(x)?);
    same_len(out.len(), x.len())?;
    dispatch(|| {
        for (o, &x) in out.iter_mut().zip(x) {
            *o = o.add(x);
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::num::Wrapping;

    use super::*;

    #[test]
    fn loops_compute_numpy_results() {
        let x = Array1::from_vec(vec![1.0f32, 2.0, -3.0]);
        let y = Array1::from_vec(vec![0.5f32, 0.25, 4.0]);
        let mut out = Array1::zeros(3);
        copy(&mut out, &x).unwrap();
        assert_eq!(out, x);
        scale(&mut out, &x, 3.0).unwrap();
        assert_eq!(out.to_vec(), vec![3.0, 6.0, -9.0]);
        add(&mut out, &x, &y).unwrap();
        assert_eq!(out.to_vec(), vec![1.5, 2.25, 1.0]);
        add_assign(&mut out, &y).unwrap();
        assert_eq!(out.to_vec(), vec![2.0, 2.5, 5.0]);
        let mut i = Array1::from_vec(vec![Wrapping(127i8), Wrapping(-128)]);
        let one = Array1::from_vec(vec![Wrapping(1i8), Wrapping(-1)]);
        add_assign(&mut i, &one).unwrap();
        assert_eq!(
            i.to_vec(),
            vec![Wrapping(-128), Wrapping(127)],
            "wraps like NumPy"
        );
    }

    #[test]
    fn long_arrays_cover_the_vector_body_and_the_tail() {
        let n = 1037;
        let x = Array1::from_iter((0..n).map(|v| v as f64));
        let mut out = Array1::zeros(n);
        scale(&mut out, &x, 0.5).unwrap();
        assert!(out.iter().enumerate().all(|(i, &v)| v == i as f64 * 0.5));
    }

    #[test]
    fn mismatched_or_strided_arrays_are_errors() {
        let x = Array1::from_vec(vec![1.0f64; 4]);
        let mut short = Array1::from_vec(vec![0.0f64; 3]);
        assert!(scale(&mut short, &x, 2.0).unwrap_err().contains("3 and 4"));
        let strided = Array1::from_vec(vec![1.0f64; 8]).slice_move(ndarray::s![..;2]);
        let err = copy(&mut short, &strided).unwrap_err();
        assert!(err.contains("not contiguous"), "{err}");
    }

    #[test]
    fn the_widest_complete_set_is_chosen_as_numpy_does() {
        fn with<'a>(features: &'a [&'a str]) -> impl Fn(&str) -> bool + 'a {
            move |f| features.contains(&f)
        }
        let all = ["avx512f", "avx512bw", "avx512dq", "avx512vl", "avx2", "fma"];
        assert_eq!(Isa::choose(with(&all)), Isa::Avx512);
        // One AVX-512 feature short (e.g. Xeon Phi has no BW/DQ/VL): AVX2.
        assert_eq!(
            Isa::choose(with(&["avx512f", "avx512bw", "avx512dq", "avx2", "fma"])),
            Isa::Avx2
        );
        // AVX2 without FMA is not NumPy's AVX2 level.
        assert_eq!(Isa::choose(with(&["avx2"])), Isa::Baseline);
        assert_eq!(Isa::choose(with(&[])), Isa::Baseline);
        assert_eq!(Isa::Avx512.name(), "avx512");
        assert_eq!(Isa::Avx2.name(), "avx2");
    }

    /// The detection agrees with what the kernel reports for this CPU in `/proc/cpuinfo`, an
    /// independent reading of the same CPUID bits (with the OS's support folded in).
    #[test]
    fn detection_matches_the_kernels_cpu_flags() {
        let expected = if cfg!(target_arch = "x86_64") {
            let Ok(cpuinfo) = std::fs::read_to_string("/proc/cpuinfo") else {
                return; // not Linux: nothing independent to compare with
            };
            let flags: Vec<&str> = cpuinfo
                .lines()
                .find(|l| l.starts_with("flags"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, f)| f.split_whitespace().collect())
                .unwrap_or_default();
            Isa::choose(|f| flags.contains(&f))
        } else {
            Isa::Baseline
        };
        assert_eq!(Isa::detect(), expected);
        let name = Isa::detect().name();
        assert_eq!(name == "neon", cfg!(target_arch = "aarch64"), "{name}");
    }
}
