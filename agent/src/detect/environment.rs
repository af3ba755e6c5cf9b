//! The host half of a result's measurement environment ([`HostEnvironment`]): CPU topology,
//! the CPUs and quota this process may use, cpufreq governor, boost and clock caps, the
//! kernel, the NVIDIA GPU and driver, and on a Jetson its L4T release, nvpmodel mode,
//! jetson_clocks state and EMC clock.
//!
//! Every reader takes a root directory (`/` on a board; a fixture tree in the tests, see
//! `fixtures/env/`) and never fails: whatever cannot be read is recorded as unknown, with the
//! path read and the error as the reason. `nvpmodel -q` is asked through a function, so that
//! tests pass its output (and a board runs it with a time limit).

use std::collections::BTreeSet;
use std::path::PathBuf;

use fleetcal_proto::environment::{Fact, HostEnvironment, JetsonEnvironment};

use super::command::{output_within, TOOL_TIMEOUT};
use super::cpuinfo::{parse_cpuinfo, CpuInfo};
use super::jetson::{parse_device_tree_model, parse_nvpmodel, MODEL_FILES};
use super::microarch::Microarch;

/// The cpufreq policy directories.
const CPUFREQ: &str = "/sys/devices/system/cpu/cpufreq";
/// The EMC clock in debugfs (Orin: BPMP clocks; older Jetsons: the clk tree). Root only.
const EMC_RATE: [&str; 2] = [
    "/sys/kernel/debug/bpmp/debug/clk/emc/rate",
    "/sys/kernel/debug/clk/emc/clk_rate",
];
/// The EMC clock's maximum in debugfs (Orin). Root only.
const EMC_MAX_RATE: &str = "/sys/kernel/debug/bpmp/debug/clk/emc/max_rate";

/// A file system seen from `root`; error texts name the path as it is on the board.
#[derive(Debug, Clone)]
pub struct Root(PathBuf);

impl Root {
    /// The file system under `dir` (`/` on a board).
    pub fn new(dir: impl Into<PathBuf>) -> Root {
        Root(dir.into())
    }

    fn path(&self, abs: &str) -> PathBuf {
        self.0.join(abs.trim_start_matches('/'))
    }

    /// A file's text, or `cannot read PATH: ERROR`.
    pub fn read(&self, abs: &str) -> Result<String, String> {
        std::fs::read(self.path(abs))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| format!("cannot read {abs}: {}", io_reason(&e)))
    }

    /// A file's trimmed text; an empty file is an error too.
    pub fn read_trimmed(&self, abs: &str) -> Result<String, String> {
        let text = self.read(abs)?;
        let t = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
        if t.is_empty() {
            Err(format!("{abs} is empty"))
        } else {
            Ok(t.to_string())
        }
    }

    /// The entry names in a directory whose name starts with `prefix`, sorted.
    pub fn entries(&self, abs: &str, prefix: &str) -> Result<Vec<String>, String> {
        let dir = std::fs::read_dir(self.path(abs))
            .map_err(|e| format!("cannot list {abs}: {}", io_reason(&e)))?;
        let mut names: Vec<String> = dir
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| n.starts_with(prefix))
            .collect();
        names.sort_by_key(|n| natural_key(n));
        Ok(names)
    }
}

/// `No such file or directory`, `Permission denied`: the OS message without its code.
fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.split_once(" (os error") {
        Some((head, _)) => head.to_string(),
        None => text,
    }
}

/// Sort key that puts `policy2` before `policy10`.
fn natural_key(name: &str) -> (String, u64) {
    let digits = name.trim_start_matches(|c: char| !c.is_ascii_digit());
    let head = &name[..name.len() - digits.len()];
    (head.to_string(), digits.parse().unwrap_or(0))
}

/// Detects this board's environment (root `/`, `nvpmodel -q` with a time limit).
pub fn detect_host() -> HostEnvironment {
    host_environment(&Root::new(super::root::host_root()), &|| {
        output_within("nvpmodel", &["-q"], TOOL_TIMEOUT)
    })
}

