//! The measurement environment (`metadata.environment`, version [`ENVIRONMENT_VERSION`]): the
//! facts under which a result's figures were taken, and a fingerprint key over those of them
//! that change performance.
//!
//! Every fact is a [`Fact`]: `{"known": value}`, or `{"unknown": "why it could not be read"}`.
//! Nothing is guessed: a file that is absent or unreadable leaves its fact unknown, with the
//! path and the error as the reason.
//!
//! Two keys, each 16 lowercase hex digits (FNV-1a, 64 bit, over `name=value` lines in a fixed
//! order; an unknown fact hashes as `?` whatever its reason):
//! - `host_key` over the host's performance-relevant facts ([`HostEnvironment::key_lines`]):
//!   the same for every framework on a board; agents report it at registration.
//! - `key` over those and the run's software stack ([`SoftwareEnvironment::key_lines`]): two
//!   results with the same key were taken under the same conditions.
//!
//! The software's thread pools (name, kind and threads, not who set them) are in `key`.
//! Not in either key (recorded for the reader only): the CPU vendor, which CPUs the process
//! may use (their count is in the key), the current EMC clock of a Jetson (its maximum is in
//! the key), and every reason text.

use serde::{Deserialize, Serialize};

/// The environment section version this build writes and reads.
pub const ENVIRONMENT_VERSION: u32 = 1;

/// One fact about the environment: known, or unknown with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[schemars(rename = "Fact_of_{T}")]
pub enum Fact<T> {
    /// The value read.
    Known(T),
    /// Why it could not be read (the file and the error, or why it does not exist here).
    Unknown(String),
}

impl<T> Fact<T> {
    /// An unknown fact with its reason.
    pub fn unknown(reason: impl Into<String>) -> Fact<T> {
        Fact::Unknown(reason.into())
    }

    /// The value, when known.
    pub fn known(&self) -> Option<&T> {
        match self {
            Fact::Known(v) => Some(v),
            Fact::Unknown(_) => None,
        }
    }

    /// A fact from a result: `Err(reason)` becomes unknown.
    pub fn from_result(r: Result<T, String>) -> Fact<T> {
        match r {
            Ok(v) => Fact::Known(v),
            Err(reason) => Fact::Unknown(reason),
        }
    }
}

impl<T: std::fmt::Display> Fact<T> {
    /// The text hashed into a key: the value, or `?` for any unknown (its reason is not part
    /// of the key).
    pub fn key_text(&self) -> String {
        match self {
            Fact::Known(v) => v.to_string(),
            Fact::Unknown(_) => "?".into(),
        }
    }

    /// The value as text, or `unknown (reason)`.
    pub fn describe(&self) -> String {
        match self {
            Fact::Known(v) => v.to_string(),
            Fact::Unknown(reason) => format!("unknown ({reason})"),
        }
    }
}

/// The environment of one result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// Must be [`ENVIRONMENT_VERSION`].
    pub version: u32,
    /// Fingerprint over the host's and the software's performance-relevant facts.
    pub key: String,
    /// Fingerprint over the host's performance-relevant facts only.
    pub host_key: String,
    /// The board, its OS and its power state.
    pub host: HostEnvironment,
    /// The engine and the libraries under it.
    pub software: SoftwareEnvironment,
}

/// The board, its OS and its power state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostEnvironment {
    /// CPU model name (`/proc/cpuinfo` `model name`, or the ARM core's name from its part number).
    pub cpu_model: Fact<String>,
    /// CPU vendor (`AuthenticAMD`, `ARM`). Not in the key (the model implies it).
    pub cpu_vendor: Fact<String>,
    /// Microarchitecture class (`Zen 4`, `Cortex-A78`), as the peak tables use it.
    pub microarch: Fact<String>,
    /// Physical cores (distinct `physical id` × `core id` pairs in `/proc/cpuinfo`).
    pub cores: Fact<u32>,
    /// Logical CPUs online (`processor` entries in `/proc/cpuinfo`).
    pub logical_cpus: Fact<u32>,
    /// Hardware threads per core: the most of any core (sysfs `thread_siblings_list`), else
    /// logical ÷ physical.
    pub threads_per_core: Fact<u32>,
    /// SMT control (`/sys/devices/system/cpu/smt/control`: `on`, `off`, `notsupported`, ...).
    pub smt: Fact<String>,
    /// The CPUs this process may run on (`/proc/self/status` `Cpus_allowed_list`, e.g. `0-3`).
    /// Not in the key (their count is).
    pub allowed_cpus: Fact<String>,
    /// How many CPUs that list holds.
    pub allowed_cpu_count: Fact<u32>,
    /// The cgroup CPU quota of this process (`cpu.max` in cgroup v2, `cpu.cfs_quota_us` /
    /// `cpu.cfs_period_us` in v1): `none`, or `1.50 CPUs (150000/100000)`.
    pub cpu_quota: Fact<String>,
    /// The cpufreq driver (`acpi-cpufreq`, `intel_pstate`, `amd-pstate-epp`, `tegra194`).
    pub cpufreq_driver: Fact<String>,
    /// The cpufreq governor of every policy (distinct values, comma-separated).
    pub governor: Fact<String>,
    /// Turbo/boost enabled (`cpufreq/boost`, or the inverse of `intel_pstate/no_turbo`).
    pub boost: Fact<bool>,
    /// The clock cap of every cpufreq policy in kHz (`scaling_max_freq`, distinct values).
    pub max_freq_khz: Fact<String>,
    /// Virtualisation: `none`, or `hypervisor` (the x86 `hypervisor` CPU flag) with the DMI
    /// product name when readable.
    pub hypervisor: Fact<String>,
    /// Kernel release (`/proc/sys/kernel/osrelease`).
    pub kernel: Fact<String>,
    /// GPU model (`/proc/driver/nvidia/gpus/*/information`; on a Jetson its integrated GPU).
    pub gpu_model: Fact<String>,
    /// NVIDIA kernel driver version (`/proc/driver/nvidia/version`).
    pub cuda_driver: Fact<String>,
    /// Jetson facts; absent when the board is not a Jetson.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jetson: Option<JetsonEnvironment>,
}

