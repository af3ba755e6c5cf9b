//! What a pytorch run records about its engine: libtorch's version, threads, back-ends, the
//! CUDA device, and which libtorch call each operation times.

use std::collections::BTreeMap;

use fleetcal_proto::environment::{Fact, LibtorchEnvironment, SoftwareEnvironment, ThreadPool};
use fleetcal_proto::result::{BlasInfo, EngineInfo};
use fleetcal_proto::Precision;

use super::cuda_info::{cudnn_version, tensor_cores, CudaInfo};
use super::version::libtorch_version;

/// The libtorch call timed for each operation (recorded in `details`).
const CALLS: [(&str, &str); 8] = [
    ("call_dot", "torch.dot(x, y, out=r)"),
    (
        "call_axpy",
        "y.addcmul_(x, a): y += x*a in one fused pass (tch 0.26 exposes no add alpha)",
    ),
    (
        "call_gemv",
        "y.addmv_(A, x): y = A@x + y, alpha = beta = 1 (tch 0.26 exposes neither)",
    ),
    (
        "call_gemm",
        "C.addmm_(A, B): C = A@B + C, alpha = beta = 1 (tch 0.26 exposes neither)",
    ),
    ("call_stream_copy", "c.copy_(a)"),
    ("call_stream_scale", "torch.mul(c, s, out=b)"),
    ("call_stream_add", "torch.add(a, b, out=c)"),
    (
        "call_stream_triad",
        "torch.addcmul(b, c, s, out=a): a = b + c*s in one pass, no temporary",
    ),
];

/// The int8 GEMM on CUDA (`addmm` has no integer CUDA kernel).
const INT8_CUDA_GEMM: &str =
    "torch._int_mm(A, B, out=C): int8 x int8 -> int32 C (4-byte items, counted as 1), Tensor Cores";

/// The engine facts of a pytorch run on the CPU (`cuda` is `None`) or a CUDA device.
pub fn engine_info(cuda: Option<&CudaInfo>) -> EngineInfo {
    let (version, version_source) = libtorch_version();
    let threads = u32::try_from(tch::get_num_threads()).unwrap_or(0);
    let mut details: BTreeMap<String, String> = CALLS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    details.insert("libtorch_version_source".into(), version_source);
    details.insert("tch".into(), "0.26".into());
    details.insert(
        "interop_threads".into(),
        tch::get_num_interop_threads().to_string(),
    );
    for (name, on) in [
        ("mkl", tch::utils::has_mkl()),
        ("onednn", tch::utils::has_mkldnn()),
        ("openmp", tch::utils::has_openmp()),
        ("lapack", tch::utils::has_lapack()),
        ("cuda_built", tch::utils::has_cuda()),
    ] {
        details.insert(format!("has_{name}"), on.to_string());
    }
    let blas = if let Some(cuda) = cuda {
        if let Some(v) = cudnn_version() {
            details.insert("cudnn".into(), v);
        }
        details.insert("cuda_device_count".into(), cuda.device_count.to_string());
        details.insert("call_gemm_int8".into(), INT8_CUDA_GEMM.into());
        if let Some(cc) = &cuda.compute_capability {
            for p in [Precision::Fp16, Precision::Bf16, Precision::Int8] {
                let key = format!("tensor_cores_{p}");
                details.insert(key, tensor_cores(cc, p).to_string());
            }
        }
        BlasInfo {
            library: "cuBLAS".into(),
            version: format!("CUDA {}", cuda.cuda_version),
            kernel: String::new(),
            threads: 0,
        }
    } else {
        cpu_blas(threads)
    };
    EngineInfo {
        name: "pytorch".into(),
        library: format!("libtorch {version}"),
        threads,
        blas: Some(blas),
        device_name: cuda.map(|c| c.name.clone()),
        compute_capability: cuda.and_then(|c| c.compute_capability.clone()),
        cuda_version: cuda.map(|c| c.cuda_version.clone()),
        tensor_cores_eligible: cuda.map(|c| {
            c.compute_capability
                .as_deref()
                .is_some_and(|cc| tensor_cores(cc, Precision::Fp16))
        }),
        details,
    }
}