/// The host environment under `root`; `nvpmodel` answers `nvpmodel -q` (asked on Jetsons only).
pub fn host_environment(
    root: &Root,
    nvpmodel: &dyn Fn() -> Result<String, String>,
) -> HostEnvironment {
    let cpuinfo = root.read("/proc/cpuinfo").map(|t| parse_cpuinfo(&t));
    let cpu = |f: &dyn Fn(&CpuInfo) -> Result<String, String>| match &cpuinfo {
        Ok(c) => Fact::from_result(f(c)),
        Err(e) => Fact::unknown(e.clone()),
    };
    let topology = topology(root, cpuinfo.as_ref().ok());
    let (allowed_cpus, allowed_cpu_count) = allowed_cpus(root);
    let policies = Policies::read(root);
    let jetson = jetson_model(root).map(|model| jetson(root, model, nvpmodel));
    HostEnvironment {
        cpu_model: cpu(&|c| {
            non_empty(
                &c.model_name,
                "/proc/cpuinfo names no model and its CPU part is not in the table",
            )
        }),
        cpu_vendor: cpu(&|c| non_empty(&c.vendor, "/proc/cpuinfo names no vendor")),
        microarch: cpu(&|c| Ok(Microarch::classify(c).name().to_string())),
        cores: topology.cores,
        logical_cpus: topology.logical,
        threads_per_core: topology.threads_per_core,
        smt: Fact::from_result(root.read_trimmed("/sys/devices/system/cpu/smt/control")),
        allowed_cpus,
        allowed_cpu_count,
        cpu_quota: Fact::from_result(cpu_quota(root)),
        cpufreq_driver: policies.distinct("scaling_driver"),
        governor: policies.distinct("scaling_governor"),
        boost: Fact::from_result(boost(root, &policies)),
        max_freq_khz: policies.distinct("scaling_max_freq"),
        hypervisor: cpu(&|c| hypervisor(root, c)),
        kernel: Fact::from_result(root.read_trimmed("/proc/sys/kernel/osrelease")),
        gpu_model: Fact::from_result(gpu_model(root, jetson.as_ref())),
        cuda_driver: Fact::from_result(cuda_driver(root, jetson.is_some())),
        jetson,
    }
}

fn non_empty(v: &str, reason: &str) -> Result<String, String> {
    if v.trim().is_empty() {
        Err(reason.into())
    } else {
        Ok(v.trim().to_string())
    }
}

/// Cores, logical CPUs and threads per core.
struct Topology {
    cores: Fact<u32>,
    logical: Fact<u32>,
    threads_per_core: Fact<u32>,
}

/// The topology from sysfs (online CPUs, each one's `thread_siblings_list`), else from
/// `/proc/cpuinfo` (`processor` entries, `physical id` × `core id` pairs).
fn topology(root: &Root, cpuinfo: Option<&CpuInfo>) -> Topology {
    let online = root
        .read_trimmed("/sys/devices/system/cpu/online")
        .and_then(|t| parse_cpu_list(&t));
    let siblings = online.as_ref().ok().and_then(|cpus| {
        let sets: Option<BTreeSet<String>> = cpus
            .iter()
            .map(|cpu| {
                root.read_trimmed(&format!(
                    "/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list"
                ))
                .ok()
            })
            .collect();
        sets
    });
    let logical = match (&online, cpuinfo) {
        (Ok(cpus), _) => count(cpus.len()),
        (Err(_), Some(c)) if c.logical_cpus > 0 => Ok(c.logical_cpus),
        (Err(e), _) => Err(format!("{e}; /proc/cpuinfo lists no processor either")),
    };
    let cores = match (&siblings, cpuinfo) {
        (Some(sets), _) => count(sets.len()),
        // `cores` falls back to the logical count when cpuinfo has no core ids: not a reading.
        (None, Some(c)) if has_core_ids(c) => Ok(c.cores),
        (None, _) => Err(
            "no readable thread_siblings_list under /sys/devices/system/cpu/cpu*/topology and no core ids in /proc/cpuinfo"
                .into(),
        ),
    };
    let widest = siblings.as_ref().and_then(|sets| {
        sets.iter()
            .filter_map(|s| parse_cpu_list(s).ok().map(|c| c.len()))
            .max()
    });
    let threads_per_core = match (widest, &logical, &cores) {
        (Some(w), _, _) => count(w),
        (None, Ok(l), Ok(c)) if *c > 0 && l % c == 0 => Ok(l / c),
        (None, Ok(l), Ok(c)) => Err(format!(
            "{l} logical CPUs do not divide evenly over {c} cores and sysfs lists no thread siblings"
        )),
        _ => Err("needs both the core and the logical CPU count".into()),
    };
    Topology {
        cores: Fact::from_result(cores),
        logical: Fact::from_result(logical),
        threads_per_core: Fact::from_result(threads_per_core),
    }
}

