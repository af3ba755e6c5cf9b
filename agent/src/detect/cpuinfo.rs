//! `/proc/cpuinfo`: vendor, model, family, flags and core count, for x86 and ARM.

use std::collections::BTreeSet;

/// What `/proc/cpuinfo` says about the CPU (the first processor's fields, counts over all).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CpuInfo {
    /// `vendor_id` on x86 (`AuthenticAMD`); on ARM the implementer's name (`ARM`), empty when unknown.
    pub vendor: String,
    /// `model name` on x86; on ARM (which has none) the core's name from its part number.
    pub model_name: String,
    /// x86 `cpu family` (25 = 0x19 is Zen 3/4, 26 = 0x1a is Zen 5).
    pub family: Option<u32>,
    /// x86 `model` number.
    pub model: Option<u32>,
    /// x86 `flags` or ARM `Features`, in file order.
    pub flags: Vec<String>,
    /// `processor` entries (logical CPUs online).
    pub logical_cpus: u32,
    /// Physical cores: distinct (`physical id`, `core id`) pairs, else the logical count.
    pub cores: u32,
    /// ARM `CPU implementer` (0x41 = Arm Ltd).
    pub arm_implementer: Option<u32>,
    /// ARM `CPU part` (0xd42 = Cortex-A78AE).
    pub arm_part: Option<u32>,
    /// x86 `cache size` in bytes (the L2 or L3 the hypervisor reports).
    pub cache_size_bytes: Option<u64>,
}

impl CpuInfo {
    /// Whether a flag (`avx512f`, `asimddp`) is present.
    pub fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// Whether this looks like an ARM CPU (an implementer/part field or NEON features).
    pub fn is_arm(&self) -> bool {
        self.arm_part.is_some() || self.arm_implementer.is_some() || self.has("asimd")
    }
}

/// Parses the text of `/proc/cpuinfo`; missing fields stay empty/`None`.
pub fn parse_cpuinfo(text: &str) -> CpuInfo {
    let mut info = CpuInfo::default();
    let mut cores = BTreeSet::new();
    let mut physical_id = String::new();
    let mut seen_first_block = false;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        if key == "processor" {
            if info.logical_cpus > 0 {
                seen_first_block = true;
            }
            info.logical_cpus += 1;
            continue;
        }
        match key {
            "physical id" => physical_id = value.to_string(),
            "core id" => {
                cores.insert((physical_id.clone(), value.to_string()));
            }
            _ => {}
        }
        if seen_first_block {
            continue;
        }
        match key {
            "vendor_id" => info.vendor = value.to_string(),
            "model name" => info.model_name = value.to_string(),
            "cpu family" => info.family = value.parse().ok(),
            "model" => info.model = value.parse().ok(),
            "flags" | "Features" => {
                info.flags = value.split_whitespace().map(str::to_string).collect();
            }
            "CPU implementer" => info.arm_implementer = parse_hex(value),
            "CPU part" => info.arm_part = parse_hex(value),
            "cache size" => info.cache_size_bytes = parse_size_bytes(value),
            _ => {}
        }
    }
    info.cores = if cores.is_empty() {
        info.logical_cpus
    } else {
        cores.len() as u32
    };
    if info.vendor.is_empty() {
        if let Some(name) = info.arm_implementer.and_then(arm_implementer_name) {
            info.vendor = name.to_string();
        }
    }
    if info.model_name.is_empty() {
        if let Some(name) = info.arm_part.and_then(arm_part_name) {
            info.model_name = name.to_string();
        }
    }
    info
}

/// Reads and parses `/proc/cpuinfo`; an unreadable file gives an empty [`CpuInfo`].
pub fn cpuinfo() -> CpuInfo {
    parse_cpuinfo(&super::root::read_host("/proc/cpuinfo"))
}

/// Parses `0x41`-style hexadecimal (or plain decimal) numbers.
fn parse_hex(value: &str) -> Option<u32> {
    match value
        .strip_prefix("0x")
        .or_else(|| value.strip_prefix("0X"))
    {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => value.parse().ok(),
    }
}

/// Parses sizes as `/proc/cpuinfo` (`1024 KB`) and sysfs (`32768K`, `1M`) write them, in bytes.
pub fn parse_size_bytes(value: &str) -> Option<u64> {
    let value = value.trim();
    let digits_end = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let number: u64 = value[..digits_end].parse().ok()?;
    let unit = value[digits_end..].trim().to_ascii_uppercase();
    let scale = match unit.as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        _ => return None,
    };
    Some(number * scale)
}