/// The back-ends this libtorch was built with, in a fixed order.
fn backends() -> Vec<String> {
    [
        ("mkl", tch::utils::has_mkl()),
        ("onednn", tch::utils::has_mkldnn()),
        ("openmp", tch::utils::has_openmp()),
        ("lapack", tch::utils::has_lapack()),
        ("cuda", tch::utils::has_cuda()),
    ]
    .into_iter()
    .filter(|(_, on)| *on)
    .map(|(name, _)| name.to_string())
    .collect()
}

/// libtorch's thread pools: intra-op (OpenMP in the PyTorch builds; what `--threads` sets) and
/// inter-op (its own pool, left at libtorch's default). `threads_requested`: `--threads`.
pub fn thread_pools(threads_requested: bool) -> Vec<ThreadPool> {
    let env = |vars: &[&str], default: &str| {
        vars.iter()
            .find(|v| std::env::var_os(v).is_some())
            .map_or_else(|| default.to_string(), |v| v.to_string())
    };
    let count = |n: i32| {
        u32::try_from(n)
            .map(Fact::Known)
            .unwrap_or_else(|_| Fact::unknown(format!("libtorch answered {n}")))
    };
    vec![
        ThreadPool {
            name: "torch_intra_op".into(),
            threads: count(tch::get_num_threads()),
            set_by: if threads_requested {
                "--threads".into()
            } else {
                env(
                    &["OMP_NUM_THREADS", "MKL_NUM_THREADS"],
                    "libtorch default (the physical cores)",
                )
            },
            kind: if tch::utils::has_openmp() {
                "OpenMP".into()
            } else {
                "native".into()
            },
        },
        ThreadPool {
            name: "torch_inter_op".into(),
            threads: count(tch::get_num_interop_threads()),
            set_by: "libtorch default".into(),
            kind: "native".into(),
        },
    ]
}

/// The software stack of a pytorch run (`cuda`: the device, on a CUDA run;
/// `threads_requested`: `--threads` set the intra-op pool).
pub fn software(cuda: Option<&CudaInfo>, threads_requested: bool) -> SoftwareEnvironment {
    let (version, _) = libtorch_version();
    let threading = if tch::utils::has_openmp() {
        "OpenMP"
    } else {
        "native thread pool (no OpenMP)"
    };
    let (blas_library, blas_version, blas_kernel) = match cuda {
        Some(c) => (
            Fact::Known("cuBLAS".to_string()),
            Fact::Known(format!("the one of CUDA {}", c.cuda_version)),
            Fact::unknown("cuBLAS picks its kernels per call"),
        ),
        None => {
            let blas = cpu_blas(0);
            let kernel = if blas.kernel.is_empty() {
                Fact::unknown("libtorch's built-in BLAS names no kernel")
            } else {
                Fact::Known(blas.kernel)
            };
            (
                Fact::Known(blas.library),
                Fact::unknown("libtorch does not expose its BLAS version through tch"),
                kernel,
            )
        }
    };
    SoftwareEnvironment {
        engine: "pytorch".into(),
        library: format!("libtorch {version}"),
        blas_library,
        blas_version,
        blas_kernel,
        blas_threading: Fact::Known(threading.into()),
        libtorch: Some(LibtorchEnvironment {
            version: Fact::Known(version),
            backends: backends(),
        }),
        cuda_runtime: cuda.map(|c| Fact::Known(c.cuda_version.clone())),
        thread_pools: thread_pools(threads_requested),
    }
}