fn has_core_ids(c: &CpuInfo) -> bool {
    // parse_cpuinfo sets cores to the logical count when it saw no core ids; a real pairing
    // of 1 core per logical CPU is indistinguishable, so ask for x86's fields explicitly.
    !c.is_arm() && c.cores > 0
}

fn count(n: usize) -> Result<u32, String> {
    u32::try_from(n).map_err(|_| format!("{n} CPUs is more than this build counts"))
}

/// Parses a kernel CPU list (`0-3,8,10-11`) into CPU numbers.
pub fn parse_cpu_list(text: &str) -> Result<Vec<u32>, String> {
    let mut cpus = Vec::new();
    let bad = || {
        format!(
            "'{}' is not a CPU list",
            fleetcal_proto::quote::bounded(text)
        )
    };
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (lo, hi),
            None => (part, part),
        };
        let lo: u32 = lo.trim().parse().map_err(|_| bad())?;
        let hi: u32 = hi.trim().parse().map_err(|_| bad())?;
        if hi < lo || hi - lo > 1 << 20 {
            return Err(bad());
        }
        cpus.extend(lo..=hi);
    }
    if cpus.is_empty() {
        return Err(bad());
    }
    Ok(cpus)
}

/// `Cpus_allowed_list` of `/proc/self/status` (what `sched_getaffinity` returns), and its size.
fn allowed_cpus(root: &Root) -> (Fact<String>, Fact<u32>) {
    let list = root.read("/proc/self/status").and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .map(|v| v.trim().to_string())
            .ok_or_else(|| "/proc/self/status has no Cpus_allowed_list".to_string())
    });
    match list {
        Ok(list) => {
            let n = parse_cpu_list(&list).and_then(|c| count(c.len()));
            (Fact::Known(list), Fact::from_result(n))
        }
        Err(e) => (Fact::unknown(e.clone()), Fact::unknown(e)),
    }
}

/// The cgroup CPU quota. cgroup v1 (a `cpu` controller line in `/proc/self/cgroup`):
/// `cpu.cfs_quota_us` / `cpu.cfs_period_us` (`-1` = none). cgroup v2 (the `0::PATH` line, with
/// `/sys/fs/cgroup/cgroup.controllers` readable): the tightest `cpu.max` (`max 100000` = none,
/// `150000 100000` = 1.5 CPUs) from the process's cgroup up to the root; a cgroup without the
/// file has no CPU limit of its own.
fn cpu_quota(root: &Root) -> Result<String, String> {
    let cgroups = root.read("/proc/self/cgroup")?;
    let mut tried = Vec::new();
    let lines = || {
        cgroups.lines().filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            Some((controllers, path.trim().trim_end_matches('/')))
        })
    };
    for (controllers, path) in lines() {
        if !controllers.split(',').any(|c| c == "cpu") {
            continue;
        }
        for mount in [
            format!("/sys/fs/cgroup/{controllers}"),
            "/sys/fs/cgroup/cpu".into(),
        ] {
            let quota = root.read_trimmed(&format!("{mount}{path}/cpu.cfs_quota_us"));
            let period = root.read_trimmed(&format!("{mount}{path}/cpu.cfs_period_us"));
            match (quota, period) {
                (Ok(q), Ok(p)) => return quota_v1(&q, &p),
                (Err(e), _) | (_, Err(e)) => tried.push(e),
            }
        }
    }
    if let Some((_, path)) = lines().find(|(c, _)| c.is_empty()) {
        match root.read("/sys/fs/cgroup/cgroup.controllers") {
            Ok(_) => return quota_v2_walk(root, path),
            Err(e) => tried.push(e),
        }
    }
    if tried.is_empty() {
        Err(
            "/proc/self/cgroup names neither a cgroup v1 cpu controller nor a cgroup v2 path"
                .into(),
        )
    } else {
        Err(tried.join("; "))
    }
}

