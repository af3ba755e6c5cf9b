//! Telemetry sensors: what can be read between two trials in microseconds — the running CPU
//! clock (cpufreq `scaling_cur_freq` of the CPUs this process may use), temperatures (thermal
//! zones and hwmon), throttling (x86 `thermal_throttle` counters, active CPU/GPU cooling
//! devices), and on a Jetson the GPU clock (devfreq). Where cpufreq is absent (a VM) the CPU
//! clock is measured with a short dependent-operation loop instead ([`quick_clock_mhz`]).
//!
//! [`Sensors::discover`] lists the files once under a root directory (fixture trees in the
//! tests); [`Sensors::read`] reads them. Whatever is absent is named with the reason.

use super::clock::measure_clock_quick_ghz;
use super::environment::{parse_cpu_list, Root};

/// How the CPU clock is read.
#[derive(Debug, Clone, PartialEq)]
pub enum ClockReader {
    /// cpufreq `scaling_cur_freq` files (kHz), one per CPU this process may use.
    Cpufreq(Vec<String>),
    /// No cpufreq: measured with [`quick_clock_mhz`] (why cpufreq is not used).
    Measured(String),
}

/// The sensors found under a root.
#[derive(Debug, Clone)]
pub struct Sensors {
    root: Root,
    /// How the CPU clock is read.
    pub clock: ClockReader,
    /// Temperature files (millidegrees Celsius) and their names, or why there are none.
    pub temperatures: Result<Vec<(String, String)>, String>,
    /// `thermal_throttle/*_throttle_count` files of the allowed CPUs (x86).
    pub throttle_counters: Vec<String>,
    /// Cooling devices that throttle (cpufreq/devfreq/processor/powerclamp) and their
    /// `cur_state` files.
    pub throttling_cooling: Vec<(String, String)>,
    /// The Jetson GPU's devfreq `cur_freq` (Hz), when there is one.
    pub gpu_freq: Option<String>,
}

/// One reading.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// Lowest and highest CPU clock over the allowed CPUs, MHz.
    pub cpu_mhz: Result<(f64, f64), String>,
    /// The hottest sensor: °C and its name.
    pub hottest: Result<(f64, String), String>,
    /// Sum of the x86 throttle counters, when there are any.
    pub throttle_count: Option<u64>,
    /// Throttling cooling devices now active (`type` with `cur_state` > 0), or why unknown.
    pub cooling_active: Result<Vec<String>, String>,
    /// The Jetson GPU clock, MHz.
    pub gpu_mhz: Option<Result<f64, String>>,
}

/// Cooling device types that throttle a processor (a fan's `cur_state` is its speed).
const THROTTLING: [&str; 5] = [
    "cpufreq",
    "devfreq",
    "processor",
    "powerclamp",
    "thermal-cpufreq",
];

