use std::path::Path;

use fleetcal_proto::environment::Fact;

use super::*;

fn fixture(name: &str) -> Root {
    Root::new(format!(
        "{}/src/detect/fixtures/env/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
}

/// `nvpmodel -q` as the fixture tree's `nvpmodel-q.txt` has it.
fn nvpmodel_of(root: &Root) -> impl Fn() -> Result<String, String> + '_ {
    move || root.read("nvpmodel-q.txt")
}

fn never() -> Result<String, String> {
    panic!("nvpmodel is asked on Jetsons only")
}

fn k<T>(v: T) -> Fact<T> {
    Fact::Known(v)
}

fn unknown_containing<T: std::fmt::Debug>(f: &Fact<T>, needle: &str) {
    match f {
        Fact::Unknown(reason) => assert!(reason.contains(needle), "{reason}"),
        Fact::Known(v) => panic!("expected unknown ({needle}), got {v:?}"),
    }
}

#[test]
fn jetson_orin_nano() {
    let root = fixture("orin");
    let e = host_environment(&root, &nvpmodel_of(&root));
    assert_eq!(e.cpu_model, k("Cortex-A78AE".to_string()));
    assert_eq!(e.microarch, k("Cortex-A78".to_string()));
    assert_eq!(
        (e.cores, e.logical_cpus, e.threads_per_core),
        (k(6), k(6), k(1))
    );
    assert_eq!(e.smt, k("notsupported".to_string()));
    assert_eq!(
        (e.allowed_cpus, e.allowed_cpu_count),
        (k("0-5".to_string()), k(6))
    );
    assert_eq!(e.cpu_quota, k("none".to_string()));
    assert_eq!(e.cpufreq_driver, k("tegra194".to_string()));
    assert_eq!(e.governor, k("schedutil".to_string()));
    assert_eq!(e.max_freq_khz, k("1510400".to_string()));
    unknown_containing(
        &e.boost,
        "cannot read /sys/devices/system/cpu/cpufreq/boost",
    );
    unknown_containing(&e.hypervisor, "x86 only");
    assert_eq!(e.kernel, k("5.15.148-tegra".to_string()));
    assert_eq!(
        e.gpu_model,
        k("NVIDIA Jetson Orin Nano Developer Kit integrated GPU (17000000.gpu)".to_string())
    );
    unknown_containing(&e.cuda_driver, "ships with L4T");
    let j = e.jetson.expect("a Jetson");
    assert_eq!(j.model, "NVIDIA Jetson Orin Nano Developer Kit");
    assert_eq!(j.l4t_release, k("R36.4.3".to_string()));
    assert_eq!(j.nvpmodel, k("15W (mode 0)".to_string()));
    // CPU minimum 729.6 MHz below the maximum: the clocks are not pinned.
    assert_eq!(j.jetson_clocks, k(false));
    unknown_containing(&j.emc_max_hz, "root only");
    unknown_containing(&j.emc_rate_hz, "/sys/kernel/debug/bpmp/debug/clk/emc/rate");
}

#[test]
fn jetson_without_nvpmodel_records_why() {
    let root = fixture("orin");
    let e = host_environment(&root, &|| {
        Err("`nvpmodel -q` could not run: not found".into())
    });
    unknown_containing(&e.jetson.unwrap().nvpmodel, "could not run");
    let e = host_environment(&root, &|| Ok("NVPM ERROR\n".into()));
    unknown_containing(
        &e.jetson.unwrap().nvpmodel,
        "printed no power mode: 'NVPM ERROR'",
    );
}

#[test]
fn desktop_alder_lake() {
    let root = fixture("desktop");
    let e = host_environment(&root, &never);
    assert_eq!(
        e.cpu_model,
        k("12th Gen Intel(R) Core(TM) i7-12700K".to_string())
    );
    assert_eq!(e.cpu_vendor, k("GenuineIntel".to_string()));
    assert_eq!(
        e.microarch,
        k("Intel hybrid (Alder/Raptor Lake) P-core".to_string())
    );
    // 8 P-cores with two threads, 4 E-cores with one: 12 cores, 20 logical CPUs.
    assert_eq!((e.cores.clone(), e.logical_cpus.clone()), (k(12), k(20)));
    assert_eq!(e.threads_per_core, k(2));
    assert_eq!(e.smt, k("on".to_string()));
    assert_eq!(e.allowed_cpu_count, k(20));
    assert_eq!(e.cpu_quota, k("none".to_string()));
    assert_eq!(e.cpufreq_driver, k("intel_pstate".to_string()));
    assert_eq!(e.governor, k("powersave".to_string()));
    assert_eq!(e.boost, k(true));
    assert_eq!(e.max_freq_khz, k("4900000, 3800000".to_string()));
    assert_eq!(e.hypervisor, k("none".to_string()));
    assert_eq!(e.kernel, k("6.8.0-45-generic".to_string()));
    assert_eq!(e.gpu_model, k("NVIDIA GeForce RTX 4090".to_string()));
    assert_eq!(e.cuda_driver, k("550.54.14".to_string()));
    assert_eq!(e.jetson, None);
}

#[test]
fn vm_without_cpufreq() {
    let root = fixture("vm");
    let e = host_environment(&root, &never);
    assert_eq!(e.cpu_model, k("Intel(R) Xeon(R) Processor".to_string()));
    assert_eq!(
        (e.cores, e.logical_cpus, e.threads_per_core),
        (k(2), k(2), k(1))
    );
    assert_eq!(e.allowed_cpus, k("0-1".to_string()));
    assert_eq!(e.cpu_quota, k("none".to_string()));
    for f in [&e.cpufreq_driver, &e.governor, &e.max_freq_khz] {
        unknown_containing(f, "no cpufreq policy");
    }
    unknown_containing(&e.boost, "no cpufreq policy");
    assert_eq!(e.hypervisor, k("hypervisor".to_string()));
    assert_eq!(e.kernel, k("6.18.44-fc-v669".to_string()));
    unknown_containing(&e.gpu_model, "no NVIDIA driver loaded");
    unknown_containing(&e.cuda_driver, "/proc/driver/nvidia/version");
}

#[test]
fn an_empty_root_is_all_unknown_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let e = host_environment(&Root::new(dir.path()), &never);
    unknown_containing(
        &e.cpu_model,
        "cannot read /proc/cpuinfo: No such file or directory",
    );
    unknown_containing(&e.logical_cpus, "/sys/devices/system/cpu/online");
    unknown_containing(&e.cpu_quota, "/proc/self/cgroup");
    unknown_containing(&e.kernel, "/proc/sys/kernel/osrelease");
    assert_eq!(e.jetson, None);
    // Every reason names what was read; none is empty.
    let json = serde_json::to_value(&e).unwrap();
    assert!(!json.to_string().contains(r#""unknown":"""#), "{json}");
}

#[test]
fn quotas_and_lists() {
    assert_eq!(
        parse_cpu_list("0-3,8,10-11").unwrap(),
        [0, 1, 2, 3, 8, 10, 11]
    );
    assert!(parse_cpu_list("").is_err());
    assert!(parse_cpu_list("3-1").is_err());
    assert!(parse_cpu_list("0-4294967295").is_err());
    assert_eq!(parse_cpu_max("max 100000"), Ok(None));
    assert_eq!(parse_cpu_max("150000 100000"), Ok(Some((150_000, 100_000))));
    assert!(parse_cpu_max("x y").is_err());
    assert!(parse_cpu_max("5 0").is_err());
    assert_eq!(quota_v1("-1", "100000").as_deref(), Ok("none"));
    assert_eq!(
        quota_v1("200000", "100000").as_deref(),
        Ok("2.00 CPUs (200000/100000)")
    );
    // cgroup v2: the tightest limit on the way up counts.
    let dir = tempfile::tempdir().unwrap();
    let root = Root::new(dir.path());
    for (path, text) in [
        ("proc/self/cgroup", "0::/a/b\n"),
        ("sys/fs/cgroup/cgroup.controllers", "cpu\n"),
        ("sys/fs/cgroup/a/cpu.max", "50000 100000\n"),
        ("sys/fs/cgroup/a/b/cpu.max", "max 100000\n"),
    ] {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    assert_eq!(cpu_quota(&root).as_deref(), Ok("0.50 CPUs (50000/100000)"));
}

#[test]
fn tool_outputs() {
    assert_eq!(
        parse_l4t_release("# R35 (release), REVISION: 5.0, GCID: 1\n").as_deref(),
        Some("R35.5.0")
    );
    assert_eq!(parse_l4t_release("garbage"), None);
    assert_eq!(
        describe_nvpmodel("NV Power Mode: MAXN_SUPER\n2\n").as_deref(),
        Some("MAXN_SUPER (mode 2)")
    );
    assert_eq!(
        describe_nvpmodel("NV Power Mode: 7W\n").as_deref(),
        Some("7W")
    );
    assert_eq!(
        parse_nvidia_version(
            "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.86.15  Release Build\n"
        )
        .as_deref(),
        Some("570.86.15")
    );
    assert_eq!(parse_nvidia_version("nothing"), None);
}

#[test]
fn this_host_never_fails() {
    let e = detect_host();
    if Path::new("/proc/cpuinfo").exists() {
        assert!(e.cpu_model.known().is_some(), "{:?}", e.cpu_model);
        assert!(e.allowed_cpu_count.known().is_some_and(|&n| n >= 1));
    }
}