/// libtorch's CPU BLAS: MKL in the x86-64 wheels (its code path chosen at run time, or forced
/// by `MKL_ENABLE_INSTRUCTIONS`), else the BLAS it was built with.
fn cpu_blas(threads: u32) -> BlasInfo {
    let (library, kernel) = if tch::utils::has_mkl() {
        let kernel = std::env::var("MKL_ENABLE_INSTRUCTIONS")
            .map(|v| format!("MKL_ENABLE_INSTRUCTIONS={v}"))
            .unwrap_or_else(|_| "run-time dispatch".into());
        ("MKL", kernel)
    } else {
        ("built-in BLAS", String::new())
    };
    BlasInfo {
        library: library.into(),
        version: String::new(),
        kernel,
        threads,
    }
}

/// The section-header line: `PyTorch 2.13.0 (libtorch) on CPU`, or
/// `PyTorch 2.13.0 (libtorch) on NVIDIA H100 (cc 9.0, CUDA 13.0)`.
pub fn banner(cuda: Option<&CudaInfo>) -> String {
    let (version, _) = libtorch_version();
    let version = version.split('+').next().unwrap_or_default().to_string();
    match cuda {
        None => format!("PyTorch {version} (libtorch) on CPU"),
        Some(c) => {
            let cc = c
                .compute_capability
                .as_deref()
                .map(|cc| format!("cc {cc}, "))
                .unwrap_or_default();
            format!(
                "PyTorch {version} (libtorch) on {} ({cc}CUDA {})",
                c.name, c.cuda_version
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h100() -> CudaInfo {
        CudaInfo {
            name: "NVIDIA H100".into(),
            compute_capability: Some("9.0".into()),
            cuda_version: "13.0".into(),
            device_count: 1,
        }
    }

    #[test]
    fn banners_name_the_device() {
        let cpu = banner(None);
        assert!(cpu.starts_with("PyTorch 2.13.0 (libtorch) on CPU"), "{cpu}");
        let gpu = banner(Some(&h100()));
        assert_eq!(
            gpu,
            "PyTorch 2.13.0 (libtorch) on NVIDIA H100 (cc 9.0, CUDA 13.0)"
        );
    }

    #[test]
    fn cpu_info_records_backends_and_calls_and_no_cuda_fields() {
        let _threads = crate::testing::thread_counts_shared();
        let info = engine_info(None);
        assert_eq!(info.name, "pytorch");
        assert!(
            info.library.starts_with("libtorch 2.13.0"),
            "{}",
            info.library
        );
        assert!(info.threads >= 1);
        assert_eq!(info.blas.as_ref().unwrap().threads, info.threads);
        assert_eq!(info.device_name, None);
        assert_eq!(info.tensor_cores_eligible, None);
        assert!(info.details["call_stream_triad"].contains("addcmul"));
        assert!(!info.details.contains_key("call_gemm_int8"));
        assert!(["true", "false"].contains(&info.details["has_mkl"].as_str()));
        let sw = software(None, false);
        assert_eq!(sw.thread_pools.len(), 2);
        assert_eq!(
            sw.thread_pools[0].threads,
            Fact::Known(u32::try_from(tch::get_num_threads()).unwrap())
        );
        assert_eq!(sw.library, info.library);
        let torch = sw.libtorch.unwrap();
        assert!(torch
            .version
            .known()
            .is_some_and(|v| v.starts_with("2.13.0")));
        assert_eq!(
            torch.backends.contains(&"mkl".to_string()),
            tch::utils::has_mkl()
        );
        assert_eq!(sw.cuda_runtime, None);
        assert_eq!(
            software(Some(&h100()), true).cuda_runtime,
            Some(Fact::Known("13.0".to_string()))
        );
    }

    #[test]
    fn cuda_info_fills_the_device_fields() {
        let info = engine_info(Some(&h100()));
        assert_eq!(info.device_name.as_deref(), Some("NVIDIA H100"));
        assert_eq!(info.compute_capability.as_deref(), Some("9.0"));
        assert_eq!(info.tensor_cores_eligible, Some(true));
        assert_eq!(info.details["tensor_cores_int8"], "true");
        assert!(info.details["call_gemm_int8"].contains("_int_mm"));
        assert_eq!(info.blas.unwrap().library, "cuBLAS");
    }
}
