//! Telemetry of a discrete NVIDIA GPU through NVML (`nvml-wrapper`, which loads
//! `libnvidia-ml.so.1` at run time: no link-time dependency, so it is in every build). Between
//! trials the runner reads the GPU's SM and memory clocks, its temperature, its power draw and
//! its current throttle reasons ([`GpuReading`]); [`crate::bench::telemetry`] turns the
//! readings into a figure's min/max and flags.
//!
//! NVML hides behind [`GpuSensor`], so the mapping of readings to telemetry is tested with
//! hand-made readings; [`open_cuda_device`] is the real loader and says why when NVML cannot
//! be loaded or names no GPU.

use nvml_wrapper::bitmasks::device::ThrottleReasons;
use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
use nvml_wrapper::Nvml;

/// One reading of a GPU; each value, or why it could not be read.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuReading {
    /// SM clock, MHz.
    pub sm_mhz: Result<f64, String>,
    /// Memory clock, MHz.
    pub memory_mhz: Result<f64, String>,
    /// GPU die temperature, °C.
    pub temperature_c: Result<f64, String>,
    /// Power draw of the board, W.
    pub power_w: Result<f64, String>,
    /// NVML's current clock throttle reasons (`nvmlClocksThrottleReason*` bits).
    pub throttle_reasons: Result<u64, String>,
}

/// A GPU whose telemetry can be read between trials.
pub trait GpuSensor {
    /// Which GPU this is (`NVML 0: NVIDIA H200`).
    fn device(&self) -> &str;
    /// One reading.
    fn read(&self) -> GpuReading;
}

/// Throttle reasons that are not throttling: the GPU is idle, or its clocks are where the
/// application-clock setting puts them (`USER_DEFINED_CLOCKS` is the same bit).
const NOT_THROTTLING: u64 =
    ThrottleReasons::GPU_IDLE.bits() | ThrottleReasons::APPLICATIONS_CLOCKS_SETTING.bits();

/// NVML's throttle reasons by name, as the result records them.
const REASONS: [(ThrottleReasons, &str); 10] = [
    (ThrottleReasons::GPU_IDLE, "gpu_idle"),
    (
        ThrottleReasons::APPLICATIONS_CLOCKS_SETTING,
        "applications_clocks_setting",
    ),
    (ThrottleReasons::SW_POWER_CAP, "sw_power_cap"),
    (ThrottleReasons::HW_SLOWDOWN, "hw_slowdown"),
    (ThrottleReasons::SYNC_BOOST, "sync_boost"),
    (ThrottleReasons::SW_THERMAL_SLOWDOWN, "sw_thermal_slowdown"),
    (ThrottleReasons::HW_THERMAL_SLOWDOWN, "hw_thermal_slowdown"),
    (
        ThrottleReasons::HW_POWER_BRAKE_SLOWDOWN,
        "hw_power_brake_slowdown",
    ),
    (
        ThrottleReasons::DISPLAY_CLOCK_SETTING,
        "display_clock_setting",
    ),
    (ThrottleReasons::NONE, "none"),
];

/// The names of the reasons set in `bits` (an unnamed bit as `0x…`); `none` is never listed.
pub fn reason_names(bits: u64) -> Vec<String> {
    let mut names: Vec<String> = REASONS
        .iter()
        .filter(|(r, _)| r.bits() != 0 && bits & r.bits() == r.bits())
        .map(|(_, n)| (*n).to_string())
        .collect();
    let known = REASONS.iter().fold(0u64, |acc, (r, _)| acc | r.bits());
    let other = bits & !known;
    if other != 0 {
        names.push(format!("{other:#x}"));
    }
    names
}

/// Whether `bits` holds a reason that slows the GPU down (anything but idle and the
/// application-clock setting).
pub fn throttling(bits: u64) -> bool {
    bits & !NOT_THROTTLING != 0
}

/// Which NVML device is CUDA device 0 (the one the pytorch engine runs on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NvmlTarget {
    /// An NVML index.
    Index(u32),
    /// A GPU UUID (`GPU-…`), from `CUDA_VISIBLE_DEVICES`.
    Uuid(String),
}

