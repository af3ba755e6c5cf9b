//! A coordinator [`Plan`] as a [`CalibrationRequest`].
//!
//! The plan says what to measure; the agent's own settings say how this board runs it
//! (presets dir, threads, platform-check skip). The run id passes through, so the result's
//! `metadata.run_id` is the plan's. A daemon never accepts a device fallback: a cuda plan on
//! a board without usable CUDA fails instead of measuring the CPU.
//!
//! A plan means what the same flags mean to `calibrate`: its `quick`, `warmup`, `trials`,
//! `min_gflops` and size overrides become the request's fields as `--quick`, `--warmup`,
//! `--trials`, `--min-gflops`, `--sizes` and `--stream-mib` do, and what it leaves unset (absent
//! or 0) gets the mode's defaults in one place ([`crate::bench::ModeDefaults`]): quick mode has
//! the same sizes, trials and 2 s per-size timeout from a campaign as from the command line.
//! The plan's `max_duration_s` is `--max-duration`: the agent stops starting figures at it and
//! uploads what it measured. The plan's `timeout_s` is the wall-clock limit of the whole run, not the per-size timeout
//! (`calibrate --timeout`, which a plan does not carry), so it is not passed on to the
//! request: the coordinator marks the run timed_out after it, and the worker cancels the run
//! ([`super::worker::time_limit`]).

use std::path::PathBuf;

use fleetcal_proto::pb::{self, Plan};
use fleetcal_proto::{DeviceKind, Framework, Operation, Precision};

use crate::calibrate::CalibrationRequest;
use crate::select::FallbackPolicy;

/// The agent-side settings every run uses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LocalSettings {
    /// The preset used when the plan names none.
    pub preset: Option<String>,
    /// A directory of preset files; `None` uses the built-in presets.
    pub presets_dir: Option<PathBuf>,
    /// Engine worker threads.
    pub threads: Option<usize>,
    /// Skip the platform check.
    pub skip_platform_check: bool,
}

