//! [`NumpyEngine`]: the numpy framework on ndarray, faithful to what NumPy achieves on the
//! same machine (same OpenBLAS for float BLAS, plain single-threaded loops elsewhere).

use std::num::Wrapping;

use fleetcal_proto::environment::{Fact, SoftwareEnvironment, ThreadPool};
use fleetcal_proto::result::{BlasInfo, EngineInfo};
use fleetcal_proto::{DeviceKind, Framework, Operation, Precision};
use half::f16;

use super::blas::{Axpy, Dot, Gemm, Gemv, ALPHA, BETA};
use super::element::Element;
use super::stream::{Stream, SCALAR};
use super::{openblas, spin_yield, ufunc};
use crate::bench::{Engine, Kernel};

/// The ndarray release line the engine is built on (checked against Cargo.lock in a test).
pub const NDARRAY_VERSION: &str = "0.17";

/// Why bf16 is refused: NumPy has no bfloat16 dtype.
pub const UNSUPPORTED_REASON: &str = "NumPy does not support this precision";

/// The environment variables that steer OpenBLAS's kernel choice, recorded when set.
const OPENBLAS_KNOBS: [&str; 3] = [
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OPENBLAS_NUM_THREADS",
];

/// The numpy engine (CPU only).
#[derive(Debug)]
pub struct NumpyEngine {
    /// The thread count asked for, if any.
    threads: Option<usize>,
    /// OpenBLAS 0.3.27+'s waiting for an older OpenBLAS, while the engine lives.
    spin_yield: Option<spin_yield::Guard>,
}

impl NumpyEngine {
    /// A numpy engine; `Some(n)` sets OpenBLAS to `n` threads (NumPy's
    /// `threadpoolctl.threadpool_limits(n)`), `None` keeps OpenBLAS's own default.
    pub fn new(threads: Option<usize>) -> NumpyEngine {
        if let Some(n) = threads {
            openblas::set_num_threads(n);
        }
        let spin_yield = if spin_yield::affected(&openblas::version_of(&openblas::config())) {
            spin_yield::Guard::acquire()
        } else {
            None
        };
        NumpyEngine {
            threads,
            spin_yield,
        }
    }

    /// What decided OpenBLAS's thread count: `--threads` (the engine set it), else the first of
    /// the variables OpenBLAS reads at load time, else its default.
    fn threads_set_by(&self) -> String {
        if self.threads.is_some() {
            return "--threads".into();
        }
        [
            "OPENBLAS_NUM_THREADS",
            "GOTO_NUM_THREADS",
            "OMP_NUM_THREADS",
        ]
        .iter()
        .find(|v| std::env::var_os(v).is_some())
        .map_or_else(
            || "OpenBLAS default (the CPUs it sees)".into(),
            |v| v.to_string(),
        )
    }

    fn blas(&self) -> BlasInfo {
        let config = openblas::config();
        BlasInfo {
            library: "OpenBLAS".into(),
            version: openblas::version_of(&config),
            kernel: openblas::corename(),
            threads: openblas::num_threads(),
        }
    }
}

fn kernel<T: Element>(op: Operation, size: u64) -> Result<Box<dyn Kernel>, String> {
    Ok(match op {
        Operation::Dot => Box::new(Dot::<T>::new(size)?),
        Operation::Axpy => Box::new(Axpy::<T>::new(size)?),
        Operation::Gemv => Box::new(Gemv::<T>::new(size)?),
        Operation::Gemm => Box::new(Gemm::<T>::new(size)?),
        stream => Box::new(Stream::<T>::new(stream, size)?),
    })
}

impl Engine for NumpyEngine {
    fn framework(&self) -> Framework {
        Framework::Numpy
    }

    fn device(&self) -> DeviceKind {
        DeviceKind::Cpu
    }

