//! `--preset auto`: a [`Preset`] derived from the detected host, with a [`Derivation`] that
//! lets a reader recompute every peak.
//!
//! peak = cores × ops per cycle per core ([`super::rates`]) × clock ([`super::clock`]).

use std::collections::BTreeMap;

use fleetcal_proto::preset::{Derivation, Platform, PresetMatch, PRESET_SCHEMA_VERSION};
use fleetcal_proto::result::Host;
use fleetcal_proto::{DeviceKind, Framework, Preset};

use super::clock::{detect_clock, ClockEstimate};
use super::cpuinfo::{cpuinfo, CpuInfo};
use super::host::host_for;
use super::jetson::jetson_bandwidth_gbps;
use super::microarch::Microarch;
use super::rates::rate_table;

/// The id of every derived preset.
pub const AUTO_PRESET_ID: &str = "auto";

/// The peak formula, as the derivation states it.
const FORMULA: &str =
    "peak [GFLOPS; GIOPS for integers] = cores x ops per cycle per core x clock [GHz]; \
ops per cycle per core = lanes per pipe x pipes x 2 (each lane does a multiply-add, 2 ops)";

/// Why a derived preset has no bandwidth, when it has none.
const NO_BANDWIDTH: &str = "unknown: the memory channels and their speed are not knowable from \
/proc and sysfs (nor at all from inside a VM), so no theoretical bandwidth is derived and STREAM \
efficiency is not reported";

/// Detects the CPU, the host and the clock (measuring it when cpufreq is absent, ~0.1 s) and
/// derives the preset: what `--preset auto` runs against.
pub fn auto_preset() -> Preset {
    let cpu = cpuinfo();
    let host = host_for(&cpu);
    derive_preset(&cpu, &host, detect_clock())
}

/// Derives the `auto` preset for a CPU, its host and a clock (which must be positive).
pub fn derive_preset(cpu: &CpuInfo, host: &Host, clock: ClockEstimate) -> Preset {
    let arch = Microarch::classify(cpu);
    let table = rate_table(arch, cpu);
    let cores = usable_cores(cpu, host);
    // Round the clock to the MHz first, so the recorded inputs recompute the peaks exactly.
    let ghz = (clock.ghz * 1000.0).round() / 1000.0;

    let mut peaks = BTreeMap::new();
    let mut inputs = BTreeMap::new();
    for (precision, rate) in &table.rates {
        let peak = f64::from(cores) * rate.ops() * ghz;
        if peak.is_finite() && peak > 0.0 {
            peaks.insert(*precision, (peak * 1000.0).round() / 1000.0);
        }
        inputs.insert(format!("ops_per_cycle.{precision}"), rate.describe());
    }
    for (precision, why) in &table.omitted {
        inputs.insert(format!("not_derived.{precision}"), why.to_string());
    }
    inputs.insert("microarch".into(), describe_cpu(arch, cpu));
    inputs.insert(
        "cores".into(),
        format!(
            "{cores} = min(physical cores in /proc/cpuinfo: {}, CPUs available to this process: {})",
            cpu.cores, host.cpu_count
        ),
    );
    inputs.insert("clock_ghz".into(), format!("{ghz:.3}"));
    inputs.insert("clock_source".into(), clock.source.to_string());
    let dp = &table.datapath;
    inputs.insert(
        "datapath".into(),
        format!(
            "float {} pipe(s) x {}-bit, integer {} pipe(s) x {}-bit: {}",
            dp.fma_pipes, dp.fma_bits, dp.int_pipes, dp.int_bits, dp.note
        ),
    );

    let jetson_bw = host.jetson.as_deref().and_then(jetson_bandwidth_gbps);
    let bandwidth = match jetson_bw {
        Some((gbps, basis)) => format!("{gbps} GB/s: {basis}"),
        None => NO_BANDWIDTH.to_string(),
    };
    Preset {
        schema_version: PRESET_SCHEMA_VERSION,
        id: AUTO_PRESET_ID.to_string(),
        hardware_name: hardware_name(cpu, host, arch),
        device: DeviceKind::Cpu,
        architecture: host.architecture.clone(),
        platform: Platform::Detected,
        default_framework: Framework::Numpy,
        bandwidth_gbps: jetson_bw.map(|(gbps, _)| gbps),
        notes: format!(
            "derived at run time (--preset auto): {arch}, {cores} cores at {ghz:.3} GHz ({}); see derivation",
            clock.source
        ),
        matches: PresetMatch {
            cpu_vendor: Some(cpu.vendor.clone()).filter(|v| !v.is_empty()),
            cpu_model: Some(cpu.model_name.clone())
                .filter(|m| !m.is_empty())
                .into_iter()
                .collect(),
            gpu_name: Vec::new(),
        },
        peaks,
        derivation: Some(Derivation {
            formula: FORMULA.to_string(),
            inputs,
            bandwidth,
        }),
    }
}

