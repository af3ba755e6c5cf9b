//! Drives the shared runner on the numpy engine (or, with `--framework pytorch` in a build with
//! feature `torch`, the pytorch engine on the CPU) directly and prints the records as JSON: the
//! engine side of `scripts/bench-fidelity` and `scripts/bench-fidelity-torch`, and a
//! quick-sweep timing harness.
//!
//! ```text
//! cargo run --release -p fleetcal-agent --example fidelity -- \
//!     --operations gemm --precisions fp32 --sizes 1024,2048 --trials 10 --warmup 3
//! cargo run --release -p fleetcal-agent --example fidelity -- --quick --preset ryzen-9-9950x
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use clap::Parser;
use fleetcal_agent::bench::{runner, summary, BenchPlan, Engine, NullObserver, SizeSweep};
use fleetcal_agent::engines::numpy::NumpyEngine;
use fleetcal_proto::{parse_operations, Framework, Precision};

/// Command line of the example.
#[derive(Debug, Parser)]
struct Args {
    /// Operations (`--operations` vocabulary).
    #[arg(long, default_value = "blas,stream")]
    operations: String,
    /// BLAS precisions; default: the preset's peak entries, or fp64,fp32.
    #[arg(long)]
    precisions: Option<String>,
    /// BLAS sizes for every BLAS operation.
    #[arg(long)]
    sizes: Option<String>,
    /// STREAM MiB per array.
    #[arg(long)]
    stream_mib: Option<String>,
    /// Timed trials.
    #[arg(long)]
    trials: Option<u32>,
    /// Warm-up runs.
    #[arg(long, default_value_t = 3)]
    warmup: u32,
    /// OpenBLAS threads (numpy), libtorch intra-op threads (pytorch).
    #[arg(long)]
    threads: Option<usize>,
    /// The engine: numpy, or pytorch (CPU; needs feature `torch`).
    #[arg(long, default_value = "numpy")]
    framework: Framework,
    /// The origin's quick sweep and 5 trials.
    #[arg(long)]
    quick: bool,
    /// A built-in preset whose peaks and bandwidth the efficiencies use.
    #[arg(long)]
    preset: Option<String>,
    /// Last-level cache bytes for the STREAM marks.
    #[arg(long)]
    llc_bytes: Option<u64>,
}

fn list<T: std::str::FromStr>(text: &str) -> Vec<T>
where
    T::Err: std::fmt::Display,
{
    text.split(',')
        .map(|s| {
            s.trim()
                .parse()
                .unwrap_or_else(|e| panic!("bad list item '{s}': {e}"))
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let preset = match &args.preset {
        Some(id) => Some(fleetcal_agent::presets::find(None, id)?),
        None => None,
    };
    let peaks = preset.as_ref().map(|p| p.peaks.clone()).unwrap_or_default();
    let precisions = match &args.precisions {
        Some(p) => list::<Precision>(p),
        None if !peaks.is_empty() => peaks.keys().copied().collect(),
        None => vec![Precision::Fp64, Precision::Fp32],
    };
    let mut sizes = if args.quick {
        SizeSweep::quick()
    } else {
        SizeSweep::full()
    };
    if let Some(s) = &args.sizes {
        sizes.blas1 = list(s);
        sizes.blas23 = list(s);
    }
    if let Some(s) = &args.stream_mib {
        sizes.stream_mib = list(s);
    }
    let trials = args.trials.unwrap_or(if args.quick { 5 } else { 10 });
    let plan = BenchPlan {
        operations: parse_operations(&args.operations)?,
        precisions,
        stream_precision: Precision::Fp32,
        sizes,
        warmup_runs: args.warmup,
        // A fixed count, as the NumPy/PyTorch scripts it is compared with time.
        measurement_runs: trials,
        max_trials: trials,
        ci_target: None,
        max_duration: None,
        deadline: None,
        min_gflops: 1.0,
        timeout: Duration::from_secs(5),
        noisy_cv: 0.05,
        above_theoretical: 1.10,
        peaks: peaks.clone(),
        bandwidth_gbps: preset.as_ref().and_then(|p| p.bandwidth_gbps),
        llc_bytes: args.llc_bytes,
    };
    let mut engine: Box<dyn Engine> = match args.framework {
        Framework::Numpy => Box::new(NumpyEngine::new(args.threads)),
        #[cfg(feature = "torch")]
        Framework::Pytorch => Box::new(fleetcal_agent::engines::torch::TorchEngine::new(
            fleetcal_proto::DeviceKind::Cpu,
            args.threads,
        )?),
        #[cfg(not(feature = "torch"))]
        Framework::Pytorch => return Err("pytorch needs a build with feature `torch`".into()),
    };
    let t0 = Instant::now();
    let records = runner::run(engine.as_mut(), &plan, &mut NullObserver);
    let wall_s = t0.elapsed().as_secs_f64();
    let mut out = BTreeMap::new();
    out.insert("engine", serde_json::to_value(engine.info())?);
    out.insert("wall_s", serde_json::to_value(wall_s)?);
    if let Some(p) = &preset {
        out.insert(
            "summary",
            serde_json::to_value(summary::summarize(&records, p, false))?,
        );
    }
    out.insert("records", serde_json::to_value(&records)?);
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