    fn info(&self) -> EngineInfo {
        let config = openblas::config();
        let mut details = std::collections::BTreeMap::new();
        details.insert("blas_config".into(), config.clone());
        details.insert(
            "float_blas".into(),
            "fp32/fp64 dot, gemv and gemm are one OpenBLAS call each (multi-threaded), as in NumPy"
                .into(),
        );
        details.insert(
            "loops".into(),
            "fp16 and integer dot/gemv/gemm, axpy and STREAM are single-threaded loops, as in NumPy; fp16 accumulates in fp32, integers wrap".into(),
        );
        details.insert(
            "simd".into(),
            format!("axpy and STREAM loops run as {} code, the instruction set NumPy's ufunc dispatch picks on this CPU; copy is memmove, as in NumPy", ufunc::Isa::detect().name()),
        );
        details.insert(
            "axpy".into(),
            format!("y = a*x + y, a = {ALPHA}, as NumPy's two passes without a temporary: multiply(x, a, out=t); add(t, y, out=y)"),
        );
        details.insert(
            "gemm".into(),
            format!("C = a*(A@B) + b*C, a = {ALPHA}, b = {BETA} (integers: 1 and 0)"),
        );
        details.insert(
            "stream".into(),
            format!("copy c = a, scale b = s*c, add c = a + b, triad a = b + s*c, s = {SCALAR}: NumPy's out= forms, no temporaries; triad is NumPy's two passes multiply(c, s, out=a); add(a, b, out=a); bytes by STREAM's rule"),
        );
        let version = openblas::version_of(&config);
        if spin_yield::affected(&version) {
            details.insert(
                "blas_waiting".into(),
                if self.spin_yield.is_some() {
                    format!("OpenBLAS {version} waits with sched_yield (fixed in 0.3.27, which NumPy's wheels ship): the engine makes it spin as 0.3.27 does")
                } else {
                    format!("OpenBLAS {version} waits with sched_yield (fixed in 0.3.27) and this executable could not change that: threaded dot/gemv may run at one core's speed")
                },
            );
        }
        details.insert(
            "hugepages".into(),
            "madvise(MADV_HUGEPAGE) on arrays of 4 MiB or more, as NumPy does on Linux".into(),
        );
        if let Some(n) = self.threads {
            details.insert("threads_requested".into(), n.to_string());
        }
        for knob in OPENBLAS_KNOBS {
            if let Ok(v) = std::env::var(knob) {
                details.insert(knob.to_string(), v);
            }
        }
        let blas = self.blas();
        EngineInfo {
            name: Framework::Numpy.to_string(),
            library: format!("ndarray {NDARRAY_VERSION}"),
            threads: blas.threads,
            blas: Some(blas),
            details,
            ..EngineInfo::default()
        }
    }

    fn software(&self) -> SoftwareEnvironment {
        let config = openblas::config();
        let version = openblas::version_of(&config);
        let kernel = openblas::corename();
        SoftwareEnvironment {
            engine: Framework::Numpy.to_string(),
            library: format!("ndarray {NDARRAY_VERSION}"),
            blas_library: Fact::Known("OpenBLAS".into()),
            blas_version: if version.is_empty() {
                Fact::unknown(format!(
                    "openblas_get_config() names no version: '{}'",
                    fleetcal_proto::quote::bounded(&config)
                ))
            } else {
                Fact::Known(version)
            },
            blas_kernel: if kernel.is_empty() {
                Fact::unknown("openblas_get_corename() answered nothing")
            } else {
                Fact::Known(kernel)
            },
            blas_threading: Fact::from_result(openblas::threading().map(str::to_string)),
            libtorch: None,
            cuda_runtime: None,
            thread_pools: vec![ThreadPool {
                name: "openblas".into(),
                threads: Fact::Known(openblas::num_threads()),
                set_by: self.threads_set_by(),
                kind: openblas::threading().unwrap_or("unknown").into(),
            }],
        }
    }

    fn banner(&self) -> String {
        let blas = self.blas();
        format!(
            "NumPy-compatible ndarray {NDARRAY_VERSION} on OpenBLAS {} ({} kernels, {} threads) (CPU-only)",
            blas.version, blas.kernel, blas.threads
        )
    }

    fn check_support(&self, _op: Operation, precision: Precision) -> Result<(), String> {
        match precision {
            Precision::Bf16 => Err(UNSUPPORTED_REASON.into()),
            _ => Ok(()),
        }
    }