impl Sensors {
    /// Finds the sensors under `root` for the CPUs this process may use.
    pub fn discover(root: &Root) -> Sensors {
        let cpus: Result<Vec<u32>, String> = root
            .read("/proc/self/status")
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                    .map(str::to_string)
                    .ok_or_else(|| "/proc/self/status has no Cpus_allowed_list".into())
            })
            .and_then(|l| parse_cpu_list(&l))
            .or_else(|_| {
                root.read_trimmed("/sys/devices/system/cpu/online")
                    .and_then(|t| parse_cpu_list(&t))
            });
        let cpu_dir = |c: &u32| format!("/sys/devices/system/cpu/cpu{c}");
        let clock = match &cpus {
            Ok(cpus) => {
                let files: Vec<String> = cpus
                    .iter()
                    .map(|c| format!("{}/cpufreq/scaling_cur_freq", cpu_dir(c)))
                    .filter(|f| root.read_trimmed(f).is_ok())
                    .collect();
                if files.is_empty() {
                    ClockReader::Measured(
                        "no readable cpufreq scaling_cur_freq for the allowed CPUs".into(),
                    )
                } else {
                    ClockReader::Cpufreq(files)
                }
            }
            Err(e) => ClockReader::Measured(e.clone()),
        };
        let throttle_counters = cpus
            .as_ref()
            .map(|cpus| {
                cpus.iter()
                    .flat_map(|c| {
                        ["core_throttle_count", "package_throttle_count"]
                            .map(|f| format!("{}/thermal_throttle/{f}", cpu_dir(c)))
                    })
                    .filter(|f| root.read_trimmed(f).is_ok())
                    .collect()
            })
            .unwrap_or_default();
        Sensors {
            clock,
            temperatures: temperature_files(root),
            throttle_counters,
            throttling_cooling: cooling_files(root),
            gpu_freq: root
                .entries("/sys/class/devfreq", "")
                .ok()
                .and_then(|n| {
                    n.into_iter().find(|n| {
                        ["gpu", "ga10b", "gv11b", "gp10b"]
                            .iter()
                            .any(|g| n.contains(g))
                    })
                })
                .map(|n| format!("/sys/class/devfreq/{n}/cur_freq")),
            root: root.clone(),
        }
    }

    /// Whether throttling can be told at all (counters or throttling cooling devices).
    pub fn can_tell_throttling(&self) -> bool {
        !self.throttle_counters.is_empty() || !self.throttling_cooling.is_empty()
    }

    /// One reading; `measure_mhz` measures the clock where cpufreq is absent (only when
    /// `measure` is true: a measurement takes about 2 ms, a cpufreq read microseconds).
    pub fn read(&self, measure_mhz: &mut dyn FnMut() -> f64, measure: bool) -> Reading {
        let cpu_mhz = match &self.clock {
            ClockReader::Cpufreq(files) => {
                let mhz: Result<Vec<f64>, String> = files
                    .iter()
                    .map(|f| {
                        self.root.read_trimmed(f).and_then(|t| {
                            t.parse::<f64>()
                                .ok()
                                .filter(|k| k.is_finite() && *k > 0.0)
                                .map(|k| k / 1e3)
                                .ok_or_else(|| format!("{f}: not a clock in kHz"))
                        })
                    })
                    .collect();
                mhz.map(|v| {
                    v.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &x| {
                        (lo.min(x), hi.max(x))
                    })
                })
            }
            ClockReader::Measured(_) if !measure => Err(
                "not measured at this reading (the clock loop runs at most every 250 ms)".into(),
            ),
            ClockReader::Measured(_) => {
                let mhz = measure_mhz();
                if mhz.is_finite() && mhz > 0.0 {
                    Ok((mhz, mhz))
                } else {
                    Err("the clock loop measured nothing".into())
                }
            }
        };
        let hottest = self.temperatures.clone().and_then(|files| {
            files
                .iter()
                .filter_map(|(name, f)| {
                    let milli: f64 = self.root.read_trimmed(f).ok()?.parse().ok()?;
                    Some((milli / 1e3, name.clone()))
                })
                // Disconnected sensors read absurd values (-273 °C, 255 °C): keep the plausible.
                .filter(|(c, _)| (-40.0..=150.0).contains(c))
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .ok_or_else(|| "no temperature sensor gave a plausible reading".into())
        });
        let throttle_count = (!self.throttle_counters.is_empty()).then(|| {
            self.throttle_counters
                .iter()
                .filter_map(|f| self.root.read_trimmed(f).ok()?.parse::<u64>().ok())
                .sum()
        });
        let cooling_active = if self.throttling_cooling.is_empty() {
            Err("no CPU or GPU cooling device under /sys/class/thermal".to_string())
        } else {
            Ok(self
                .throttling_cooling
                .iter()
                .filter(|(_, f)| {
                    self.root
                        .read_trimmed(f)
                        .ok()
                        .and_then(|t| t.parse::<u64>().ok())
                        .is_some_and(|s| s > 0)
                })
                .map(|(t, _)| t.clone())
                .collect())
        };
        let gpu_mhz = self.gpu_freq.as_ref().map(|f| {
            self.root.read_trimmed(f).and_then(|t| {
                t.parse::<f64>()
                    .map(|hz| hz / 1e6)
                    .map_err(|_| format!("{f}: not a clock in Hz"))
            })
        });
        Reading {
            cpu_mhz,
            hottest,
            throttle_count,
            cooling_active,
            gpu_mhz,
        }
    }
}