/// The tightest `cpu.max` from `/sys/fs/cgroup{path}` up to the root.
fn quota_v2_walk(root: &Root, path: &str) -> Result<String, String> {
    let mut dir = path.to_string();
    let mut tightest: Option<(u64, u64)> = None;
    loop {
        let file = format!("/sys/fs/cgroup{dir}/cpu.max");
        if let Ok(text) = root.read_trimmed(&file) {
            if let Some((q, p)) = parse_cpu_max(&text).map_err(|e| format!("{file}: {e}"))? {
                let share = |(q, p): (u64, u64)| q as f64 / p.max(1) as f64;
                if tightest.is_none_or(|t| share((q, p)) < share(t)) {
                    tightest = Some((q, p));
                }
            }
        }
        match dir.rsplit_once('/') {
            Some((parent, _)) => dir = parent.to_string(),
            None => break,
        }
    }
    Ok(tightest.map_or_else(|| "none".into(), |(q, p)| quota_text(q, p)))
}

/// `cpu.max`: `None` for `max PERIOD`, else `(quota, period)`.
fn parse_cpu_max(text: &str) -> Result<Option<(u64, u64)>, String> {
    let bad = || format!("'{}' is not a quota", fleetcal_proto::quote::bounded(text));
    let mut words = text.split_whitespace();
    let (q, p) = (words.next().ok_or_else(bad)?, words.next());
    let period = match p {
        Some(p) => p.parse::<u64>().map_err(|_| bad())?,
        None => 100_000,
    };
    if q == "max" {
        return Ok(None);
    }
    let quota = q.parse::<u64>().map_err(|_| bad())?;
    if period == 0 {
        return Err(bad());
    }
    Ok(Some((quota, period)))
}

fn quota_text(quota: u64, period: u64) -> String {
    format!(
        "{:.2} CPUs ({quota}/{period})",
        quota as f64 / period.max(1) as f64
    )
}

fn quota_v1(quota: &str, period: &str) -> Result<String, String> {
    if quota.trim() == "-1" {
        return Ok("none".into());
    }
    match (quota.trim().parse::<u64>(), period.trim().parse::<u64>()) {
        (Ok(q), Ok(p)) if p > 0 => Ok(quota_text(q, p)),
        _ => Err(format!(
            "cpu.cfs_quota_us '{}' / cpu.cfs_period_us '{}' are not a quota",
            fleetcal_proto::quote::bounded(quota),
            fleetcal_proto::quote::bounded(period)
        )),
    }
}

/// The cpufreq policies (`policy0`, `policy4`, ...), or why there are none.
pub struct Policies<'a> {
    root: &'a Root,
    names: Result<Vec<String>, String>,
}

