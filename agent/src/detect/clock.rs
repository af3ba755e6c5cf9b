//! The core clock a peak is computed at: cpufreq's maximum where the OS exposes it, else a
//! measurement.
//!
//! Inside a VM there is usually no cpufreq, and `/proc/cpuinfo`'s `cpu MHz` is the TSC rate
//! (2.6 GHz on the EPYC machines here), not the clock the cores actually run at (~4.05 GHz
//! on Zen 5). [`measure_clock_ghz`] times a chain of dependent one-cycle `xor`/`add` operations,
//! written in inline assembly on x86-64 and AArch64 (the agent's only `unsafe`: register-only
//! arithmetic) so that debug and release builds measure the same.

use std::fmt;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Where a clock figure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockSource {
    /// cpu0's cpufreq `cpuinfo_max_freq`, or `scaling_max_freq` where that is lower (a power
    /// mode or governor cap, as on a Jetson in a low-power nvpmodel mode).
    CpufreqMax,
    /// Timed with [`measure_clock_ghz`].
    Measured,
}

impl fmt::Display for ClockSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClockSource::CpufreqMax => {
                f.write_str("cpufreq of cpu0: cpuinfo_max_freq, or scaling_max_freq where lower")
            }
            ClockSource::Measured => write!(
                f,
                "measured: a chain of dependent xor/add operations, best of {TRIALS} trials of \
                 {} ms",
                TRIAL.as_millis()
            ),
        }
    }
}

/// A core clock and its source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClockEstimate {
    /// GHz, finite and positive.
    pub ghz: f64,
    /// Where it came from.
    pub source: ClockSource,
}

/// The cpufreq files bounding cpu0's clock, in kHz: the hardware maximum and the policy cap.
const CPUFREQ_MAX: [&str; 2] = [
    "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq",
    "/sys/devices/system/cpu/cpu0/cpufreq/scaling_max_freq",
];

/// The length of one timed trial of [`measure_clock_ghz`].
const TRIAL: Duration = Duration::from_millis(4);
/// The trials [`measure_clock_ghz`] keeps the best of.
const TRIALS: usize = 25;

/// Dependent one-cycle operations per loop iteration of [`xor_add_chain`].
const OPS_PER_ITERATION: u64 = 16;

/// Parses a cpufreq kHz figure (`2201600`) into GHz; `None` unless a positive number.
pub fn parse_cpufreq_khz(text: &str) -> Option<f64> {
    let khz: f64 = text.trim().parse().ok()?;
    (khz.is_finite() && khz > 0.0).then_some(khz / 1e6)
}

/// The clock: cpufreq's maximum (capped by the policy maximum) when present, else
/// [`measure_clock_ghz`].
pub fn detect_clock() -> ClockEstimate {
    clock_from(
        CPUFREQ_MAX
            .iter()
            .filter_map(|path| std::fs::read_to_string(super::root::host_path(path)).ok()),
        measure_clock_ghz,
    )
}

/// [`detect_clock`] over the texts of the cpufreq files that could be read: the lowest
/// figure that parses (the policy cap where it is below the hardware maximum), else `measure`.
fn clock_from(
    cpufreq_texts: impl IntoIterator<Item = String>,
    measure: impl FnOnce() -> f64,
) -> ClockEstimate {
    let cpufreq = cpufreq_texts
        .into_iter()
        .filter_map(|text| parse_cpufreq_khz(&text))
        .reduce(f64::min);
    match cpufreq {
        Some(ghz) => ClockEstimate {
            ghz,
            source: ClockSource::CpufreqMax,
        },
        None => ClockEstimate {
            ghz: measure(),
            source: ClockSource::Measured,
        },
    }
}

/// Measures the running core clock in GHz: the best of `TRIALS` (25) trials of about
/// `TRIAL` (4 ms) each of dependent `xor`/`add` steps (one cycle each on every x86-64 and ARM
/// core). Takes about 0.1 s.
///
/// Short trials are what make it robust: on 2 vCPUs with three busy processes beside it, one
/// 4 ms trial in 25 still runs undisturbed (3.69 GHz, as idle), while 50 ms trials read 2-3× low.
pub fn measure_clock_ghz() -> f64 {
    best_of_chains(1 << 14, Duration::from_millis(5), TRIAL, TRIALS)
}

/// A quick reading of the running core clock in GHz for telemetry between trials: the best
/// of 3 trials of about 0.5 ms each of the same chain as [`measure_clock_ghz`] (about 2 ms in
/// all). Less robust to a busy neighbour than the full measurement; used only where cpufreq
/// gives no current clock.
pub fn measure_clock_quick_ghz() -> f64 {
    best_of_chains(
        1 << 12,
        Duration::from_micros(125),
        Duration::from_micros(500),
        3,
    )
}

/// The clock in GHz from the fastest of `trials` timed chains of about `trial` each. The
/// iteration count starts at `start` and is quadrupled until one chain runs for at least
/// `settle` (so the timer's resolution does not matter), then scaled to one `trial`.
fn best_of_chains(start: u64, settle: Duration, trial: Duration, trials: usize) -> f64 {
    let mut iterations = start;
    let mut elapsed = time_chain(iterations);
    while elapsed < settle {
        iterations = iterations.saturating_mul(4);
        elapsed = time_chain(iterations);
    }
    let scale = trial.as_secs_f64() / elapsed.as_secs_f64().max(1e-9);
    let iterations = ((iterations as f64 * scale) as u64).max(1);
    let best = (0..trials)
        .map(|_| time_chain(iterations))
        .min()
        .unwrap_or(elapsed)
        .as_secs_f64()
        .max(1e-9);
    (iterations * OPS_PER_ITERATION) as f64 / best / 1e9
}