/// Builds the request, or says which plan field is unusable.
pub fn to_request(plan: &Plan, local: &LocalSettings) -> Result<CalibrationRequest, String> {
    let defaults = CalibrationRequest::default();
    let field = |name: &str, e: fleetcal_proto::ContractError| format!("plan field '{name}': {e}");
    let framework = match plan.framework.trim() {
        "" => None,
        f => Some(f.parse::<Framework>().map_err(|e| field("framework", e))?),
    };
    if !plan.device.trim().is_empty() {
        let device: DeviceKind = plan.device.parse().map_err(|e| field("device", e))?;
        // The framework rules again at `calibrate` against the preset this agent resolves;
        // here a plan that contradicts itself fails before it is reported running.
        if let Some(framework) = framework {
            fleetcal_proto::framework::check_device(framework, device)
                .map_err(|e| format!("plan fields 'framework' and 'device': {e}"))?;
        }
    }
    let operations = if plan.operations.is_empty() {
        defaults.operations.clone()
    } else {
        plan.operations
            .iter()
            .map(|o| o.parse::<Operation>().map_err(|e| field("operations", e)))
            .collect::<Result<Vec<_>, _>>()?
    };
    let precisions = (!plan.precisions.is_empty())
        .then(|| {
            plan.precisions
                .iter()
                .map(|p| p.parse::<Precision>().map_err(|e| field("precisions", e)))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    if let Some(w) = plan.warmup.filter(|&w| w > pb::MAX_WARMUP) {
        return Err(format!(
            "plan field 'warmup': {w} must be 0..={}",
            pb::MAX_WARMUP
        ));
    }
    if plan.max_duration_s > 0 {
        crate::limits::MAX_DURATION_S
            .check(
                "plan field 'max_duration_s'",
                f64::from(plan.max_duration_s),
            )
            .map_err(|e| e.to_string())?;
    }
    if plan.trials > pb::MAX_TRIALS {
        return Err(format!(
            "plan field 'trials': {} must be 1..={} (0 = the default)",
            plan.trials,
            pb::MAX_TRIALS
        ));
    }
    let preset = match plan.preset_id.trim() {
        "" => local.preset.clone().unwrap_or_else(|| "auto".into()),
        id => id.to_string(),
    };
    Ok(CalibrationRequest {
        preset,
        presets_dir: local.presets_dir.clone(),
        framework,
        quick: plan.quick,
        operations,
        precisions,
        blas_sizes: (!plan.blas_sizes.is_empty()).then(|| plan.blas_sizes.clone()),
        stream_mib: (!plan.stream_mib.is_empty())
            .then(|| plan.stream_mib.iter().map(|&m| m as f64).collect()),
        min_gflops: (plan.min_gflops > 0.0).then_some(plan.min_gflops),
        warmup_runs: plan.warmup,
        measurement_runs: (plan.trials > 0).then_some(plan.trials),
        max_duration_s: (plan.max_duration_s > 0).then(|| f64::from(plan.max_duration_s)),
        threads: local.threads,
        skip_platform_check: local.skip_platform_check,
        fallback: FallbackPolicy::Refuse,
        run_id: Some(plan.run_id.clone()),
        ..defaults
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            run_id: "r-1".into(),
            preset_id: "i7-12700k".into(),
            framework: "numpy".into(),
            device: "cpu".into(),
            quick: true,
            operations: vec!["gemm".into(), "stream_triad".into()],
            precisions: vec!["fp32".into()],
            blas_sizes: vec![16, 32],
            stream_mib: vec![1],
            ..Plan::default()
        }
    }

    #[test]
    fn fields_map_and_the_run_id_passes_through() {
        let local = LocalSettings {
            threads: Some(1),
            skip_platform_check: true,
            ..LocalSettings::default()
        };
        let r = to_request(&plan(), &local).unwrap();
        assert_eq!(r.run_id.as_deref(), Some("r-1"));
        assert_eq!(r.preset, "i7-12700k");
        assert_eq!(r.framework, Some(Framework::Numpy));
        assert_eq!(r.operations, [Operation::Gemm, Operation::StreamTriad]);
        assert_eq!(r.precisions, Some(vec![Precision::Fp32]));
        assert_eq!(r.blas_sizes, Some(vec![16, 32]));
        assert_eq!(r.stream_mib, Some(vec![1.0]));
        assert_eq!(r.threads, Some(1));
        assert!(r.skip_platform_check && r.quick);
        assert_eq!(r.fallback, FallbackPolicy::Refuse);
        assert_eq!((r.min_gflops, r.timeout_s), (None, None));
        assert_eq!((r.warmup_runs, r.measurement_runs), (None, None));
        assert_eq!(r.max_duration_s, None);
        let capped = to_request(
            &Plan {
                max_duration_s: 90,
                ..plan()
            },
            &local,
        )
        .unwrap();
        assert_eq!(capped.max_duration_s, Some(90.0));
        let bench = crate::calibrate::build_plan(&capped, &preset(), None).unwrap();
        assert_eq!(bench.max_duration, Some(std::time::Duration::from_secs(90)));
        let e = to_request(
            &Plan {
                max_duration_s: 700_000,
                ..plan()
            },
            &local,
        )
        .unwrap_err();
        assert!(e.contains("max_duration_s") && e.contains("700000"), "{e}");
    }

    #[test]
    fn warmups_and_trials_reach_the_bench_plan_as_calibrate_sets_them() {
        let r = to_request(
            &Plan {
                warmup: Some(0),
                trials: 20,
                ..plan()
            },
            &LocalSettings::default(),
        )
        .unwrap();
        assert_eq!((r.warmup_runs, r.measurement_runs), (Some(0), Some(20)));
        let bench = crate::calibrate::build_plan(&r, &preset(), None).unwrap();
        assert_eq!((bench.warmup_runs, bench.measurement_runs), (0, 20));
        // Absent and 0: the engine's defaults, 3 warm-ups and 6 to 20 trials in quick mode
        // (6 to 40 not).
        let r = to_request(&plan(), &LocalSettings::default()).unwrap();
        let bench = crate::calibrate::build_plan(&r, &preset(), None).unwrap();
        assert_eq!(
            (bench.warmup_runs, bench.measurement_runs, bench.max_trials),
            (3, 6, 20)
        );
        let r = to_request(
            &Plan {
                quick: false,
                ..plan()
            },
            &LocalSettings::default(),
        )
        .unwrap();
        let bench = crate::calibrate::build_plan(&r, &preset(), None).unwrap();
        assert_eq!((bench.measurement_runs, bench.max_trials), (6, 40));
    }

    fn preset() -> fleetcal_proto::Preset {
        crate::presets::find(None, "i7-12700k").unwrap()
    }

    #[test]
    fn empty_fields_mean_defaults() {
        let p = Plan {
            run_id: "r".into(),
            ..Plan::default()
        };
        let local = LocalSettings {
            preset: Some("mine".into()),
            ..LocalSettings::default()
        };
        let r = to_request(&p, &local).unwrap();
        assert_eq!(r.preset, "mine");
        assert_eq!(r.framework, None);
        assert_eq!(r.operations, CalibrationRequest::default().operations);
        assert_eq!(
            (r.precisions, r.blas_sizes, r.stream_mib),
            (None, None, None)
        );
        assert_eq!(
            to_request(&p, &LocalSettings::default()).unwrap().preset,
            "auto"
        );
    }

    #[test]
    fn bad_fields_are_named() {
        let e = to_request(
            &Plan {
                operations: vec!["fft".into()],
                ..plan()
            },
            &LocalSettings::default(),
        )
        .unwrap_err();
        assert!(e.contains("'operations'") && e.contains("fft"), "{e}");
        let e = to_request(
            &Plan {
                device: "cuda".into(),
                ..plan()
            },
            &LocalSettings::default(),
        )
        .unwrap_err();
        assert!(
            e.starts_with("plan fields 'framework' and 'device': framework 'numpy' cannot run on a cuda device"),
            "{e}"
        );
        let e = to_request(
            &Plan {
                trials: 1001,
                ..plan()
            },
            &LocalSettings::default(),
        )
        .unwrap_err();
        assert!(e.contains("'trials'") && e.contains("1001"), "{e}");
        let e = to_request(
            &Plan {
                warmup: Some(101),
                ..plan()
            },
            &LocalSettings::default(),
        )
        .unwrap_err();
        assert!(e.contains("'warmup'") && e.contains("101"), "{e}");
    }
}
