//! Running the real binary.

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The agent binary built by cargo for this test run.
pub const AGENT: &str = env!("CARGO_BIN_EXE_fleetcal-agent");

/// The flags that make a calibration tiny: small sizes, one warm-up, two trials.
pub const TINY: &[&str] = &[
    "--sizes",
    "16,32",
    "--stream-mib",
    "1",
    "--warmup",
    "1",
    "--trials",
    "2",
    "--precisions",
    "fp64,fp32,bf16,int8",
];

/// Runs the agent in `dir` with stdin closed (not a terminal) and returns its output.
pub fn agent(dir: &Path, args: &[&str]) -> Output {
    Command::new(AGENT)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .env_remove("FLEETCAL_PRESETS")
        .output()
        .expect("run fleetcal-agent")
}

/// stdout and stderr as text, for assertion messages.
pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The JSON files in a directory.
pub fn json_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    v.sort();
    v
}

/// Validates a document against a committed JSON Schema text.
pub fn assert_valid(schema: &str, doc: &serde_json::Value) {
    let schema: serde_json::Value = serde_json::from_str(schema).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "schema errors: {errors:#?}");
}