/// An NVIDIA Jetson's software release and power state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JetsonEnvironment {
    /// The module (device-tree model, `NVIDIA Jetson Orin Nano Developer Kit`).
    pub model: String,
    /// L4T release (`/etc/nv_tegra_release`: `R36.4.3`), which names the JetPack.
    pub l4t_release: Fact<String>,
    /// The nvpmodel power mode (`nvpmodel -q`: `15W (mode 0)`).
    pub nvpmodel: Fact<String>,
    /// Whether `jetson_clocks` pins the clocks: every CPU policy and the GPU run with their
    /// minimum clock equal to their maximum (cpufreq `scaling_min_freq`, devfreq `min_freq`).
    pub jetson_clocks: Fact<bool>,
    /// The EMC (memory) clock's maximum in Hz (debugfs `bpmp/debug/clk/emc/max_rate`, root only).
    pub emc_max_hz: Fact<u64>,
    /// The EMC clock when read, in Hz (debugfs `bpmp/debug/clk/emc/rate`). Not in the key: it
    /// moves with the load unless `jetson_clocks` pins it.
    pub emc_rate_hz: Fact<u64>,
}

/// The engine and the libraries a run used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SoftwareEnvironment {
    /// The engine (`numpy`, `pytorch`).
    pub engine: String,
    /// The array library and its version (`ndarray 0.17.2`, `libtorch 2.13.0+cpu`).
    pub library: String,
    /// The BLAS library (`OpenBLAS`, `MKL`, `cuBLAS`).
    pub blas_library: Fact<String>,
    /// Its version.
    pub blas_version: Fact<String>,
    /// The kernel (core type) it runs (`Haswell`, `SkylakeX`), or how it picks one.
    pub blas_kernel: Fact<String>,
    /// Its threading layer (`pthreads`, `OpenMP`, `sequential`).
    pub blas_threading: Fact<String>,
    /// libtorch's facts; absent for engines without libtorch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub libtorch: Option<LibtorchEnvironment>,
    /// The CUDA runtime version; absent unless the run used a CUDA device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cuda_runtime: Option<Fact<String>>,
    /// The engine's thread pools as it set them (OpenBLAS; libtorch intra-op and inter-op).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thread_pools: Vec<ThreadPool>,
}

/// One thread pool of an engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ThreadPool {
    /// `openblas`, `torch_intra_op` or `torch_inter_op`.
    pub name: String,
    /// Its threads, as the library reports them after the engine set it up.
    pub threads: Fact<u32>,
    /// What decided the count: `--threads`, an environment variable (`OPENBLAS_NUM_THREADS`,
    /// `OMP_NUM_THREADS`), or the library's default.
    pub set_by: String,
    /// How its workers run (`pthreads`, `OpenMP`, `native`).
    pub kind: String,
}

/// libtorch's version and back-ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LibtorchEnvironment {
    /// Its version (`2.13.0+cpu`).
    pub version: Fact<String>,
    /// The back-ends it was built with (`mkl`, `onednn`, `openmp`, `lapack`, `cuda`).
    pub backends: Vec<String>,
}