/// Physical cores this process can use: at most one per available logical CPU.
fn usable_cores(cpu: &CpuInfo, host: &Host) -> u32 {
    match (cpu.cores, host.cpu_count) {
        (0, 0) => 1,
        (0, n) | (n, 0) => n,
        (cores, available) => cores.min(available),
    }
}

fn describe_cpu(arch: Microarch, cpu: &CpuInfo) -> String {
    let opt = |v: Option<u32>, hex: bool| match (v, hex) {
        (Some(v), true) => format!("{v:#x}"),
        (Some(v), false) => v.to_string(),
        (None, _) => "?".into(),
    };
    if arch.is_arm() {
        format!(
            "{arch} (implementer {}, part {})",
            opt(cpu.arm_implementer, true),
            opt(cpu.arm_part, true)
        )
    } else {
        format!(
            "{arch} (vendor {}, family {}, model {})",
            if cpu.vendor.is_empty() {
                "?"
            } else {
                &cpu.vendor
            },
            opt(cpu.family, false),
            opt(cpu.model, false)
        )
    }
}

/// `AMD EPYC (auto)`, `12th Gen Intel Core i7-12700K (auto)`, or on a Jetson
/// `NVIDIA Jetson Orin Nano Developer Kit CPU (auto)`: names that slug well.
fn hardware_name(cpu: &CpuInfo, host: &Host, arch: Microarch) -> String {
    if let Some(jetson) = &host.jetson {
        let module = jetson.split(", power mode").next().unwrap_or(jetson);
        return format!("{module} CPU (auto)");
    }
    let mut model = cpu
        .model_name
        .replace("(R)", "")
        .replace("(TM)", "")
        .replace("(tm)", "");
    if let Some(at) = model.find(" @ ") {
        model.truncate(at);
    }
    let mut words: Vec<&str> = model.split_whitespace().collect();
    if words.last() == Some(&"CPU") {
        words.pop();
    }
    if words.is_empty() {
        format!("{arch} CPU (auto)")
    } else {
        format!("{} (auto)", words.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::super::clock::ClockSource;
    use super::super::cpuinfo::parse_cpuinfo;
    use super::*;
    use fleetcal_proto::Precision;

    fn host(architecture: &str, cpu_count: u32, jetson: Option<&str>) -> Host {
        Host {
            architecture: architecture.into(),
            cpu_count,
            jetson: jetson.map(str::to_string),
            ..Host::default()
        }
    }

    fn clock(ghz: f64, source: ClockSource) -> ClockEstimate {
        ClockEstimate { ghz, source }
    }

    #[test]
    fn zen5_matches_the_measured_peaks() {
        let cpu = parse_cpuinfo(include_str!("fixtures/cpuinfo-zen5.txt"));
        let p = derive_preset(
            &cpu,
            &host("x86_64", 2, None),
            clock(4.05, ClockSource::Measured),
        );
        p.validate().unwrap();
        assert_eq!(p.peak(Precision::Fp32), Some(518.4));
        assert_eq!(p.peak(Precision::Fp64), Some(259.2));
        assert_eq!(p.peak(Precision::Bf16), Some(1036.8));
        assert_eq!(p.peak(Precision::Int8), Some(1036.8));
        assert_eq!(p.peak(Precision::Fp16), None);
        assert_eq!(
            (p.id.as_str(), p.slug().as_str()),
            ("auto", "amd_epyc_auto")
        );
        assert_eq!(p.platform, Platform::Detected);
        assert_eq!(p.default_framework, Framework::Numpy);
        assert_eq!(p.bandwidth_gbps, None);
        assert_eq!(p.matches.cpu_vendor.as_deref(), Some("AuthenticAMD"));
        assert_eq!(p.matches.cpu_model, ["AMD EPYC"]);
        let d = p.derivation.unwrap();
        assert!(d.bandwidth.contains("not knowable"));
        assert_eq!(d.inputs["clock_ghz"], "4.050");
        assert!(d.inputs["microarch"].starts_with("Zen 5 (vendor AuthenticAMD, family 26"));
        assert!(d.inputs["cores"].starts_with("2 = "));
        assert!(d.inputs["clock_source"].starts_with("measured"));
        assert!(d.inputs["not_derived.fp16"].contains("avx512_fp16"));
    }

    #[test]
    fn zen4_is_half_of_zen5_at_the_same_clock() {
        let cpu = parse_cpuinfo(include_str!("fixtures/cpuinfo-zen4.txt"));
        let p = derive_preset(
            &cpu,
            &host("x86_64", 2, None),
            clock(4.05, ClockSource::Measured),
        );
        assert_eq!(p.peak(Precision::Fp32), Some(259.2));
        assert_eq!(p.peak(Precision::Fp64), Some(129.6));
        assert_eq!(p.peak(Precision::Bf16), Some(518.4));
    }

    #[test]
    fn alder_lake_counts_physical_cores_and_cleans_the_name() {
        let cpu = parse_cpuinfo(include_str!("fixtures/cpuinfo-alder-lake.txt"));
        let p = derive_preset(
            &cpu,
            &host("x86_64", 20, None),
            clock(5.0, ClockSource::CpufreqMax),
        );
        p.validate().unwrap();
        assert_eq!(p.peak(Precision::Fp32), Some(12.0 * 32.0 * 5.0));
        assert_eq!(p.peak(Precision::Fp64), Some(12.0 * 16.0 * 5.0));
        assert_eq!(p.hardware_name, "12th Gen Intel Core i7-12700K (auto)");
        assert_eq!(p.slug(), "12th_gen_intel_core_i7_12700k_auto");
        assert!(p.derivation.unwrap().inputs["clock_source"].contains("cpufreq"));
        // Pinned to 4 logical CPUs, only 4 cores count.
        let pinned = derive_preset(
            &cpu,
            &host("x86_64", 4, None),
            clock(5.0, ClockSource::CpufreqMax),
        );
        assert_eq!(pinned.peak(Precision::Fp32), Some(4.0 * 32.0 * 5.0));
    }

    #[test]
    fn orin_nano_fills_the_known_bandwidth() {
        let cpu = parse_cpuinfo(include_str!("fixtures/cpuinfo-orin.txt"));
        let jetson = "NVIDIA Jetson Orin Nano Developer Kit, power mode 15W";
        let p = derive_preset(
            &cpu,
            &host("aarch64", 6, Some(jetson)),
            clock(1.5104, ClockSource::CpufreqMax),
        );
        p.validate().unwrap();
        assert_eq!(p.architecture, "aarch64");
        assert!((p.peak(Precision::Fp32).unwrap() - 144.96).abs() < 1e-9);
        assert!((p.peak(Precision::Fp16).unwrap() - 289.92).abs() < 1e-9);
        assert_eq!(p.bandwidth_gbps, Some(68.0));
        assert_eq!(
            p.hardware_name,
            "NVIDIA Jetson Orin Nano Developer Kit CPU (auto)"
        );
        assert_eq!(p.matches.cpu_vendor.as_deref(), Some("ARM"));
        let d = p.derivation.unwrap();
        assert!(d.bandwidth.starts_with("68 GB/s"));
        assert!(d.inputs["microarch"].contains("part 0xd42"));
    }

    #[test]
    fn the_derivation_recomputes_every_peak() {
        let cpu = parse_cpuinfo(include_str!("fixtures/cpuinfo-zen4.txt"));
        let p = derive_preset(
            &cpu,
            &host("x86_64", 2, None),
            clock(3.6512, ClockSource::Measured),
        );
        let d = p.derivation.as_ref().unwrap();
        let ghz: f64 = d.inputs["clock_ghz"].parse().unwrap();
        let cores: f64 = d.inputs["cores"]
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        for (precision, peak) in &p.peaks {
            let rate = &d.inputs[&format!("ops_per_cycle.{precision}")];
            let ops: f64 = rate.split(' ').next().unwrap().parse().unwrap();
            assert!(
                (cores * ops * ghz - peak).abs() < 1e-6,
                "{precision}: {rate}"
            );
        }
    }

    #[test]
    fn an_unknown_cpu_still_gives_a_valid_preset() {
        let p = derive_preset(
            &CpuInfo::default(),
            &host("x86_64", 0, None),
            clock(2.0, ClockSource::Measured),
        );
        p.validate().unwrap();
        assert_eq!(p.hardware_name, "generic x86-64 CPU (auto)");
        assert_eq!(p.matches, PresetMatch::default());
        assert!(p.derivation.unwrap().inputs["microarch"].contains("vendor ?"));
    }

    #[test]
    fn auto_preset_on_this_machine_is_valid() {
        let p = auto_preset();
        p.validate().unwrap();
        assert!(p.peak(Precision::Fp32).is_some_and(|v| v > 0.0));
        assert_eq!(p.architecture, std::env::consts::ARCH);
        assert!(p.derivation.is_some());
    }
}
