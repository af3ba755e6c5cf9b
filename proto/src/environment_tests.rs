use super::*;

fn k<T>(v: T) -> Fact<T> {
    Fact::Known(v)
}

pub(crate) fn host() -> HostEnvironment {
    HostEnvironment {
        cpu_model: k("AMD EPYC 9R14".into()),
        cpu_vendor: k("AuthenticAMD".into()),
        microarch: k("Zen 4".into()),
        cores: k(8),
        logical_cpus: k(16),
        threads_per_core: k(2),
        smt: k("on".into()),
        allowed_cpus: k("0-15".into()),
        allowed_cpu_count: k(16),
        cpu_quota: k("none".into()),
        cpufreq_driver: k("acpi-cpufreq".into()),
        governor: k("performance".into()),
        boost: k(true),
        max_freq_khz: k("3700000".into()),
        hypervisor: k("none".into()),
        kernel: k("6.1.0-18-amd64".into()),
        gpu_model: Fact::unknown("no /proc/driver/nvidia/gpus"),
        cuda_driver: Fact::unknown("no /proc/driver/nvidia/version"),
        jetson: Some(JetsonEnvironment {
            model: "NVIDIA Jetson Orin Nano Developer Kit".into(),
            l4t_release: k("R36.4.3".into()),
            nvpmodel: k("15W (mode 0)".into()),
            jetson_clocks: k(false),
            emc_max_hz: k(3_199_000_000),
            emc_rate_hz: k(2_133_000_000),
        }),
    }
}

pub(crate) fn software() -> SoftwareEnvironment {
    SoftwareEnvironment {
        engine: "pytorch".into(),
        library: "libtorch 2.13.0+cpu".into(),
        blas_library: k("MKL".into()),
        blas_version: Fact::unknown("not exposed"),
        blas_kernel: k("run-time dispatch".into()),
        blas_threading: k("OpenMP".into()),
        libtorch: Some(LibtorchEnvironment {
            version: k("2.13.0+cpu".into()),
            backends: vec!["mkl".into(), "openmp".into()],
        }),
        cuda_runtime: Some(k("12.6".into())),
        thread_pools: vec![
            ThreadPool {
                name: "torch_intra_op".into(),
                threads: k(8),
                set_by: "--threads".into(),
                kind: "OpenMP".into(),
            },
            ThreadPool {
                name: "torch_inter_op".into(),
                threads: k(8),
                set_by: "libtorch default".into(),
                kind: "native".into(),
            },
        ],
    }
}