impl HostEnvironment {
    /// The host's performance-relevant facts in key order, as `(name, text)`.
    pub fn key_lines(&self) -> Vec<(&'static str, String)> {
        let mut lines = vec![
            ("cpu_model", self.cpu_model.key_text()),
            ("microarch", self.microarch.key_text()),
            ("cores", self.cores.key_text()),
            ("logical_cpus", self.logical_cpus.key_text()),
            ("threads_per_core", self.threads_per_core.key_text()),
            ("smt", self.smt.key_text()),
            ("allowed_cpu_count", self.allowed_cpu_count.key_text()),
            ("cpu_quota", self.cpu_quota.key_text()),
            ("cpufreq_driver", self.cpufreq_driver.key_text()),
            ("governor", self.governor.key_text()),
            ("boost", self.boost.key_text()),
            ("max_freq_khz", self.max_freq_khz.key_text()),
            ("hypervisor", self.hypervisor.key_text()),
            ("kernel", self.kernel.key_text()),
            ("gpu_model", self.gpu_model.key_text()),
            ("cuda_driver", self.cuda_driver.key_text()),
        ];
        match &self.jetson {
            None => lines.push(("jetson", "-".into())),
            Some(j) => lines.extend([
                ("jetson", j.model.clone()),
                ("l4t_release", j.l4t_release.key_text()),
                ("nvpmodel", j.nvpmodel.key_text()),
                ("jetson_clocks", j.jetson_clocks.key_text()),
                ("emc_max_hz", j.emc_max_hz.key_text()),
            ]),
        }
        lines
    }

    /// The host key: [`fingerprint`] of [`HostEnvironment::key_lines`].
    pub fn key(&self) -> String {
        fingerprint(&self.key_lines())
    }
}

impl SoftwareEnvironment {
    /// The software's performance-relevant facts in key order, as `(name, text)`.
    pub fn key_lines(&self) -> Vec<(&'static str, String)> {
        let mut lines = vec![
            ("engine", self.engine.clone()),
            ("library", self.library.clone()),
            ("blas_library", self.blas_library.key_text()),
            ("blas_version", self.blas_version.key_text()),
            ("blas_kernel", self.blas_kernel.key_text()),
            ("blas_threading", self.blas_threading.key_text()),
        ];
        match &self.libtorch {
            None => lines.push(("libtorch", "-".into())),
            Some(t) => lines.extend([
                ("libtorch", t.version.key_text()),
                ("libtorch_backends", t.backends.join(",")),
            ]),
        }
        lines.push((
            "cuda_runtime",
            self.cuda_runtime
                .as_ref()
                .map_or("-".into(), Fact::key_text),
        ));
        lines.push((
            "thread_pools",
            self.thread_pools
                .iter()
                .map(|p| format!("{}:{}:{}", p.name, p.kind, p.threads.key_text()))
                .collect::<Vec<_>>()
                .join(","),
        ));
        lines
    }
}

impl Environment {
    /// Builds the section and both keys from the facts.
    pub fn new(host: HostEnvironment, software: SoftwareEnvironment) -> Environment {
        let host_key = host.key();
        let key = Environment::key_of(&host, &software);
        Environment {
            version: ENVIRONMENT_VERSION,
            key,
            host_key,
            host,
            software,
        }
    }

    /// The full key of a host and a software stack.
    pub fn key_of(host: &HostEnvironment, software: &SoftwareEnvironment) -> String {
        let mut lines = host.key_lines();
        lines.extend(software.key_lines());
        fingerprint(&lines)
    }

    /// The version is [`ENVIRONMENT_VERSION`] and both keys are the ones the facts give
    /// (a key is derived, never set by hand).
    pub fn validate(&self) -> Result<(), String> {
        if self.version != ENVIRONMENT_VERSION {
            return Err(format!(
                "field 'metadata.environment.version': {} is not supported (this build reads {ENVIRONMENT_VERSION})",
                self.version
            ));
        }
        for (name, stored, derived) in [
            ("host_key", &self.host_key, self.host.key()),
            (
                "key",
                &self.key,
                Environment::key_of(&self.host, &self.software),
            ),
        ] {
            if *stored != derived {
                return Err(format!(
                    "field 'metadata.environment.{name}': {} is not the key of the recorded facts ({derived})",
                    crate::quote::quoted(stored)
                ));
            }
        }
        Ok(())
    }
}

/// A fingerprint key: FNV-1a (64 bit) over `name=value\n` lines, as 16 lowercase hex digits.
/// Stable across builds and platforms (no randomised hashing).
pub fn fingerprint(lines: &[(&str, String)]) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    for (name, value) in lines {
        for b in name
            .bytes()
            .chain(std::iter::once(b'='))
            .chain(value.bytes())
            .chain(std::iter::once(b'\n'))
        {
            h ^= u64::from(b);
            h = h.wrapping_mul(PRIME);
        }
    }
    format!("{h:016x}")
}

#[cfg(test)]
#[path = "environment_tests.rs"]
pub(crate) mod tests;
