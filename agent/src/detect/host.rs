//! The host as the result records it ([`Host`]): name, OS, kernel, CPU, memory, caches, SIMD.
//!
//! Parsers take text; the readers around them never fail: a missing file leaves its field
//! empty (or `None`).

use std::path::Path;

use fleetcal_proto::result::Host;

use super::cpuinfo::{cpuinfo, parse_size_bytes, CpuInfo};
use super::jetson::detect_jetson;

/// SIMD features worth recording, in report order: x86 flags, then ARM features.
/// ARM's `asimd` is recorded as `neon`.
const SIMD_FEATURES: [&str; 24] = [
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512dq",
    "avx512bw",
    "avx512vl",
    "avx512_bf16",
    "avx512_fp16",
    "avx512_vnni",
    "avx_vnni",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "asimd",
    "fphp",
    "asimdhp",
    "asimddp",
    "i8mm",
    "bf16",
    "sve",
    "sve2",
];

/// The cache directories of cpu0 in sysfs.
const CACHE_DIR: &str = "/sys/devices/system/cpu/cpu0/cache";

/// One cache as sysfs describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheLevel {
    /// `level` (1, 2, 3).
    pub level: u32,
    /// `type`: `Data`, `Instruction` or `Unified`.
    pub kind: String,
    /// `size` in bytes.
    pub size_bytes: u64,
}

/// Detects the host. Never fails; unknown fields are empty.
pub fn host() -> Host {
    host_for(&cpuinfo())
}

/// The host name (from the host root's `/proc/sys/kernel/hostname`); empty when unknown.
pub fn hostname() -> String {
    super::root::read_host("/proc/sys/kernel/hostname")
        .trim()
        .to_string()
}

/// Detects the host around an already parsed `/proc/cpuinfo`.
pub fn host_for(cpu: &CpuInfo) -> Host {
    let read = super::root::read_host;
    Host {
        hostname: hostname(),
        os: parse_os_release(&read("/etc/os-release")).unwrap_or_default(),
        kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
        architecture: std::env::consts::ARCH.to_string(),
        cpu_vendor: cpu.vendor.clone(),
        cpu_model: cpu.model_name.clone(),
        cpu_count: available_cpus(),
        total_memory_gb: parse_meminfo_gb(&read("/proc/meminfo")).unwrap_or(0.0),
        llc_bytes: llc_bytes(&read_caches(&super::root::host_path(CACHE_DIR)))
            .or(cpu.cache_size_bytes),
        simd: simd_features(&cpu.flags),
        jetson: detect_jetson(),
    }
}

/// Logical CPUs this process may run on (scheduler affinity and cgroup quota included).
pub fn available_cpus() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX))
}

/// `PRETTY_NAME` from `/etc/os-release`, unquoted.
pub fn parse_os_release(text: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.trim().strip_prefix("PRETTY_NAME="))
        .map(|value| {
            value
                .trim()
                .trim_matches(|c| c == '"' || c == '\'')
                .to_string()
        })
        .filter(|name| !name.is_empty())
}

/// `MemTotal` from `/proc/meminfo`, in GB (1e9 bytes).
pub fn parse_meminfo_gb(text: &str) -> Option<f64> {
    let value = text
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))?;
    let bytes = parse_size_bytes(value)?;
    Some(bytes as f64 / 1e9)
}

/// The last-level cache: the largest data or unified cache at the highest level.
pub fn llc_bytes(caches: &[CacheLevel]) -> Option<u64> {
    let candidates = caches.iter().filter(|c| c.kind != "Instruction");
    let top = candidates.clone().map(|c| c.level).max()?;
    candidates
        .filter(|c| c.level == top)
        .map(|c| c.size_bytes)
        .max()
}

/// Reads every `index*` cache directory under `dir`; unreadable entries are skipped.
pub fn read_caches(dir: &Path) -> Vec<CacheLevel> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let field = |index: &Path, name: &str| std::fs::read_to_string(index.join(name)).ok();
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("index"))
        })
        .filter_map(|index| {
            Some(CacheLevel {
                level: field(&index, "level")?.trim().parse().ok()?,
                kind: field(&index, "type")?.trim().to_string(),
                size_bytes: parse_size_bytes(&field(&index, "size")?)?,
            })
        })
        .collect()
}