impl<'a> Policies<'a> {
    /// Lists `/sys/devices/system/cpu/cpufreq/policy*` under `root`.
    pub fn read(root: &'a Root) -> Policies<'a> {
        let names = root.entries(CPUFREQ, "policy").and_then(|n| {
            if n.is_empty() {
                Err(format!(
                    "no cpufreq policy under {CPUFREQ} (no cpufreq driver: usual in a VM)"
                ))
            } else {
                Ok(n)
            }
        });
        Policies { root, names }
    }

    /// Every policy's `file`, trimmed, in policy order.
    pub fn values(&self, file: &str) -> Result<Vec<String>, String> {
        let names = self.names.as_ref().map_err(Clone::clone)?;
        names
            .iter()
            .map(|p| self.root.read_trimmed(&format!("{CPUFREQ}/{p}/{file}")))
            .collect()
    }

    /// The distinct values of a policy file over all policies, comma-separated in policy order.
    fn distinct(&self, file: &str) -> Fact<String> {
        Fact::from_result(self.values(file).map(|values| {
            let mut seen = Vec::new();
            for v in values {
                if !seen.contains(&v) {
                    seen.push(v);
                }
            }
            seen.join(", ")
        }))
    }
}

/// Boost: the global `cpufreq/boost` (acpi-cpufreq, amd-pstate), else intel_pstate's
/// `no_turbo` (inverted), else every policy's own `boost` file.
fn boost(root: &Root, policies: &Policies) -> Result<bool, String> {
    let flag = |text: &str, path: &str| match text {
        "0" => Ok(false),
        "1" => Ok(true),
        other => Err(format!(
            "{path}: '{}' is neither 0 nor 1",
            fleetcal_proto::quote::bounded(other)
        )),
    };
    let global = format!("{CPUFREQ}/boost");
    let mut tried = Vec::new();
    match root.read_trimmed(&global) {
        Ok(t) => return flag(&t, &global),
        Err(e) => tried.push(e),
    }
    let no_turbo = "/sys/devices/system/cpu/intel_pstate/no_turbo";
    match root.read_trimmed(no_turbo) {
        Ok(t) => return flag(&t, no_turbo).map(|off| !off),
        Err(e) => tried.push(e),
    }
    match policies.values("boost") {
        Ok(values) => {
            let mut all = true;
            for v in values {
                all &= flag(&v, "cpufreq/policy*/boost")?;
            }
            Ok(all)
        }
        Err(e) => {
            tried.push(e);
            Err(tried.join("; "))
        }
    }
}

/// `none` without the x86 `hypervisor` flag; with it, `hypervisor` and the DMI product name
/// when readable. Other architectures have no such flag.
fn hypervisor(root: &Root, cpu: &CpuInfo) -> Result<String, String> {
    if cpu.is_arm() || cpu.flags.is_empty() {
        return Err(
            "/proc/cpuinfo has no x86 CPU flags (the hypervisor flag exists on x86 only)".into(),
        );
    }
    if !cpu.has("hypervisor") {
        return Ok("none".into());
    }
    let product = [
        "/sys/class/dmi/id/product_name",
        "/sys/class/dmi/id/sys_vendor",
    ]
    .iter()
    .find_map(|p| root.read_trimmed(p).ok());
    Ok(match product {
        Some(p) => format!("hypervisor ({p})"),
        None => "hypervisor".into(),
    })
}

/// The NVIDIA GPU models from `/proc/driver/nvidia/gpus/*/information`; on a Jetson, its
/// integrated GPU when a GPU devfreq node shows one.
fn gpu_model(root: &Root, jetson: Option<&JetsonEnvironment>) -> Result<String, String> {
    let gpus_dir = "/proc/driver/nvidia/gpus";
    match root.entries(gpus_dir, "") {
        Ok(ids) if !ids.is_empty() => {
            let mut models = Vec::new();
            for id in ids {
                let info = root.read(&format!("{gpus_dir}/{id}/information"))?;
                let model = info
                    .lines()
                    .find_map(|l| l.strip_prefix("Model:"))
                    .map(|m| m.trim().to_string())
                    .ok_or_else(|| format!("{gpus_dir}/{id}/information names no model"))?;
                if !models.contains(&model) {
                    models.push(model);
                }
            }
            Ok(models.join(", "))
        }
        Ok(_) => Err(format!("{gpus_dir} is empty")),
        Err(e) => match jetson {
            Some(j) => gpu_devfreq(root)
                .map(|node| format!("{} integrated GPU ({node})", j.model))
                .map_err(|d| format!("{e}; {d}")),
            None => Err(format!("{e} (no NVIDIA driver loaded)")),
        },
    }
}

/// The devfreq node of a Jetson's GPU (`17000000.gpu`, `17000000.ga10b`).
fn gpu_devfreq(root: &Root) -> Result<String, String> {
    let nodes = root.entries("/sys/class/devfreq", "")?;
    nodes
        .into_iter()
        .find(|n| {
            ["gpu", "ga10b", "gv11b", "gp10b"]
                .iter()
                .any(|g| n.contains(g))
        })
        .ok_or_else(|| "no GPU node under /sys/class/devfreq".into())
}

/// The kernel module version in `/proc/driver/nvidia/version`
/// (`NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb ...`).
fn cuda_driver(root: &Root, jetson: bool) -> Result<String, String> {
    let path = "/proc/driver/nvidia/version";
    let text = root.read(path).map_err(|e| {
        if jetson {
            format!("{e} (a Jetson's GPU driver ships with L4T: see l4t_release)")
        } else {
            format!("{e} (no NVIDIA driver loaded)")
        }
    })?;
    parse_nvidia_version(&text).ok_or_else(|| format!("{path} names no driver version"))
}

/// The version after `Kernel Module` on the `NVRM version:` line.
pub fn parse_nvidia_version(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.starts_with("NVRM version:"))?;
    let after = line.split("Kernel Module").nth(1)?;
    after
        .split_whitespace()
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .map(str::to_string)
}

