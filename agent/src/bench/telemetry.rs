//! Telemetry during each figure: the runner asks for a reading before a figure's warm-ups,
//! between its trials and after its last trial — never inside a timed region — and the
//! sampler takes one at most every [`READING_INTERVAL`] (plus the first and the last). A
//! figure keeps the min/max of what was read ([`FigureTelemetry`]); it is flagged `throttled`
//! when a throttle counter rose or a throttling cooling device was active, and `clock_spread`
//! when the running CPU clock (the highest clock of the allowed CPUs at each reading) moved by
//! more than [`CLOCK_SPREAD_LIMIT`]. On a CUDA run with a discrete NVIDIA GPU each reading
//! also reads the GPU through NVML ([`crate::detect::nvml`]): SM and memory clocks,
//! temperature, power and throttle reasons; a reason other than idle or the application-clock
//! setting flags the figure `throttled`. A source that gave nothing is listed in `missing`
//! with its reason (NVML that cannot be loaded included), and throttling that cannot be told
//! is `None`, not "not throttled".

use std::time::{Duration, Instant};

use fleetcal_proto::result::{FigureTelemetry, MinMax};

use crate::detect::nvml::{self, GpuReading, GpuSensor};
use crate::detect::sensors::{ClockReader, Reading, Sensors};

/// The shortest time between two readings within a figure.
pub const READING_INTERVAL: Duration = Duration::from_millis(250);

/// A figure whose running clock moved by more than this share of its highest reading is
/// flagged `clock_spread` (10 %).
pub const CLOCK_SPREAD_LIMIT: f64 = 0.10;

/// Where a run's discrete-GPU telemetry comes from.
pub enum GpuTelemetry {
    /// No discrete GPU runs the figures (a CPU run; or a Jetson, whose GPU clock is devfreq's).
    None,
    /// A CUDA run whose GPU cannot be read: why (NVML not loadable, no GPU, ...).
    Unavailable(String),
    /// The GPU the figures run on (NVML; a stand-in in tests).
    Sensor(Box<dyn GpuSensor>),
}

/// A figure's discrete-GPU readings, as [`summarize`] takes them.
#[derive(Debug, Clone, Copy)]
pub enum GpuSamples<'a> {
    /// No discrete GPU runs the figures.
    None,
    /// A CUDA run whose GPU cannot be read: why.
    Unavailable(&'a str),
    /// The readings of `device`.
    Read {
        /// Which GPU (`NVML 0: NVIDIA H200`).
        device: &'a str,
        /// The figure's readings.
        readings: &'a [GpuReading],
    },
}

/// What the runner calls around a figure.
pub trait Telemetry {
    /// A figure begins: forget the last one and take a first reading.
    fn begin(&mut self);
    /// Between two trials (outside the timed region): a reading if one is due.
    fn between_trials(&mut self);
    /// The figure's trials are over: a last reading and the figure's telemetry.
    fn finish(&mut self) -> Option<FigureTelemetry>;
}

/// No telemetry (`--no-telemetry`, the noise probe, tests).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoTelemetry;

impl Telemetry for NoTelemetry {
    fn begin(&mut self) {}
    fn between_trials(&mut self) {}
    fn finish(&mut self) -> Option<FigureTelemetry> {
        None
    }
}

/// Telemetry from the host's sensors.
pub struct SensorTelemetry {
    sensors: Sensors,
    measure_mhz: Box<dyn FnMut() -> f64>,
    gpu: GpuTelemetry,
    readings: Vec<Reading>,
    gpu_readings: Vec<GpuReading>,
    last: Option<Instant>,
}

impl SensorTelemetry {
    /// Telemetry over `sensors`; `measure_mhz` measures the clock where cpufreq is absent;
    /// `gpu`: the discrete GPU the figures run on, if any.
    pub fn new(sensors: Sensors, measure_mhz: Box<dyn FnMut() -> f64>, gpu: GpuTelemetry) -> Self {
        SensorTelemetry {
            sensors,
            measure_mhz,
            gpu,
            readings: Vec::new(),
            gpu_readings: Vec::new(),
            last: None,
        }
    }

