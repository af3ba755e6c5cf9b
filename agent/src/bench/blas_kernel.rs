//! A BLAS running kernels older than the CPU it runs on. OpenBLAS picks its kernels from the
//! CPU's identity (`DYNAMIC_ARCH`); a CPU it does not recognise (a VM that hides the model, a
//! CPU newer than the library) gets generic SSE kernels, and every BLAS figure of the run is
//! then a fraction of what the board does: on an H200 machine's 16 vCPUs, OpenBLAS 0.3.21 chose
//! Prescott kernels and sgemm at 1024 ran at 228 GFLOPS against 983 with
//! `OPENBLAS_CORETYPE=SkylakeX` (docs/gpu.md). NumPy's own OpenBLAS reads the same variable.

use fleetcal_proto::result::BlasInfo;

/// OpenBLAS x86 core names whose kernels use neither AVX2 nor AVX-512.
const PRE_AVX2: [&str; 20] = [
    "Prescott",
    "Core2",
    "Penryn",
    "Dunnington",
    "Nehalem",
    "Sandybridge",
    "Atom",
    "Katmai",
    "Coppermine",
    "Northwood",
    "Banias",
    "Opteron",
    "Opteron_SSE3",
    "Barcelona",
    "Bobcat",
    "Bulldozer",
    "Piledriver",
    "Steamroller",
    "Nano",
    "Generic",
];

/// The anomaly line when `blas` runs pre-AVX2 kernels on a CPU whose `simd` features include
/// AVX2 or AVX-512, naming the `OPENBLAS_CORETYPE` that fits; `None` otherwise (no BLAS, an
/// Arm board, kernels that fit, an unknown kernel name).
pub fn anomaly(blas: Option<&BlasInfo>, simd: &[String]) -> Option<String> {
    let blas = blas?;
    let old = PRE_AVX2
        .iter()
        .any(|k| k.eq_ignore_ascii_case(blas.kernel.trim()));
    let has = |f: &str| simd.iter().any(|s| s == f);
    let (feature, coretype) = if has("avx512f") {
        ("avx512f", "SkylakeX")
    } else if has("avx2") {
        ("avx2", "Haswell")
    } else {
        return None;
    };
    old.then(|| {
        format!(
            "{} {} runs its {} kernels although this CPU has {feature}: every BLAS figure is \
             far below what the CPU does (it does not recognise the CPU; set \
             OPENBLAS_CORETYPE={coretype}, which NumPy's OpenBLAS reads too)",
            blas.library, blas.version, blas.kernel
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blas(kernel: &str) -> BlasInfo {
        BlasInfo {
            library: "OpenBLAS".into(),
            version: "0.3.21".into(),
            kernel: kernel.into(),
            threads: 16,
        }
    }

    fn simd(f: &[&str]) -> Vec<String> {
        f.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn generic_kernels_on_a_newer_cpu_are_named_with_the_coretype_that_fits() {
        let line = anomaly(Some(&blas("Prescott")), &simd(&["avx2", "avx512f"])).unwrap();
        assert!(line.contains("Prescott kernels"), "{line}");
        assert!(line.contains("avx512f"), "{line}");
        assert!(line.contains("OPENBLAS_CORETYPE=SkylakeX"), "{line}");
        let line = anomaly(Some(&blas("sandybridge")), &simd(&["avx", "avx2"])).unwrap();
        assert!(line.contains("OPENBLAS_CORETYPE=Haswell"), "{line}");
    }

    #[test]
    fn fitting_kernels_arm_boards_and_engines_without_blas_raise_nothing() {
        let avx512 = simd(&["avx2", "avx512f"]);
        assert_eq!(anomaly(Some(&blas("SkylakeX")), &avx512), None);
        assert_eq!(anomaly(Some(&blas("Haswell")), &simd(&["avx2"])), None);
        assert_eq!(anomaly(Some(&blas("Zen")), &avx512), None);
        assert_eq!(anomaly(Some(&blas("Prescott")), &simd(&["sse4_2"])), None);
        assert_eq!(anomaly(Some(&blas("ARMV8")), &simd(&["neon"])), None);
        assert_eq!(anomaly(None, &avx512), None);
    }
}