/// The Jetson module named by the device tree, if this is a Jetson.
fn jetson_model(root: &Root) -> Option<String> {
    MODEL_FILES
        .iter()
        .find_map(|p| std::fs::read(root.path(p)).ok())
        .and_then(|b| parse_device_tree_model(&b))
        .filter(|m| m.contains("Jetson"))
}

fn jetson(
    root: &Root,
    model: String,
    nvpmodel: &dyn Fn() -> Result<String, String>,
) -> JetsonEnvironment {
    let rate = |abs: &str| {
        root.read_trimmed(abs).and_then(|t| {
            t.parse::<u64>().map_err(|_| {
                format!(
                    "{abs}: '{}' is not a rate in Hz",
                    fleetcal_proto::quote::bounded(&t)
                )
            })
        })
    };
    let emc_rate = (|| {
        let mut tried = Vec::new();
        for path in EMC_RATE {
            match rate(path) {
                Ok(hz) => return Ok(hz),
                Err(e) => tried.push(e),
            }
        }
        Err(format!("{} (debugfs: root only)", tried.join("; ")))
    })();
    JetsonEnvironment {
        model,
        l4t_release: Fact::from_result(root.read("/etc/nv_tegra_release").and_then(|t| {
            parse_l4t_release(&t).ok_or_else(|| "/etc/nv_tegra_release names no release".into())
        })),
        nvpmodel: Fact::from_result(nvpmodel().and_then(|t| {
            describe_nvpmodel(&t).ok_or_else(|| {
                format!(
                    "`nvpmodel -q` printed no power mode: '{}'",
                    fleetcal_proto::quote::bounded(t.trim())
                )
            })
        })),
        jetson_clocks: Fact::from_result(jetson_clocks(root)),
        emc_max_hz: Fact::from_result(
            rate(EMC_MAX_RATE).map_err(|e| format!("{e} (debugfs: root only)")),
        ),
        emc_rate_hz: Fact::from_result(emc_rate),
    }
}

/// `R36.4.3` from `# R36 (release), REVISION: 4.3, GCID: ...`.
pub fn parse_l4t_release(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.trim_start().starts_with("# R"))?;
    let major = line
        .trim_start()
        .strip_prefix("# R")?
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .filter(|m| !m.is_empty())?;
    let revision = line.split("REVISION:").nth(1)?.split(',').next()?.trim();
    if revision.is_empty() {
        return None;
    }
    Some(format!("R{major}.{revision}"))
}

/// `15W (mode 0)` from `nvpmodel -q` (`NV Power Mode: 15W` then the mode id on its own line).
pub fn describe_nvpmodel(text: &str) -> Option<String> {
    let name = parse_nvpmodel(text)?;
    let id = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_digit()));
    Some(match id {
        Some(id) => format!("{name} (mode {id})"),
        None => name,
    })
}

/// jetson_clocks pins every CPU policy and the GPU at their maximum: minimum clock = maximum.
fn jetson_clocks(root: &Root) -> Result<bool, String> {
    let policies = Policies::read(root);
    let mins = policies.values("scaling_min_freq")?;
    let maxs = policies.values("scaling_max_freq")?;
    let cpu_pinned = mins.iter().zip(&maxs).all(|(a, b)| a == b);
    let gpu = gpu_devfreq(root)?;
    let dir = format!("/sys/class/devfreq/{gpu}");
    let gpu_min = root.read_trimmed(&format!("{dir}/min_freq"))?;
    let gpu_max = root.read_trimmed(&format!("{dir}/max_freq"))?;
    Ok(cpu_pinned && gpu_min == gpu_max)
}

#[cfg(test)]
#[path = "environment_tests.rs"]
mod tests;