    /// This host's sensors (root `/`), the clock measured by the short loop where needed;
    /// `cuda`: the run is on a CUDA device, whose telemetry is read through NVML unless it is
    /// a Jetson's integrated GPU (read through devfreq).
    pub fn detect(cuda: bool) -> SensorTelemetry {
        let root = crate::detect::environment::Root::new("/");
        let sensors = Sensors::discover(&root);
        let gpu = if cuda && sensors.gpu_freq.is_none() {
            match nvml::open_cuda_device() {
                Ok(g) => GpuTelemetry::Sensor(Box::new(g)),
                Err(why) => GpuTelemetry::Unavailable(why),
            }
        } else {
            GpuTelemetry::None
        };
        SensorTelemetry::new(
            sensors,
            Box::new(crate::detect::sensors::quick_clock_mhz),
            gpu,
        )
    }

    fn read(&mut self, measure: bool) {
        let r = self.sensors.read(&mut *self.measure_mhz, measure);
        self.readings.push(r);
        if let GpuTelemetry::Sensor(g) = &self.gpu {
            self.gpu_readings.push(g.read());
        }
        self.last = Some(Instant::now());
    }

    fn clear(&mut self) {
        self.readings.clear();
        self.gpu_readings.clear();
        self.last = None;
    }

    fn due(&self) -> bool {
        self.last.is_none_or(|t| t.elapsed() >= READING_INTERVAL)
    }
}

impl Telemetry for SensorTelemetry {
    fn begin(&mut self) {
        self.clear();
        self.read(true);
    }

    fn between_trials(&mut self) {
        if self.due() {
            self.read(true);
        }
    }

    fn finish(&mut self) -> Option<FigureTelemetry> {
        // The last reading always (throttle counters, cpufreq are cheap); a measured clock
        // only when one is due.
        let measure = self.due();
        self.read(measure);
        let gpu = match &self.gpu {
            GpuTelemetry::None => GpuSamples::None,
            GpuTelemetry::Unavailable(why) => GpuSamples::Unavailable(why),
            GpuTelemetry::Sensor(g) => GpuSamples::Read {
                device: g.device(),
                readings: &self.gpu_readings,
            },
        };
        let t = summarize(&self.readings, &self.sensors, gpu);
        self.clear();
        Some(t)
    }
}

fn min_max(values: impl Iterator<Item = f64>) -> Option<MinMax> {
    values.fold(None, |acc: Option<MinMax>, v| {
        Some(match acc {
            None => MinMax { min: v, max: v },
            Some(m) => MinMax {
                min: m.min.min(v),
                max: m.max.max(v),
            },
        })
    })
}

/// A figure's telemetry from its readings (and those of the discrete GPU, if any).
pub fn summarize(readings: &[Reading], sensors: &Sensors, gpu: GpuSamples<'_>) -> FigureTelemetry {
    let mut missing = Vec::new();
    let first_err = |f: &dyn Fn(&Reading) -> Option<String>| readings.iter().find_map(f);
    let cpu_mhz = min_max(
        readings
            .iter()
            .filter_map(|r| r.cpu_mhz.as_ref().ok())
            .flat_map(|&(lo, hi)| [lo, hi]),
    );
    if cpu_mhz.is_none() {
        missing.push(format!(
            "cpu clock: {}",
            first_err(&|r| r.cpu_mhz.as_ref().err().cloned())
                .unwrap_or_else(|| "no reading".into())
        ));
    }
    let temperature_c = min_max(
        readings
            .iter()
            .filter_map(|r| r.hottest.as_ref().ok().map(|h| h.0)),
    );
    if temperature_c.is_none() {
        missing.push(format!(
            "temperature: {}",
            first_err(&|r| r.hottest.as_ref().err().cloned())
                .unwrap_or_else(|| "no reading".into())
        ));
    }
    let gpu_mhz = min_max(
        readings
            .iter()
            .filter_map(|r| r.gpu_mhz.as_ref().and_then(|g| g.as_ref().ok()).copied()),
    );
    if let Some(e) = first_err(&|r| r.gpu_mhz.as_ref().and_then(|g| g.as_ref().err().cloned())) {
        missing.push(format!("gpu clock: {e}"));
    }
    let cpu_throttled = throttled(readings, sensors);
    if cpu_throttled.is_none() {
        missing.push(
            "throttling: no x86 thermal_throttle counters and no CPU/GPU cooling device under /sys"
                .into(),
        );
    }
    let g = summarize_gpu(gpu, &mut missing);
    let throttled = match (cpu_throttled, g.throttled) {
        (Some(true), _) | (_, Some(true)) => Some(true),
        (Some(false), _) | (_, Some(false)) => Some(false),
        (None, None) => None,
    };
    FigureTelemetry {
        readings: u32::try_from(readings.len()).unwrap_or(u32::MAX),
        running_mhz: min_max(
            readings
                .iter()
                .filter_map(|r| r.cpu_mhz.as_ref().ok().map(|m| m.1)),
        ),
        cpu_clock_source: match sensors.clock {
            ClockReader::Cpufreq(_) => "cpufreq".into(),
            ClockReader::Measured(_) => "measured".into(),
        },
        cpu_mhz,
        temperature_c,
        hottest_sensor: readings
            .iter()
            .rev()
            .find_map(|r| r.hottest.as_ref().ok().map(|h| h.1.clone())),
        gpu_mhz: gpu_mhz.or(g.sm_mhz),
        gpu_device: g.device,
        gpu_memory_mhz: g.memory_mhz,
        gpu_temperature_c: g.temperature_c,
        gpu_power_w: g.power_w,
        gpu_throttle_reasons: g.reasons,
        throttled,
        missing,
    }
}

