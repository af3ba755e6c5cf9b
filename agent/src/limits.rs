//! The accepted range of every number the agent is given — a `calibrate` or `run` flag, a
//! config-file key, a calibration request field — and the one checker for all of them.
//!
//! A value outside its range is an [`AgentError::Usage`] (exit 2) naming the flag, key or
//! field, the offending value (a bounded prefix of what was typed) and the range. Seconds
//! become a [`Duration`] only after the check, through the fallible conversion, so no input
//! can overflow one. Each [`Limit`] is also a clap value parser (`value_parser =
//! limits::TIMEOUT_S`): the flag is checked while the command line is parsed.

use std::ffi::OsStr;
use std::fmt::{Debug, Display};
use std::str::FromStr;
use std::time::Duration;

use fleetcal_proto::pb;
use fleetcal_proto::quote::bounded;

use crate::AgentError;

/// An inclusive range with the unit it is written in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit<T> {
    /// The smallest accepted value.
    pub min: T,
    /// The largest accepted value.
    pub max: T,
    /// What the number counts ("seconds", "MiB", ...).
    pub unit: &'static str,
}

/// `calibrate --timeout`: the per-size budget of a figure's trials, seconds.
pub const TIMEOUT_S: Limit<f64> = Limit {
    min: 0.01,
    max: 3600.0,
    unit: "seconds",
};
/// `calibrate --min-gflops`: the GEMM early-stop threshold (0 never stops).
pub const MIN_GFLOPS: Limit<f64> = Limit {
    min: 0.0,
    max: 1e9,
    unit: "GFLOPS/GIOPS",
};
/// `calibrate --trials` and `--max-trials`: timed trials per figure (the coordinator's plan
/// limit too).
pub const TRIALS: Limit<u32> = Limit {
    min: 1,
    max: pb::MAX_TRIALS,
    unit: "trials",
};
/// `calibrate --ci-target`: adaptive repeats' target, ± percent of the median for its 95 %
/// confidence interval (0 turns adaptive repeats off).
pub const CI_TARGET_PCT: Limit<f64> = Limit {
    min: 0.0,
    max: 100.0,
    unit: "percent",
};
/// `calibrate --max-duration` and a plan's `max_duration_s`: the run's wall-time cap (up to a
/// week).
pub const MAX_DURATION_S: Limit<f64> = Limit {
    min: 1.0,
    // Exact: every u32 is an f64.
    max: pb::MAX_DURATION_S as f64,
    unit: "seconds",
};
/// `calibrate --warmup`: warm-up calls per figure (the coordinator's plan limit too).
pub const WARMUP: Limit<u32> = Limit {
    min: 0,
    max: pb::MAX_WARMUP,
    unit: "calls",
};
/// `--threads` of `calibrate` and `run`, and the config key `threads`: engine threads.
pub const THREADS: Limit<usize> = Limit {
    min: 1,
    max: 4096,
    unit: "threads",
};
/// One `calibrate --sizes` entry: a vector length or matrix order. BLAS takes a 32-bit
/// dimension, so nothing larger can run.
pub const BLAS_SIZE: Limit<u64> = Limit {
    min: 1,
    max: 2_147_483_647,
    unit: "elements",
};
/// One `calibrate --stream-mib` entry: MiB per STREAM array (up to 1 TiB).
pub const STREAM_MIB: Limit<f64> = Limit {
    min: 0.001,
    max: 1_048_576.0,
    unit: "MiB",
};
/// `run --max-backoff`, and the config keys `link.backoff_max_s` and `link.backoff_initial_s`:
/// reconnect delays, seconds. The floor keeps a misconfigured agent from hammering its
/// coordinator.
pub const BACKOFF_S: Limit<f64> = Limit {
    min: 0.05,
    max: 3600.0,
    unit: "seconds",
};
/// The config key `link.keepalive_s`: HTTP/2 keepalive ping interval, seconds.
pub const KEEPALIVE_S: Limit<f64> = Limit {
    min: 1.0,
    max: 3600.0,
    unit: "seconds",
};
/// The config key `link.rpc_timeout_s`: the time limit of each unary call, seconds.
pub const RPC_TIMEOUT_S: Limit<f64> = Limit {
    min: 0.1,
    max: 3600.0,
    unit: "seconds",
};

/// What a [`Limit`] can hold: a number that parses, compares and prints.
pub trait Number: Copy + PartialOrd + Debug + Display + FromStr + Send + Sync + 'static {}
impl<T: Copy + PartialOrd + Debug + Display + FromStr + Send + Sync + 'static> Number for T {}

impl<T: Number> Limit<T> {
    /// The range as messages write it: `0.05..=3600 seconds`.
    pub fn describe(&self) -> String {
        format!("{}..={} {}", self.min, self.max, self.unit)
    }

    /// `v` if it is in range (NaN never is), else an error naming `name`.
    pub fn check(&self, name: &str, v: T) -> Result<T, AgentError> {
        if v >= self.min && v <= self.max {
            Ok(v)
        } else {
            // Debug, not Display: a float prints as 1e300, not as 301 digits.
            Err(self.error(name, &format!("{v:?} is out of range")))
        }
    }

    /// Parses `text` (surrounding whitespace ignored) and checks it.
    pub fn parse(&self, name: &str, text: &str) -> Result<T, AgentError> {
        match text.trim().parse::<T>() {
            Ok(v) if v >= self.min && v <= self.max => Ok(v),
            Ok(_) => Err(self.error(name, &format!("'{}' is out of range", bounded(text)))),
            Err(_) => Err(self.error(name, &format!("'{}' is not a number", bounded(text)))),
        }
    }