    fn prepare(
        &mut self,
        op: Operation,
        precision: Precision,
        size: u64,
    ) -> Result<Box<dyn Kernel>, String> {
        self.check_support(op, precision)?;
        if size == 0 {
            return Err(format!("{op} {precision}: size must be at least 1"));
        }
        match precision {
            Precision::Fp64 => kernel::<f64>(op, size),
            Precision::Fp32 => kernel::<f32>(op, size),
            Precision::Fp16 => kernel::<f16>(op, size),
            Precision::Int64 => kernel::<Wrapping<i64>>(op, size),
            Precision::Int32 => kernel::<Wrapping<i32>>(op, size),
            Precision::Int16 => kernel::<Wrapping<i16>>(op, size),
            Precision::Int8 => kernel::<Wrapping<i8>>(op, size),
            Precision::Bf16 => Err(UNSUPPORTED_REASON.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_is_unsupported_with_numpys_reason_and_the_rest_run() {
        let _threads = crate::testing::thread_counts_shared();
        let mut e = NumpyEngine::new(None);
        for op in Operation::ALL {
            assert_eq!(
                e.check_support(op, Precision::Bf16).unwrap_err(),
                "NumPy does not support this precision"
            );
            assert!(e.prepare(op, Precision::Bf16, 8).is_err());
            for p in Precision::ALL.into_iter().filter(|&p| p != Precision::Bf16) {
                assert!(e.check_support(op, p).is_ok(), "{op} {p}");
                let mut k = e.prepare(op, p, 8).unwrap();
                k.run().unwrap();
                k.synchronize().unwrap();
            }
        }
        assert!(e.prepare(Operation::Dot, Precision::Fp32, 0).is_err());
    }

    #[test]
    fn info_names_ndarray_and_openblas() {
        let _threads = crate::testing::thread_counts_shared();
        let e = NumpyEngine::new(None);
        let info = e.info();
        assert_eq!(info.name, "numpy");
        assert!(info.library.starts_with("ndarray 0."));
        let blas = info.blas.unwrap();
        assert_eq!(blas.library, "OpenBLAS");
        assert!(blas.version.starts_with("0."), "{}", blas.version);
        assert!(!blas.kernel.is_empty());
        assert_eq!(info.threads, blas.threads);
        assert!(info.details["axpy"].contains("out=t"));
        assert!(info.details["stream"].contains("two passes"));
        assert!(info.details["simd"].contains(super::ufunc::Isa::detect().name()));
        // Debian's OpenBLAS here predates 0.3.27: the engine says it changed the waiting.
        if spin_yield::affected(&blas.version) {
            assert!(e.spin_yield.is_some());
            assert!(info.details["blas_waiting"].contains("spin"));
        } else {
            assert!(!info.details.contains_key("blas_waiting"));
        }
        assert!(e.banner().contains("CPU-only"));
        let sw = e.software();
        assert_eq!(sw.engine, "numpy");
        assert_eq!(sw.blas_library, Fact::Known("OpenBLAS".to_string()));
        assert_eq!(sw.blas_version.known(), Some(&blas.version));
        assert_eq!(sw.blas_kernel.known(), Some(&blas.kernel));
        assert!(
            sw.blas_threading.known().is_some(),
            "{:?}",
            sw.blas_threading
        );
        assert_eq!((sw.libtorch, sw.cuda_runtime), (None, None));
        assert_eq!(sw.thread_pools.len(), 1);
        assert_eq!(sw.thread_pools[0].name, "openblas");
        assert_eq!(sw.thread_pools[0].threads, Fact::Known(blas.threads));
        assert_eq!(e.framework(), Framework::Numpy);
        assert_eq!(e.device(), DeviceKind::Cpu);
    }

    #[test]
    fn threads_asked_for_are_set_and_recorded() {
        let _threads = crate::testing::thread_counts_shared();
        let e = NumpyEngine::new(Some(1));
        let pool = &e.software().thread_pools[0];
        assert_eq!(
            (pool.threads.clone(), pool.set_by.as_str()),
            (Fact::Known(1), "--threads")
        );
    }

    #[test]
    fn ndarray_version_matches_the_lock_file() {
        let lock = include_str!("../../../../Cargo.lock");
        // other crates may lock other ndarray lines; ours must be among them
        let locked: Vec<&str> = lock
            .split("[[package]]")
            .filter(|p| p.contains("name = \"ndarray\"\n"))
            .filter_map(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
            .collect();
        assert!(
            locked
                .iter()
                .any(|v| v.starts_with(&format!("{NDARRAY_VERSION}."))),
            "locked {locked:?}"
        );
    }
}