fn time_chain(iterations: u64) -> Duration {
    let start = Instant::now();
    black_box(xor_add_chain(
        black_box(iterations),
        black_box(0x9e37_79b9_7f4a_7c15),
    ));
    start.elapsed()
}

/// `iterations × 16` dependent one-cycle operations on x86-64: alternating `xor`/`add` on one
/// register. Inline assembly, so that the chain is the same in debug and release builds (an
/// unoptimised build of the Rust loop keeps `x` on the stack and reads about 4× low).
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[inline(never)]
fn xor_add_chain(iterations: u64, k: u64) -> u64 {
    let mut x = k;
    // SAFETY: register-only arithmetic and a counted loop on the declared operands (n ≥ 1);
    // no memory, stack or other state is read or written.
    unsafe {
        core::arch::asm!(
            "2:",
            "xor {x}, {k}", "add {x}, {k}", "xor {x}, {k}", "add {x}, {k}",
            "xor {x}, {k}", "add {x}, {k}", "xor {x}, {k}", "add {x}, {k}",
            "xor {x}, {k}", "add {x}, {k}", "xor {x}, {k}", "add {x}, {k}",
            "xor {x}, {k}", "add {x}, {k}", "xor {x}, {k}", "add {x}, {k}",
            "dec {n}",
            "jnz 2b",
            x = inout(reg) x,
            n = inout(reg) iterations.max(1) => _,
            k = in(reg) k,
            options(nomem, nostack),
        );
    }
    x
}

/// `iterations × 16` dependent one-cycle operations on AArch64: alternating `eor`/`add`, in
/// inline assembly for the same reason as on x86-64.
#[cfg(target_arch = "aarch64")]
#[allow(unsafe_code)]
#[inline(never)]
fn xor_add_chain(iterations: u64, k: u64) -> u64 {
    let mut x = k;
    // SAFETY: register-only arithmetic and a counted loop on the declared operands (n ≥ 1);
    // no memory, stack or other state is read or written.
    unsafe {
        core::arch::asm!(
            "2:",
            "eor {x}, {x}, {k}", "add {x}, {x}, {k}", "eor {x}, {x}, {k}", "add {x}, {x}, {k}",
            "eor {x}, {x}, {k}", "add {x}, {x}, {k}", "eor {x}, {x}, {k}", "add {x}, {x}, {k}",
            "eor {x}, {x}, {k}", "add {x}, {x}, {k}", "eor {x}, {x}, {k}", "add {x}, {x}, {k}",
            "eor {x}, {x}, {k}", "add {x}, {x}, {k}", "eor {x}, {x}, {k}", "add {x}, {x}, {k}",
            "subs {n}, {n}, #1",
            "b.ne 2b",
            x = inout(reg) x,
            n = inout(reg) iterations.max(1) => _,
            k = in(reg) k,
            options(nomem, nostack),
        );
    }
    x
}

/// `iterations × 16` dependent one-cycle operations elsewhere: the `xor`/`add` alternation
/// keeps the optimiser from folding the chain (accurate in optimised builds only).
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
#[inline(never)]
fn xor_add_chain(iterations: u64, k: u64) -> u64 {
    let mut x = k;
    for _ in 0..iterations {
        for _ in 0..8 {
            x = (x ^ k).wrapping_add(k);
            x = (x ^ k).wrapping_add(k);
        }
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpufreq_khz() {
        assert_eq!(parse_cpufreq_khz("1510400\n"), Some(1.5104));
        assert_eq!(parse_cpufreq_khz("0"), None);
        assert_eq!(parse_cpufreq_khz("-5"), None);
        assert_eq!(parse_cpufreq_khz(""), None);
        assert_eq!(parse_cpufreq_khz("fast"), None);
    }

    #[test]
    fn measured_clock_is_plausible() {
        let ghz = measure_clock_ghz();
        assert!((0.5..7.0).contains(&ghz), "{ghz} GHz");
    }

    #[test]
    fn cpufreq_wins_over_a_measurement_and_its_policy_cap_over_the_maximum() {
        let never = || -> f64 { panic!("no measurement when cpufreq answers") };
        let c = clock_from(["2201600\n".to_string(), "1510400\n".to_string()], never);
        assert_eq!(
            c,
            ClockEstimate {
                ghz: 1.5104,
                source: ClockSource::CpufreqMax
            },
            "a policy cap below the hardware maximum is the clock the cores run at"
        );
        let c = clock_from(["junk".to_string(), "3000000".to_string()], never);
        assert_eq!(c.ghz, 3.0);
        // No cpufreq (a VM) or nothing usable in it: measured.
        for texts in [vec![], vec!["0".to_string(), "".to_string()]] {
            let c = clock_from(texts, || 4.05);
            assert_eq!(
                c,
                ClockEstimate {
                    ghz: 4.05,
                    source: ClockSource::Measured
                }
            );
        }
    }

    #[test]
    fn the_detected_clock_is_a_plausible_core_clock() {
        let c = detect_clock();
        assert!((0.1..10.0).contains(&c.ghz), "{c:?}");
    }
}