/// The name of an ARM `CPU implementer` code.
fn arm_implementer_name(code: u32) -> Option<&'static str> {
    Some(match code {
        0x41 => "ARM",
        0x42 => "Broadcom",
        0x43 => "Cavium",
        0x48 => "HiSilicon",
        0x4e => "NVIDIA",
        0x51 => "Qualcomm",
        0x61 => "Apple",
        0xc0 => "Ampere",
        _ => return None,
    })
}

/// The core name of an Arm Ltd `CPU part` code.
fn arm_part_name(code: u32) -> Option<&'static str> {
    Some(match code {
        0xd03 => "Cortex-A53",
        0xd05 => "Cortex-A55",
        0xd08 => "Cortex-A72",
        0xd0b => "Cortex-A76",
        0xd0c => "Neoverse-N1",
        0xd40 => "Neoverse-V1",
        0xd41 => "Cortex-A78",
        0xd42 => "Cortex-A78AE",
        0xd49 => "Neoverse-N2",
        0xd4b => "Cortex-A78C",
        0xd4f => "Neoverse-V2",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZEN4: &str = include_str!("fixtures/cpuinfo-zen4.txt");
    const ZEN5: &str = include_str!("fixtures/cpuinfo-zen5.txt");
    const ALDER: &str = include_str!("fixtures/cpuinfo-alder-lake.txt");
    const ORIN: &str = include_str!("fixtures/cpuinfo-orin.txt");

    #[test]
    fn zen4_vm() {
        let c = parse_cpuinfo(ZEN4);
        assert_eq!(c.vendor, "AuthenticAMD");
        assert_eq!(c.model_name, "AMD EPYC");
        assert_eq!((c.family, c.model), (Some(25), Some(17)));
        assert_eq!((c.logical_cpus, c.cores), (2, 2));
        assert!(c.has("avx512f") && c.has("avx512_bf16") && !c.has("avx_vnni"));
        assert_eq!(c.cache_size_bytes, Some(1024 * 1024));
        assert!(!c.is_arm());
    }

    #[test]
    fn zen5_vm() {
        let c = parse_cpuinfo(ZEN5);
        assert_eq!(c.family, Some(26));
        assert!(c.has("avx_vnni") && c.has("avx512_vp2intersect"));
    }

    #[test]
    fn alder_lake_counts_physical_cores_not_threads() {
        let c = parse_cpuinfo(ALDER);
        assert_eq!(c.vendor, "GenuineIntel");
        assert_eq!(c.model_name, "12th Gen Intel(R) Core(TM) i7-12700K");
        assert_eq!((c.family, c.model), (Some(6), Some(151)));
        assert_eq!((c.logical_cpus, c.cores), (20, 12));
        assert!(c.has("avx2") && c.has("avx_vnni") && !c.has("avx512f"));
        assert_eq!(c.cache_size_bytes, Some(25600 * 1024));
    }

    #[test]
    fn orin_names_vendor_and_core_from_codes() {
        let c = parse_cpuinfo(ORIN);
        assert_eq!(c.vendor, "ARM");
        assert_eq!(c.model_name, "Cortex-A78AE");
        assert_eq!((c.arm_implementer, c.arm_part), (Some(0x41), Some(0xd42)));
        assert_eq!((c.logical_cpus, c.cores), (6, 6));
        assert_eq!(c.family, None);
        assert!(c.is_arm() && c.has("asimddp") && c.has("asimdhp"));
    }

    #[test]
    fn empty_and_garbage_text_give_empty_info() {
        assert_eq!(parse_cpuinfo(""), CpuInfo::default());
        let c = parse_cpuinfo("no colon here\nmodel\t: twelve\n");
        assert_eq!(c.model, None);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size_bytes("32768K"), Some(32 << 20));
        assert_eq!(parse_size_bytes("1024 KB"), Some(1 << 20));
        assert_eq!(parse_size_bytes("2M"), Some(2 << 20));
        assert_eq!(parse_size_bytes("512"), Some(512));
        assert_eq!(parse_size_bytes("lots"), None);
        assert_eq!(parse_size_bytes("12 parsecs"), None);
    }
}