/// The SIMD features among `flags` (x86 `flags` or ARM `Features`), in report order.
pub fn simd_features(flags: &[String]) -> Vec<String> {
    SIMD_FEATURES
        .iter()
        .filter(|f| flags.iter().any(|g| g == *f))
        .map(|f| if *f == "asimd" { "neon" } else { f }.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::cpuinfo::parse_cpuinfo;
    use super::*;

    #[test]
    fn os_release() {
        let text = include_str!("fixtures/os-release-debian12.txt");
        assert_eq!(
            parse_os_release(text).as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(parse_os_release("NAME=x\n"), None);
    }

    #[test]
    fn meminfo() {
        let gb = parse_meminfo_gb(include_str!("fixtures/meminfo.txt")).unwrap();
        assert!((gb - 24_684_084.0 * 1024.0 / 1e9).abs() < 1e-9, "{gb}");
        assert_eq!(parse_meminfo_gb("MemFree: 3 kB\n"), None);
    }

    #[test]
    fn llc_is_the_highest_level_not_the_instruction_cache() {
        let c = |level, kind: &str, size_bytes| CacheLevel {
            level,
            kind: kind.into(),
            size_bytes,
        };
        let caches = [
            c(1, "Data", 32 << 10),
            c(1, "Instruction", 32 << 10),
            c(2, "Unified", 1 << 20),
            c(3, "Unified", 32 << 20),
        ];
        assert_eq!(llc_bytes(&caches), Some(32 << 20));
        assert_eq!(llc_bytes(&caches[..3]), Some(1 << 20));
        assert_eq!(llc_bytes(&[c(4, "Instruction", 1)]), None);
        assert_eq!(llc_bytes(&[]), None);
    }

    #[test]
    fn cache_dirs_are_read_from_sysfs_layout() {
        let dir = tempfile::tempdir().unwrap();
        for (i, level, kind, size) in [(0, "1", "Data", "48K"), (3, "3", "Unified", "32768K")] {
            let index = dir.path().join(format!("index{i}"));
            std::fs::create_dir(&index).unwrap();
            std::fs::write(index.join("level"), format!("{level}\n")).unwrap();
            std::fs::write(index.join("type"), format!("{kind}\n")).unwrap();
            std::fs::write(index.join("size"), format!("{size}\n")).unwrap();
        }
        std::fs::create_dir(dir.path().join("index9")).unwrap(); // no files: skipped
        let caches = read_caches(dir.path());
        assert_eq!(caches.len(), 2);
        assert_eq!(llc_bytes(&caches), Some(32 << 20));
        assert!(read_caches(&dir.path().join("missing")).is_empty());
    }

    #[test]
    fn simd_lists() {
        let zen4 = parse_cpuinfo(include_str!("fixtures/cpuinfo-zen4.txt"));
        let simd = simd_features(&zen4.flags);
        assert_eq!(
            simd,
            [
                "sse4_2",
                "avx",
                "avx2",
                "fma",
                "f16c",
                "avx512f",
                "avx512dq",
                "avx512bw",
                "avx512vl",
                "avx512_bf16",
                "avx512_vnni"
            ]
        );
        let orin = parse_cpuinfo(include_str!("fixtures/cpuinfo-orin.txt"));
        assert_eq!(
            simd_features(&orin.flags),
            ["neon", "fphp", "asimdhp", "asimddp"]
        );
    }

    #[test]
    fn this_host_is_detected() {
        let h = host();
        assert_eq!(h.architecture, std::env::consts::ARCH);
        assert!(h.cpu_count >= 1);
        if Path::new("/proc/meminfo").exists() {
            assert!(h.total_memory_gb > 0.0);
        }
        if Path::new("/proc/cpuinfo").exists() {
            assert!(!h.cpu_model.is_empty());
        }
    }
}
