//! Telemetry during each figure: the runner asks for a reading before a figure's warm-ups,
//! between its trials and after its last trial — never inside a timed region — and the
//! sampler takes one at most every [`READING_INTERVAL`] (plus the first and the last). A
//! figure keeps the min/max of what was read ([`FigureTelemetry`]); it is flagged `throttled`
//! when a throttle counter rose or a throttling cooling device was active, and `clock_spread`
//! when the running CPU clock (the highest clock of the allowed CPUs at each reading) moved by
//! more than [`CLOCK_SPREAD_LIMIT`]. A source that gave nothing is listed in `missing` with
//! its reason, and throttling that cannot be told is `None`, not "not throttled".

use std::time::{Duration, Instant};

use fleetcal_proto::result::{FigureTelemetry, MinMax};

use crate::detect::sensors::{ClockReader, Reading, Sensors};

/// The shortest time between two readings within a figure.
pub const READING_INTERVAL: Duration = Duration::from_millis(250);

/// A figure whose running clock moved by more than this share of its highest reading is
/// flagged `clock_spread` (10 %).
pub const CLOCK_SPREAD_LIMIT: f64 = 0.10;

/// GPU telemetry (clocks, temperature, power, throttle reasons) of discrete NVIDIA GPUs is not
/// read: this build has no NVML binding.
pub const NO_NVML: &str =
    "gpu: clocks, temperature, power and throttle reasons are not read (this build has no NVML binding)";

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
    /// Whether a discrete NVIDIA GPU runs the figures (its telemetry is then missing).
    cuda: bool,
    readings: Vec<Reading>,
    last: Option<Instant>,
}

impl SensorTelemetry {
    /// Telemetry over `sensors`; `measure_mhz` measures the clock where cpufreq is absent;
    /// `cuda`: the run is on a CUDA device (whose telemetry this build cannot read).
    pub fn new(sensors: Sensors, measure_mhz: Box<dyn FnMut() -> f64>, cuda: bool) -> Self {
        SensorTelemetry {
            sensors,
            measure_mhz,
            cuda,
            readings: Vec::new(),
            last: None,
        }
    }

    /// This host's sensors (root `/`), the clock measured by the short loop where needed.
    pub fn detect(cuda: bool) -> SensorTelemetry {
        let root = crate::detect::environment::Root::new("/");
        SensorTelemetry::new(
            Sensors::discover(&root),
            Box::new(crate::detect::sensors::quick_clock_mhz),
            cuda,
        )
    }

    fn read(&mut self, measure: bool) {
        let r = self.sensors.read(&mut *self.measure_mhz, measure);
        self.readings.push(r);
        self.last = Some(Instant::now());
    }

    fn due(&self) -> bool {
        self.last.is_none_or(|t| t.elapsed() >= READING_INTERVAL)
    }
}

impl Telemetry for SensorTelemetry {
    fn begin(&mut self) {
        self.readings.clear();
        self.last = None;
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
        let t = summarize(&self.readings, &self.sensors, self.cuda);
        self.readings.clear();
        self.last = None;
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

/// A figure's telemetry from its readings.
pub fn summarize(readings: &[Reading], sensors: &Sensors, cuda: bool) -> FigureTelemetry {
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
    if cuda && sensors.gpu_freq.is_none() {
        missing.push(NO_NVML.into());
    }
    let throttled = throttled(readings, sensors);
    if throttled.is_none() {
        missing.push(
            "throttling: no x86 thermal_throttle counters and no CPU/GPU cooling device under /sys"
                .into(),
        );
    }
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
        gpu_mhz,
        throttled,
        missing,
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
            false,
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
            false,
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
            false,
        );
        assert_eq!(t.throttled, Some(true));
        let calm = summarize(
            &[
                reading(4700.0, 60.0, Some(7), &[]),
                reading(4700.0, 61.0, Some(7), &[]),
            ],
            &desktop,
            false,
        );
        assert_eq!(calm.throttled, Some(false));
    }

    #[test]
    fn clock_spread_follows_the_running_clock_over_time() {
        let s = fixture("orin");
        let spread = |rs: &[Reading]| clock_spread(&summarize(rs, &s, false), CLOCK_SPREAD_LIMIT);
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
            summarize(&dropped, &s, false).running_mhz,
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
        let t = summarize(&[r.clone(), r], &vm, true);
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
        let t = summarize(&[r], &none, false);
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
            false,
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