/// Thermal zones (`type`, `temp`) and hwmon inputs (`name`/`tempN_label`, `tempN_input`).
fn temperature_files(root: &Root) -> Result<Vec<(String, String)>, String> {
    let mut files = Vec::new();
    let mut why = Vec::new();
    match root.entries("/sys/class/thermal", "thermal_zone") {
        Ok(zones) => {
            for z in zones {
                let dir = format!("/sys/class/thermal/{z}");
                if root.read_trimmed(&format!("{dir}/temp")).is_ok() {
                    let name = root.read_trimmed(&format!("{dir}/type")).unwrap_or(z);
                    files.push((name, format!("{dir}/temp")));
                }
            }
        }
        Err(e) => why.push(e),
    }
    match root.entries("/sys/class/hwmon", "hwmon") {
        Ok(mons) => {
            for m in mons {
                let dir = format!("/sys/class/hwmon/{m}");
                let chip = root.read_trimmed(&format!("{dir}/name")).unwrap_or(m);
                for input in root.entries(&dir, "temp").unwrap_or_default() {
                    let Some(n) = input.strip_suffix("_input") else {
                        continue;
                    };
                    let label = root
                        .read_trimmed(&format!("{dir}/{n}_label"))
                        .unwrap_or_else(|_| n.to_string());
                    files.push((format!("{chip} {label}"), format!("{dir}/{input}")));
                }
            }
        }
        Err(e) => why.push(e),
    }
    if files.is_empty() {
        why.push("no readable thermal zone or hwmon temperature".into());
        Err(why.join("; "))
    } else {
        Ok(files)
    }
}

/// The throttling cooling devices' `cur_state` files.
fn cooling_files(root: &Root) -> Vec<(String, String)> {
    root.entries("/sys/class/thermal", "cooling_device")
        .unwrap_or_default()
        .into_iter()
        .filter_map(|d| {
            let dir = format!("/sys/class/thermal/{d}");
            let kind = root.read_trimmed(&format!("{dir}/type")).ok()?;
            let lower = kind.to_ascii_lowercase();
            THROTTLING
                .iter()
                .any(|t| lower.contains(t))
                .then(|| (kind, format!("{dir}/cur_state")))
        })
        .collect()
}

/// The running CPU clock in MHz from a short measurement (see
/// [`super::clock::measure_clock_quick_ghz`]).
pub fn quick_clock_mhz() -> f64 {
    measure_clock_quick_ghz() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Root {
        Root::new(format!(
            "{}/src/detect/fixtures/env/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
    }

    fn never() -> f64 {
        panic!("cpufreq is there: no measurement")
    }

    #[test]
    fn jetson_reads_cpufreq_zones_and_the_gpu_clock() {
        let s = Sensors::discover(&fixture("orin"));
        assert!(matches!(&s.clock, ClockReader::Cpufreq(f) if f.len() == 6));
        let r = s.read(&mut never, true);
        assert_eq!(r.cpu_mhz, Ok((1113.6, 1510.4)));
        assert_eq!(r.hottest, Ok((48.718, "tj-thermal".to_string())));
        assert_eq!(r.gpu_mhz, Some(Ok(306.0)));
        assert_eq!(r.throttle_count, None);
        // The fixture's cooling devices: a running fan (not throttling) and an idle cpufreq one.
        assert_eq!(s.throttling_cooling.len(), 1);
        assert_eq!(r.cooling_active, Ok(vec![]));
        assert!(s.can_tell_throttling());
    }

    #[test]
    fn desktop_reads_hwmon_and_throttle_counters() {
        let s = Sensors::discover(&fixture("desktop"));
        let r = s.read(&mut never, true);
        assert_eq!(r.cpu_mhz, Ok((3600.0, 4700.0)));
        assert_eq!(r.hottest, Ok((53.0, "coretemp Package id 0".to_string())));
        assert_eq!(r.throttle_count, Some(7));
        assert_eq!(r.gpu_mhz, None);
    }

    #[test]
    fn vm_measures_the_clock_and_names_what_is_missing() {
        let s = Sensors::discover(&fixture("vm"));
        assert!(matches!(s.clock, ClockReader::Measured(_)));
        let r = s.read(&mut || 3700.0, true);
        assert_eq!(r.cpu_mhz, Ok((3700.0, 3700.0)));
        let e = r.hottest.unwrap_err();
        assert!(
            e.contains("/sys/class/thermal") && e.contains("no readable"),
            "{e}"
        );
        assert!(r.cooling_active.is_err());
        assert!(!s.can_tell_throttling());
        assert_eq!((r.throttle_count, r.gpu_mhz), (None, None));
    }

    #[test]
    fn the_quick_clock_is_plausible() {
        let mhz = quick_clock_mhz();
        assert!((100.0..10_000.0).contains(&mhz), "{mhz}");
    }
}