    /// Checks an optional value.
    pub fn check_opt(&self, name: &str, v: Option<T>) -> Result<Option<T>, AgentError> {
        v.map(|v| self.check(name, v)).transpose()
    }

    fn error(&self, name: &str, what: &str) -> AgentError {
        AgentError::Usage(format!("{name}: {what} (accepted: {})", self.describe()))
    }
}

impl Limit<f64> {
    /// A number of seconds, checked, as a [`Duration`].
    pub fn duration(&self, name: &str, seconds: f64) -> Result<Duration, AgentError> {
        let s = self.check(name, seconds)?;
        Duration::try_from_secs_f64(s).map_err(|_| self.error(name, &format!("{s:?} seconds")))
    }
}

/// Comma-separated values of a list flag (`--sizes 16,32`), each checked against `limit`.
pub fn parse_list<T: Number>(
    limit: &Limit<T>,
    name: &str,
    text: &str,
) -> Result<Vec<T>, AgentError> {
    text.split(',').map(|s| limit.parse(name, s)).collect()
}

/// The flag a clap value belongs to, as messages name it: `--max-backoff` (and its
/// environment variable, which may be where the value came from).
fn flag_name(arg: Option<&clap::Arg>) -> String {
    let Some(arg) = arg else {
        return "value".into();
    };
    let flag = arg
        .get_long()
        .map_or_else(|| arg.get_id().to_string(), |l| format!("--{l}"));
    match arg.get_env() {
        Some(env) => format!("{flag} ({})", env.to_string_lossy()),
        None => flag,
    }
}

impl<T: Number> clap::builder::TypedValueParser for Limit<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        self.parse(&flag_name(arg), &value.to_string_lossy())
            .map_err(|e| {
                clap::Error::raw(clap::error::ErrorKind::ValueValidation, format!("{e}\n"))
                    .with_cmd(cmd)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_in_range_pass_and_the_rest_are_named_with_the_range() {
        assert_eq!(BACKOFF_S.check("--max-backoff", 0.05).unwrap(), 0.05);
        assert_eq!(BACKOFF_S.check("--max-backoff", 3600.0).unwrap(), 3600.0);
        for bad in [
            1e-9,
            0.0,
            -1.0,
            1e20,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            let e = BACKOFF_S.check("--max-backoff", bad).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            let e = e.to_string();
            assert!(
                e.starts_with("--max-backoff: ") && e.contains("(accepted: 0.05..=3600 seconds)"),
                "{e}"
            );
        }
        let e = TIMEOUT_S.check("timeout_s", 1e300).unwrap_err().to_string();
        assert!(e.contains("1e300") && e.len() < 100, "{e}");
        assert_eq!(TRIALS.check("--trials", 1000).unwrap(), 1000);
        let e = TRIALS.check("--trials", 0).unwrap_err().to_string();
        assert_eq!(e, "--trials: 0 is out of range (accepted: 1..=1000 trials)");
    }

    #[test]
    fn parsing_names_the_text_as_a_bounded_prefix() {
        assert_eq!(TIMEOUT_S.parse("--timeout", " 2.5 ").unwrap(), 2.5);
        let e = TIMEOUT_S
            .parse("--timeout", "soon")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "--timeout: 'soon' is not a number (accepted: 0.01..=3600 seconds)"
        );
        let huge = "9".repeat(100_000);
        let e = BLAS_SIZE.parse("--sizes", &huge).unwrap_err().to_string();
        assert!(e.len() < 200 && e.contains('…'), "{e}");
        assert_eq!(
            parse_list(&BLAS_SIZE, "--sizes", "16, 32").unwrap(),
            vec![16, 32]
        );
        let e = parse_list(&BLAS_SIZE, "--sizes", "16,18446744073709551615")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'18446744073709551615' is out of range") && e.contains("2147483647"),
            "{e}"
        );
        assert!(parse_list(&STREAM_MIB, "--stream-mib", "1,,2").is_err());
    }

    #[test]
    fn seconds_become_durations_only_when_in_range() {
        assert_eq!(
            KEEPALIVE_S.duration("link.keepalive_s", 20.0).unwrap(),
            Duration::from_secs(20)
        );
        for bad in [1e308, f64::MAX, f64::NAN, -0.0, 1e-300] {
            assert!(RPC_TIMEOUT_S.duration("link.rpc_timeout_s", bad).is_err());
        }
    }

    #[test]
    fn as_a_clap_parser_it_names_the_flag_and_its_environment_variable() {
        use clap::Parser;
        #[derive(Debug, clap::Parser)]
        struct T {
            #[arg(long, env = "FLEETCAL_TEST_LIMITS_BACKOFF", value_parser = BACKOFF_S)]
            backoff: Option<f64>,
            #[arg(long, value_parser = TRIALS)]
            trials: Option<u32>,
        }
        let t = T::try_parse_from(["t", "--backoff", "2", "--trials", "7"]).unwrap();
        assert_eq!((t.backoff, t.trials), (Some(2.0), Some(7)));
        let e = T::try_parse_from(["t", "--backoff", "1e-9"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let e = e.to_string();
        assert!(
            e.contains("--backoff (FLEETCAL_TEST_LIMITS_BACKOFF): '1e-9' is out of range")
                && e.contains("0.05..=3600 seconds"),
            "{e}"
        );
        let e = T::try_parse_from(["t", "--trials=-1"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--trials: '-1' is not a number"), "{e}");
    }
}
