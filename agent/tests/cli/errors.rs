//! Bad input gets a clear error naming it, a non-zero exit, and no file.

use crate::support::{agent, json_files, text, TINY};

fn refuses(args: &[&str], code: i32, needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = agent(dir.path(), args);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stderr.contains(needle), "expected '{needle}' in:\n{stderr}");
    assert!(json_files(dir.path()).is_empty(), "no file may be written");
}

#[test]
fn unknown_operation_is_named() {
    refuses(
        &["calibrate", "--operations", "blas,fft"],
        2,
        "unknown operation 'fft'",
    );
}

#[test]
fn unknown_preset_lists_the_known_ones() {
    refuses(
        &["calibrate", "--preset", "no-such-board"],
        2,
        "unknown preset 'no-such-board'",
    );
}

#[test]
fn unknown_precision_is_named() {
    refuses(&["calibrate", "--precisions", "fp32,fp8"], 2, "'fp8'");
}

#[test]
fn numpy_on_a_cuda_preset_is_an_error() {
    refuses(
        &[
            "calibrate",
            "--preset",
            "h100-sxm5",
            "--framework",
            "numpy",
            "--skip-platform-check",
        ],
        3,
        "'numpy' cannot run on a cuda device",
    );
}

#[test]
fn architecture_mismatch_needs_skip_platform_check() {
    let other = if std::env::consts::ARCH == "x86_64" {
        "jetson-orin-nano-cpu"
    } else {
        "i7-12700k"
    };
    refuses(
        &["calibrate", "--preset", other],
        3,
        "--skip-platform-check",
    );
}

#[test]
fn malformed_preset_names_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        "schema_version = 1\nid = \"bad\"\nhardware_name = \"Bad\"\ndevice = \"cpu\"\narchitecture = \"x86_64\"\nplatform = \"desktop\"\ndefault_framework = \"numpy\"\nnotes = \"\"\n[peaks]\nfp32 = \"lots\"\n",
    )
    .unwrap();
    let presets = dir.path().to_str().unwrap();
    let mut args = vec!["calibrate", "--presets", presets, "--preset", "bad"];
    args.extend_from_slice(TINY);
    refuses(&args, 2, "bad.toml");
    refuses(&["presets", "--presets", presets], 2, "fp32");
}

#[test]
fn load_of_a_corrupt_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("x.json"),
        "{\"schema_version\": 1, \"metadata\": 3}",
    )
    .unwrap();
    let out = agent(dir.path(), &["calibrate", "--load", "x.json"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("x.json"), "{stderr}");
}

#[cfg(not(feature = "torch"))]
#[test]
fn pytorch_without_the_feature_says_how_to_build() {
    refuses(
        &["calibrate", "--framework", "pytorch"],
        3,
        "--features torch",
    );
}