type HostChange = (&'static str, fn(&mut HostEnvironment));
type SoftwareChange = (&'static str, fn(&mut SoftwareEnvironment));

fn jetson(h: &mut HostEnvironment) -> &mut JetsonEnvironment {
    h.jetson.as_mut().unwrap()
}

/// Every performance-relevant host fact, changed.
const HOST_RELEVANT: &[HostChange] = &[
    ("cpu_model", |h| h.cpu_model = k("AMD EPYC 9R15".into())),
    ("microarch", |h| h.microarch = k("Zen 5".into())),
    ("cores", |h| h.cores = k(4)),
    ("logical_cpus", |h| h.logical_cpus = k(8)),
    ("threads_per_core", |h| h.threads_per_core = k(1)),
    ("smt", |h| h.smt = k("off".into())),
    ("allowed_cpu_count", |h| h.allowed_cpu_count = k(2)),
    ("cpu_quota", |h| h.cpu_quota = k("1.50 CPUs".into())),
    ("cpufreq_driver", |h| {
        h.cpufreq_driver = k("amd-pstate".into())
    }),
    ("governor", |h| h.governor = k("powersave".into())),
    ("boost", |h| h.boost = k(false)),
    ("max_freq_khz", |h| h.max_freq_khz = k("2200000".into())),
    ("hypervisor", |h| h.hypervisor = k("hypervisor".into())),
    ("kernel", |h| h.kernel = k("6.12.0".into())),
    ("gpu_model", |h| h.gpu_model = k("NVIDIA H100".into())),
    ("cuda_driver", |h| h.cuda_driver = k("550.54.14".into())),
    ("a fact becoming unknown", |h| {
        h.governor = Fact::unknown("gone")
    }),
    ("jetson", |h| h.jetson = None),
    ("jetson model", |h| {
        jetson(h).model = "NVIDIA Jetson AGX Orin".into()
    }),
    ("l4t_release", |h| {
        jetson(h).l4t_release = k("R36.4.0".into())
    }),
    ("nvpmodel", |h| {
        jetson(h).nvpmodel = k("MAXN (mode 2)".into())
    }),
    ("jetson_clocks", |h| jetson(h).jetson_clocks = k(true)),
    ("emc_max_hz", |h| jetson(h).emc_max_hz = k(2_133_000_000)),
];

/// Host facts recorded for the reader only.
const HOST_IRRELEVANT: &[HostChange] = &[
    ("cpu_vendor", |h| h.cpu_vendor = k("AMD".into())),
    ("allowed_cpus", |h| h.allowed_cpus = k("16-31".into())),
    ("emc_rate_hz", |h| jetson(h).emc_rate_hz = k(665_000_000)),
    ("an unknown's reason", |h| {
        h.gpu_model = Fact::unknown("permission denied")
    }),
];

const SOFTWARE_RELEVANT: &[SoftwareChange] = &[
    ("engine", |s| s.engine = "numpy".into()),
    ("library", |s| s.library = "libtorch 2.14.0+cpu".into()),
    ("blas_library", |s| s.blas_library = k("OpenBLAS".into())),
    ("blas_version", |s| s.blas_version = k("2024.2".into())),
    ("blas_kernel", |s| {
        s.blas_kernel = k("MKL_ENABLE_INSTRUCTIONS=AVX2".into())
    }),
    ("blas_threading", |s| {
        s.blas_threading = k("sequential".into())
    }),
    ("libtorch", |s| s.libtorch = None),
    ("libtorch version", |s| {
        s.libtorch.as_mut().unwrap().version = k("2.12.0".into())
    }),
    ("libtorch backends", |s| {
        s.libtorch.as_mut().unwrap().backends.push("onednn".into())
    }),
    ("cuda_runtime", |s| s.cuda_runtime = Some(k("13.0".into()))),
    ("no cuda_runtime", |s| s.cuda_runtime = None),
    ("intra-op threads", |s| s.thread_pools[0].threads = k(4)),
    ("a pool more", |s| {
        s.thread_pools.push(ThreadPool {
            name: "openblas".into(),
            threads: k(8),
            set_by: "--threads".into(),
            kind: "pthreads".into(),
        })
    }),
];

const SOFTWARE_IRRELEVANT: &[SoftwareChange] = &[
    ("an unknown's reason", |s| {
        s.blas_version = Fact::unknown("another reason")
    }),
    ("who set a pool", |s| {
        s.thread_pools[1].set_by = "OMP_NUM_THREADS".into()
    }),
];

#[test]
fn the_key_changes_exactly_when_a_performance_relevant_fact_does() {
    let base = Environment::new(host(), software());
    assert_eq!(base.key.len(), 16);
    assert!(base
        .key
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    for (name, change) in HOST_RELEVANT {
        let mut h = host();
        change(&mut h);
        let e = Environment::new(h, software());
        assert_ne!(e.host_key, base.host_key, "host_key ignores {name}");
        assert_ne!(e.key, base.key, "key ignores {name}");
    }
    for (name, change) in HOST_IRRELEVANT {
        let mut h = host();
        change(&mut h);
        assert_ne!(h, host(), "{name} changed nothing");
        let e = Environment::new(h, software());
        assert_eq!(e.host_key, base.host_key, "host_key follows {name}");
        assert_eq!(e.key, base.key, "key follows {name}");
    }
    for (name, change) in SOFTWARE_RELEVANT {
        let mut s = software();
        change(&mut s);
        let e = Environment::new(host(), s);
        assert_eq!(
            e.host_key, base.host_key,
            "host_key follows software {name}"
        );
        assert_ne!(e.key, base.key, "key ignores {name}");
    }
    for (name, change) in SOFTWARE_IRRELEVANT {
        let mut s = software();
        change(&mut s);
        assert_eq!(
            Environment::new(host(), s).key,
            base.key,
            "key follows {name}"
        );
    }
}

#[test]
fn keys_are_stable_across_builds() {
    // FNV-1a 64 of nothing is its offset basis; the sample's keys are pinned, so a change of
    // field order or encoding (which would orphan every stored key) fails here.
    assert_eq!(fingerprint(&[]), "cbf29ce484222325");
    assert_eq!(
        fingerprint(&[("a", "b".into())]),
        fingerprint(&[("a", "b".into())])
    );
    assert_ne!(
        fingerprint(&[("a", "bc".into())]),
        fingerprint(&[("ab", "c".into())])
    );
    let e = Environment::new(host(), software());
    assert_eq!((e.host_key.as_str(), e.key.as_str()), PINNED);
}

/// The keys of the sample above (see `keys_are_stable_across_builds`).
const PINNED: (&str, &str) = ("bc1fbb052b477106", "a3fbe39117aa029a");

#[test]
fn validation_recomputes_the_keys() {
    let e = Environment::new(host(), software());
    assert_eq!(e.validate(), Ok(()));
    let mut forged = e.clone();
    forged.key = "0000000000000000".into();
    let m = forged.validate().unwrap_err();
    assert!(
        m.starts_with("field 'metadata.environment.key': '0000000000000000' is not the key"),
        "{m}"
    );
    let mut edited = e.clone();
    edited.host.governor = k("powersave".into());
    assert!(edited.validate().unwrap_err().contains("host_key"));
    let mut v2 = e;
    v2.version = 2;
    assert!(v2
        .validate()
        .unwrap_err()
        .contains("'metadata.environment.version': 2"));
}

#[test]
fn facts_serialise_as_known_or_unknown_with_the_reason() {
    let f: Fact<u32> = Fact::Known(4);
    assert_eq!(serde_json::to_string(&f).unwrap(), r#"{"known":4}"#);
    let u: Fact<u32> = Fact::unknown("no cpufreq");
    assert_eq!(
        serde_json::to_string(&u).unwrap(),
        r#"{"unknown":"no cpufreq"}"#
    );
    assert_eq!(u.describe(), "unknown (no cpufreq)");
    assert_eq!(u.key_text(), "?");
    let back: Environment = serde_json::from_str(
        &serde_json::to_string(&Environment::new(host(), software())).unwrap(),
    )
    .unwrap();
    assert_eq!(back, Environment::new(host(), software()));
    assert!(serde_json::from_str::<Fact<u32>>(r#"{"guessed":4}"#).is_err());
}