/// Maps CUDA device 0 to an NVML device: `visible` is `CUDA_VISIBLE_DEVICES`, `order`
/// `CUDA_DEVICE_ORDER`, `names` the NVML devices' names by index. CUDA numbers GPUs fastest
/// first (ties by PCI bus) unless `CUDA_DEVICE_ORDER=PCI_BUS_ID`; NVML numbers them by PCI
/// bus. Where the two may differ (different models, no `PCI_BUS_ID`), this is an error with
/// the reason rather than a guess.
pub fn cuda0_target(
    visible: Option<&str>,
    order: Option<&str>,
    names: &[String],
) -> Result<NvmlTarget, String> {
    if names.is_empty() {
        return Err("NVML names no GPU".into());
    }
    let same_order =
        order.is_some_and(|o| o.trim() == "PCI_BUS_ID") || names.iter().all(|n| *n == names[0]);
    let first = match visible {
        None => {
            return same_order
                .then_some(NvmlTarget::Index(0))
                .ok_or_else(ambiguous)
        }
        Some(v) => v.split(',').next().unwrap_or("").trim().to_string(),
    };
    if first.starts_with("GPU-") {
        return Ok(NvmlTarget::Uuid(first));
    }
    if first.starts_with("MIG-") {
        return Err("CUDA_VISIBLE_DEVICES names a MIG instance (its telemetry is the whole GPU's; not read)".into());
    }
    match first.parse::<u32>() {
        Ok(i) if same_order => Ok(NvmlTarget::Index(i)),
        Ok(_) => Err(ambiguous()),
        Err(_) => Err(format!(
            "CUDA_VISIBLE_DEVICES names no GPU index or UUID first ({})",
            fleetcal_proto::quote::quoted(&first)
        )),
    }
}

fn ambiguous() -> String {
    "CUDA and NVML may number these GPUs differently (several models; set CUDA_DEVICE_ORDER=PCI_BUS_ID or name the GPU by UUID in CUDA_VISIBLE_DEVICES)".into()
}

/// A GPU read through NVML.
pub struct NvmlGpu {
    nvml: Nvml,
    target: NvmlTarget,
    device: String,
}

/// Opens NVML and the GPU that is CUDA device 0, or says why not (no driver, no
/// `libnvidia-ml.so.1`, no GPU, an ambiguous numbering).
pub fn open_cuda_device() -> Result<NvmlGpu, String> {
    let nvml = Nvml::init().map_err(|e| format!("NVML cannot be loaded: {e}"))?;
    let count = nvml
        .device_count()
        .map_err(|e| format!("NVML cannot count the GPUs: {e}"))?;
    let names: Vec<String> = (0..count)
        .map(|i| {
            nvml.device_by_index(i)
                .and_then(|d| d.name())
                .unwrap_or_else(|e| format!("(unreadable: {e})"))
        })
        .collect();
    let visible = std::env::var("CUDA_VISIBLE_DEVICES").ok();
    let order = std::env::var("CUDA_DEVICE_ORDER").ok();
    let target = cuda0_target(visible.as_deref(), order.as_deref(), &names)?;
    let device = {
        let d = match &target {
            NvmlTarget::Index(i) => nvml.device_by_index(*i),
            NvmlTarget::Uuid(u) => nvml.device_by_uuid(u.as_str()),
        }
        .map_err(|e| format!("NVML cannot open {target:?}: {e}"))?;
        let name = d
            .name()
            .unwrap_or_else(|e| format!("(name unreadable: {e})"));
        match d.index() {
            Ok(i) => format!("NVML {i}: {name}"),
            Err(_) => format!("NVML {target:?}: {name}"),
        }
    };
    Ok(NvmlGpu {
        nvml,
        target,
        device,
    })
}

impl GpuSensor for NvmlGpu {
    fn device(&self) -> &str {
        &self.device
    }