/// What a figure's discrete-GPU readings come to.
#[derive(Default)]
struct GpuSummary {
    device: Option<String>,
    sm_mhz: Option<MinMax>,
    memory_mhz: Option<MinMax>,
    temperature_c: Option<MinMax>,
    power_w: Option<MinMax>,
    reasons: Vec<String>,
    throttled: Option<bool>,
}

/// The GPU's ranges, throttle reasons and throttling; what gave nothing goes to `missing`.
fn summarize_gpu(gpu: GpuSamples<'_>, missing: &mut Vec<String>) -> GpuSummary {
    let (device, readings) = match gpu {
        GpuSamples::None => return GpuSummary::default(),
        GpuSamples::Unavailable(why) => {
            missing.push(format!(
                "gpu: clocks, temperature, power and throttle reasons not read: {why}"
            ));
            return GpuSummary::default();
        }
        GpuSamples::Read { device, readings } => (device, readings),
    };
    let mut range = |name: &str, get: &dyn Fn(&GpuReading) -> &Result<f64, String>| {
        let r = min_max(
            readings
                .iter()
                .filter_map(|r| get(r).as_ref().ok().copied()),
        );
        if r.is_none() {
            let why = readings
                .iter()
                .find_map(|r| get(r).as_ref().err().cloned())
                .unwrap_or_else(|| "no reading".into());
            missing.push(format!("gpu {name}: {why}"));
        }
        r
    };
    let sm_mhz = range("sm clock", &|r| &r.sm_mhz);
    let memory_mhz = range("memory clock", &|r| &r.memory_mhz);
    let temperature_c = range("temperature", &|r| &r.temperature_c);
    let power_w = range("power", &|r| &r.power_w);
    let bits: Vec<u64> = readings
        .iter()
        .filter_map(|r| r.throttle_reasons.as_ref().ok().copied())
        .collect();
    let mut reasons: Vec<String> = Vec::new();
    for name in bits.iter().flat_map(|&b| nvml::reason_names(b)) {
        if !reasons.contains(&name) {
            reasons.push(name);
        }
    }
    let throttled = if bits.is_empty() {
        let why = readings
            .iter()
            .find_map(|r| r.throttle_reasons.as_ref().err().cloned())
            .unwrap_or_else(|| "no reading".into());
        missing.push(format!("gpu throttle reasons: {why}"));
        None
    } else {
        Some(bits.iter().any(|&b| nvml::throttling(b)))
    };
    GpuSummary {
        device: Some(device.to_string()),
        sm_mhz,
        memory_mhz,
        temperature_c,
        power_w,
        reasons,
        throttled,
    }
}

/// Throttled when a throttle counter rose between the first and the last reading or a
/// throttling cooling device was active at any reading; `None` when neither can be read.
fn throttled(readings: &[Reading], sensors: &Sensors) -> Option<bool> {
    if !sensors.can_tell_throttling() {
        return None;
    }
    let counts: Vec<u64> = readings.iter().filter_map(|r| r.throttle_count).collect();
    let rose = counts
        .first()
        .zip(counts.last())
        .is_some_and(|(a, b)| b > a);
    let cooling = readings
        .iter()
        .any(|r| r.cooling_active.as_ref().is_ok_and(|a| !a.is_empty()));
    Some(rose || cooling)
}