    fn read(&self) -> GpuReading {
        let d = match &self.target {
            NvmlTarget::Index(i) => self.nvml.device_by_index(*i),
            NvmlTarget::Uuid(u) => self.nvml.device_by_uuid(u.as_str()),
        };
        let d = match d {
            Ok(d) => d,
            Err(e) => {
                let why = format!("NVML lost the device: {e}");
                return GpuReading {
                    sm_mhz: Err(why.clone()),
                    memory_mhz: Err(why.clone()),
                    temperature_c: Err(why.clone()),
                    power_w: Err(why.clone()),
                    throttle_reasons: Err(why),
                };
            }
        };
        fn why(what: &'static str) -> impl Fn(nvml_wrapper::error::NvmlError) -> String {
            move |e| format!("{what}: {e}")
        }
        GpuReading {
            sm_mhz: d
                .clock_info(Clock::SM)
                .map(f64::from)
                .map_err(why("SM clock")),
            memory_mhz: d
                .clock_info(Clock::Memory)
                .map(f64::from)
                .map_err(why("memory clock")),
            temperature_c: d
                .temperature(TemperatureSensor::Gpu)
                .map(f64::from)
                .map_err(why("temperature")),
            power_w: d
                .power_usage()
                .map(|mw| f64::from(mw) / 1e3)
                .map_err(why("power")),
            // Not the strict variant: a reason bit newer than this binding is kept, not an error.
            throttle_reasons: d
                .current_throttle_reasons()
                .map(|r| r.bits())
                .map_err(why("throttle reasons")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_and_application_clocks_are_not_throttling() {
        assert!(!throttling(0));
        assert!(!throttling(ThrottleReasons::GPU_IDLE.bits()));
        assert!(!throttling(
            ThrottleReasons::GPU_IDLE.bits() | ThrottleReasons::APPLICATIONS_CLOCKS_SETTING.bits()
        ));
        for r in [
            ThrottleReasons::SW_POWER_CAP,
            ThrottleReasons::HW_SLOWDOWN,
            ThrottleReasons::SW_THERMAL_SLOWDOWN,
            ThrottleReasons::HW_THERMAL_SLOWDOWN,
            ThrottleReasons::HW_POWER_BRAKE_SLOWDOWN,
        ] {
            assert!(
                throttling(r.bits() | ThrottleReasons::GPU_IDLE.bits()),
                "{r:?}"
            );
        }
        // A bit this binding does not know is counted as throttling, not dropped.
        assert!(throttling(1 << 40));
    }

    #[test]
    fn reasons_are_named() {
        assert_eq!(reason_names(0), Vec::<String>::new());
        assert_eq!(
            reason_names(
                ThrottleReasons::SW_POWER_CAP.bits() | ThrottleReasons::HW_THERMAL_SLOWDOWN.bits()
            ),
            ["sw_power_cap", "hw_thermal_slowdown"]
        );
        assert_eq!(reason_names(1 << 40), ["0x10000000000"]);
    }

    #[test]
    fn cuda_device_0_maps_to_an_nvml_device_or_says_why_not() {
        let one = ["NVIDIA H200".to_string()];
        let two_same = ["NVIDIA A100".to_string(), "NVIDIA A100".to_string()];
        let mixed = ["NVIDIA L4".to_string(), "NVIDIA A100".to_string()];
        assert_eq!(cuda0_target(None, None, &one), Ok(NvmlTarget::Index(0)));
        assert_eq!(
            cuda0_target(None, None, &two_same),
            Ok(NvmlTarget::Index(0))
        );
        assert_eq!(
            cuda0_target(Some("1,0"), None, &two_same),
            Ok(NvmlTarget::Index(1))
        );
        let e = cuda0_target(None, None, &mixed).unwrap_err();
        assert!(e.contains("CUDA_DEVICE_ORDER=PCI_BUS_ID"), "{e}");
        assert!(cuda0_target(Some("1"), None, &mixed).is_err());
        assert_eq!(
            cuda0_target(Some("1"), Some("PCI_BUS_ID"), &mixed),
            Ok(NvmlTarget::Index(1))
        );
        assert_eq!(
            cuda0_target(Some("GPU-8f2e,GPU-1"), None, &mixed),
            Ok(NvmlTarget::Uuid("GPU-8f2e".into()))
        );
        assert!(cuda0_target(Some("MIG-1"), None, &one)
            .unwrap_err()
            .contains("MIG"));
        let e = cuda0_target(Some(&"x".repeat(1000)), None, &one).unwrap_err();
        assert!(e.len() < 200, "a bad value is quoted only as a prefix: {e}");
        assert_eq!(
            cuda0_target(None, None, &[]),
            Err("NVML names no GPU".into())
        );
    }

    /// The real loader on this host: a GPU's name, or the reason it cannot be read — never a
    /// panic. (On a machine without an NVIDIA driver the reason names the library.)
    #[test]
    fn loading_nvml_here_gives_a_device_or_the_reason() {
        match open_cuda_device() {
            Ok(gpu) => {
                assert!(gpu.device().starts_with("NVML "), "{}", gpu.device());
                let r = gpu.read();
                assert!(r.sm_mhz.is_ok() || r.sm_mhz.is_err());
            }
            Err(why) => {
                eprintln!("NVML here: {why}");
                assert!(why.starts_with("NVML "), "{why}");
                if !std::path::Path::new("/proc/driver/nvidia/version").exists() {
                    assert!(why.contains("cannot be loaded"), "{why}");
                }
            }
        }
    }
}