/// Whether the running clock (`running_mhz`: the highest clock of the allowed CPUs at each
/// reading) moved by more than `limit` of its highest value during the figure.
pub fn clock_spread(t: &FigureTelemetry, limit: f64) -> bool {
    t.running_mhz
        .is_some_and(|m| m.max > 0.0 && (m.max - m.min) / m.max > limit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::environment::Root;

    fn fixture(name: &str) -> Sensors {
        Sensors::discover(&Root::new(format!(
            "{}/src/detect/fixtures/env/{name}",
            env!("CARGO_MANIFEST_DIR")
        )))
    }

    fn reading(mhz: f64, temp: f64, count: Option<u64>, cooling: &[&str]) -> Reading {
        Reading {
            cpu_mhz: Ok((mhz * 0.5, mhz)),
            hottest: Ok((temp, "cpu-thermal".into())),
            throttle_count: count,
            cooling_active: Ok(cooling.iter().map(|c| c.to_string()).collect()),
            gpu_mhz: None,
        }
    }

    #[test]
    fn ranges_cover_every_reading() {
        let s = fixture("orin");
        let t = summarize(
            &[
                reading(1500.0, 50.0, None, &[]),
                reading(1400.0, 61.5, None, &[]),
            ],
            &s,
            GpuSamples::None,
        );
        assert_eq!(t.readings, 2);
        assert_eq!(t.cpu_clock_source, "cpufreq");
        assert_eq!(
            t.cpu_mhz,
            Some(MinMax {
                min: 700.0,
                max: 1500.0
            })
        );
        assert_eq!(
            t.temperature_c,
            Some(MinMax {
                min: 50.0,
                max: 61.5
            })
        );
        assert_eq!(t.hottest_sensor.as_deref(), Some("cpu-thermal"));
        assert_eq!(t.throttled, Some(false));
        assert!(t.missing.is_empty(), "{:?}", t.missing);
    }

    #[test]
    fn a_throttled_figure_is_flagged() {
        let s = fixture("orin");
        // A cpufreq cooling device became active during the figure.
        let t = summarize(
            &[
                reading(1500.0, 80.0, None, &[]),
                reading(1100.0, 96.0, None, &["cpufreq-cpu0"]),
            ],
            &s,
            GpuSamples::None,
        );
        assert_eq!(t.throttled, Some(true));
        // x86: a throttle counter rose.
        let desktop = fixture("desktop");
        let t = summarize(
            &[
                reading(4700.0, 90.0, Some(7), &[]),
                reading(4700.0, 99.0, Some(9), &[]),
            ],
            &desktop,
            GpuSamples::None,
        );
        assert_eq!(t.throttled, Some(true));
        let calm = summarize(
            &[
                reading(4700.0, 60.0, Some(7), &[]),
                reading(4700.0, 61.0, Some(7), &[]),
            ],
            &desktop,
            GpuSamples::None,
        );
        assert_eq!(calm.throttled, Some(false));
    }

    #[test]
    fn clock_spread_follows_the_running_clock_over_time() {
        let s = fixture("orin");
        let spread =
            |rs: &[Reading]| clock_spread(&summarize(rs, &s, GpuSamples::None), CLOCK_SPREAD_LIMIT);
        // Idle cores at half the clock (cpu_mhz spans 725..1500) are not a spread over time.
        let steady = [
            reading(1500.0, 50.0, None, &[]),
            reading(1450.0, 50.0, None, &[]),
        ];
        assert!(!spread(&steady), "3 % moves nothing");
        let dropped = [
            reading(1500.0, 50.0, None, &[]),
            reading(1100.0, 50.0, None, &[]),
        ];
        assert!(spread(&dropped));
        assert_eq!(
            summarize(&dropped, &s, GpuSamples::None).running_mhz,
            Some(MinMax {
                min: 1100.0,
                max: 1500.0
            })
        );
        assert!(!spread(&[]));
    }

    #[test]
    fn missing_telemetry_is_recorded_as_missing() {
        let vm = fixture("vm");
        let r = vm.read(&mut || 3700.0, true);
        let t = summarize(
            &[r.clone(), r],
            &vm,
            GpuSamples::Unavailable("NVML cannot be loaded: libnvidia-ml.so.1: not found"),
        );
        assert_eq!(t.cpu_clock_source, "measured");
        assert_eq!(
            t.cpu_mhz,
            Some(MinMax {
                min: 3700.0,
                max: 3700.0
            })
        );
        assert_eq!(t.temperature_c, None);
        assert_eq!(t.throttled, None, "unknown, not 'not throttled'");
        let missing = t.missing.join("\n");
        assert!(missing.contains("temperature: "), "{missing}");
        assert!(missing.contains("throttling: "), "{missing}");
        assert!(missing.contains("NVML"), "{missing}");
        // Nothing readable at all: the clock is missing too.
        let empty = tempfile::tempdir().unwrap();
        let none = Sensors::discover(&Root::new(empty.path()));
        let r = none.read(&mut || f64::NAN, true);
        let t = summarize(&[r], &none, GpuSamples::None);
        assert_eq!(t.cpu_mhz, None);
        assert!(t.missing[0].starts_with("cpu clock: "), "{:?}", t.missing);
    }

    /// The cost of telemetry on this host, as the runner pays it: one reading between trials
    /// without the clock loop (what most calls cost), one with it, and a figure's
    /// begin + finish (two readings and the summary).
    #[test]
    #[ignore = "a measurement: cargo test --release -p fleetcal-agent --lib reading_cost -- --ignored --nocapture"]
    fn reading_cost() {
        let mut t = SensorTelemetry::detect(false);
        let per = |n: u32, f: &mut dyn FnMut()| {
            let mut best = Duration::MAX;
            for _ in 0..5 {
                let start = Instant::now();
                for _ in 0..n {
                    f();
                }
                best = best.min(start.elapsed() / n);
            }
            best
        };
        let plain = per(2000, &mut || {
            t.read(false);
            t.readings.clear();
        });
        let measured = per(50, &mut || {
            t.read(true);
            t.readings.clear();
        });
        let figure = per(50, &mut || {
            t.begin();
            assert!(t.finish().is_some());
        });
        println!(
            "telemetry cost: reading {plain:?}, reading with the clock loop {measured:?}, figure begin+finish {figure:?}"
        );
        assert!(plain < Duration::from_millis(50), "{plain:?}");
    }

    /// A stand-in GPU: its readings are handed out in turn, the last one repeated.
    struct FakeGpu(std::cell::RefCell<Vec<GpuReading>>);

    impl GpuSensor for FakeGpu {
        fn device(&self) -> &str {
            "NVML 0: Fake GPU"
        }
        fn read(&self) -> GpuReading {
            let mut rs = self.0.borrow_mut();
            if rs.len() > 1 {
                rs.remove(0)
            } else {
                rs[0].clone()
            }
        }
    }

    fn gpu(sm: f64, temp: f64, watts: f64, reasons: u64) -> GpuReading {
        GpuReading {
            sm_mhz: Ok(sm),
            memory_mhz: Ok(2619.0),
            temperature_c: Ok(temp),
            power_w: Ok(watts),
            throttle_reasons: Ok(reasons),
        }
    }

    /// A figure through the runner's calls with a stand-in GPU.
    fn figure_on(readings: Vec<GpuReading>) -> FigureTelemetry {
        let mut t = SensorTelemetry::new(
            fixture("desktop"),
            Box::new(|| panic!("cpufreq is there")),
            GpuTelemetry::Sensor(Box::new(FakeGpu(std::cell::RefCell::new(readings)))),
        );
        t.begin();
        t.between_trials();
        t.finish().unwrap()
    }

    #[test]
    fn gpu_readings_become_ranges_and_a_throttled_gpu_flags_the_figure() {
        use nvml_wrapper::bitmasks::device::ThrottleReasons as R;
        let idle = R::GPU_IDLE.bits();
        let calm = figure_on(vec![
            gpu(1980.0, 41.0, 120.5, idle),
            gpu(1830.0, 55.0, 690.0, 0),
        ]);
        assert_eq!(calm.readings, 2);
        assert_eq!(calm.gpu_device.as_deref(), Some("NVML 0: Fake GPU"));
        assert_eq!(
            calm.gpu_mhz,
            Some(MinMax {
                min: 1830.0,
                max: 1980.0
            })
        );
        assert_eq!(
            calm.gpu_memory_mhz,
            Some(MinMax {
                min: 2619.0,
                max: 2619.0
            })
        );
        assert_eq!(
            calm.gpu_temperature_c,
            Some(MinMax {
                min: 41.0,
                max: 55.0
            })
        );
        assert_eq!(
            calm.gpu_power_w,
            Some(MinMax {
                min: 120.5,
                max: 690.0
            })
        );
        assert_eq!(calm.gpu_throttle_reasons, ["gpu_idle"]);
        assert_eq!(calm.throttled, Some(false), "idle is not throttling");
        assert!(calm.missing.is_empty(), "{:?}", calm.missing);
        // The power cap at the second reading: throttled, and the reason is kept.
        let hot = figure_on(vec![
            gpu(1980.0, 80.0, 690.0, 0),
            gpu(1410.0, 88.0, 700.0, R::SW_POWER_CAP.bits()),
        ]);
        assert_eq!(hot.throttled, Some(true));
        assert_eq!(hot.gpu_throttle_reasons, ["sw_power_cap"]);
        // Application clocks set by the admin are not throttling either.
        let pinned = figure_on(vec![gpu(
            1410.0,
            50.0,
            300.0,
            R::APPLICATIONS_CLOCKS_SETTING.bits(),
        )]);
        assert_eq!(pinned.throttled, Some(false));
    }

    #[test]
    fn gpu_readings_that_fail_are_recorded_missing() {
        let why = |w: &str| Err::<f64, String>(w.to_string());
        let blind = figure_on(vec![GpuReading {
            sm_mhz: Ok(1500.0),
            memory_mhz: why("memory clock: the function is not supported"),
            temperature_c: why("temperature: the function is not supported"),
            power_w: why("power: the function is not supported"),
            throttle_reasons: Err("throttle reasons: the function is not supported".into()),
        }]);
        assert_eq!(
            blind.gpu_mhz,
            Some(MinMax {
                min: 1500.0,
                max: 1500.0
            })
        );
        assert_eq!((blind.gpu_memory_mhz, blind.gpu_power_w), (None, None));
        let missing = blind.missing.join("\n");
        for m in [
            "gpu memory clock: ",
            "gpu temperature: ",
            "gpu power: ",
            "gpu throttle reasons: ",
        ] {
            assert!(missing.contains(m), "{m} in {missing}");
        }
        assert!(!missing.contains("gpu sm clock"), "{missing}");
        // The desktop fixture's CPU counters still tell: not throttled, though the GPU could not.
        assert_eq!(blind.throttled, Some(false));
        // Neither the CPU nor the GPU can tell: unknown, not "not throttled".
        let vm = fixture("vm");
        let r = vm.read(&mut || 3000.0, true);
        let g = [GpuReading {
            throttle_reasons: Err("throttle reasons: no permission".into()),
            ..gpu(1500.0, 40.0, 100.0, 0)
        }];
        let t = summarize(
            &[r],
            &vm,
            GpuSamples::Read {
                device: "NVML 0: x",
                readings: &g,
            },
        );
        assert_eq!(t.throttled, None);
    }

    /// The real loader on this host, through the runner's telemetry: a CUDA run here either
    /// reads the GPU or records why not in `missing` — never a panic, never silently fine.
    #[test]
    fn a_cuda_run_records_the_gpu_or_why_it_is_missing() {
        let mut t = SensorTelemetry::detect(true);
        t.begin();
        let f = t.finish().unwrap();
        if f.gpu_device.is_none() && no_jetson_gpu_here() {
            let missing = f.missing.join("\n");
            assert!(missing.contains("gpu: "), "{missing}");
            assert!(missing.contains("NVML"), "{missing}");
            assert_eq!(f.gpu_memory_mhz, None);
        }
        // A CPU run does not touch NVML.
        let mut cpu = SensorTelemetry::detect(false);
        cpu.begin();
        let f = cpu.finish().unwrap();
        assert!(
            f.missing.iter().all(|m| !m.starts_with("gpu")),
            "{:?}",
            f.missing
        );
    }

    /// Not a Jetson (whose GPU is read through devfreq, not NVML).
    fn no_jetson_gpu_here() -> bool {
        Sensors::discover(&Root::new("/")).gpu_freq.is_none()
    }

    #[test]
    fn readings_are_rate_limited_within_a_figure() {
        let mut calls = 0u32;
        let counter = std::rc::Rc::new(std::cell::Cell::new(0u32));
        let c = counter.clone();
        let mut t = SensorTelemetry::new(
            fixture("vm"),
            Box::new(move || {
                c.set(c.get() + 1);
                3000.0
            }),
            GpuTelemetry::None,
        );
        t.begin();
        for _ in 0..100 {
            t.between_trials();
            calls += 1;
        }
        let f = t.finish().unwrap();
        assert_eq!(calls, 100);
        // One at the start, one at the end; 100 quick trials are far inside 250 ms, so the
        // clock loop ran once.
        assert_eq!(f.readings, 2);
        assert_eq!(counter.get(), 1);
        assert_eq!(
            f.cpu_mhz,
            Some(MinMax {
                min: 3000.0,
                max: 3000.0
            })
        );
        assert!(
            f.missing.iter().all(|m| !m.starts_with("cpu clock")),
            "{:?}",
            f.missing
        );
    }
}
