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
    if !cfg!(feature = "torch") {
        refuses(
            &["calibrate", "--framework", "compare"],
            3,
            "--framework compare runs numpy and pytorch side by side, and this fleetcal-agent has no pytorch engine; rebuild with the pytorch engine",
        );
    }
}

#[test]
fn out_of_range_numbers_are_named_with_their_range_not_a_panic() {
    for (args, needle) in [
        (
            vec!["calibrate", "--timeout", "1e20"],
            "--timeout: '1e20' is out of range (accepted: 0.01..=3600 seconds)",
        ),
        (vec!["calibrate", "--timeout", "NaN"], "--timeout: 'NaN'"),
        (vec!["calibrate", "--timeout=-1"], "--timeout: '-1'"),
        (vec!["calibrate", "--timeout", "inf"], "--timeout: 'inf'"),
        (
            vec!["calibrate", "--sizes", "16,18446744073709551615"],
            "--sizes: '18446744073709551615' is out of range (accepted: 1..=2147483647",
        ),
        (
            vec!["calibrate", "--stream-mib", "1e300"],
            "--stream-mib: '1e300' is out of range",
        ),
        (
            vec!["calibrate", "--trials", "0"],
            "--trials: '0' is out of range",
        ),
        (
            vec![
                "run",
                "--coordinator",
                "http://c:1",
                "--max-backoff",
                "1e20",
            ],
            "--max-backoff (FLEETCAL_MAX_BACKOFF): '1e20' is out of range",
        ),
        (
            vec![
                "run",
                "--coordinator",
                "http://c:1",
                "--max-backoff",
                "1e-9",
            ],
            "(accepted: 0.05..=3600 seconds)",
        ),
    ] {
        refuses(&args, 2, needle);
    }
}

#[test]
fn bad_coordinator_urls_are_refused_at_start() {
    for (url, needle) in [
        (
            "http://127.0.0.1:99999",
            "port '99999' is not a number in 1..=65535",
        ),
        (
            "ftp://127.0.0.1:21",
            "the scheme must be http:// or https://",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let out = agent(
            dir.path(),
            &[
                "run",
                "--coordinator",
                url,
                "--state-dir",
                state.to_str().unwrap(),
            ],
        );
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("coordinator url '{url}'"))
                && stderr.contains(needle)
                && stderr.contains("--coordinator"),
            "{stderr}"
        );
        assert!(
            !state.exists(),
            "nothing is created before the url is checked"
        );
    }
}

#[test]
fn out_of_range_config_keys_are_named_with_the_file() {
    for (key, needle) in [
        (
            "[link]\nrpc_timeout_s = 1e308",
            "key 'link.rpc_timeout_s': 1e308 is out of range",
        ),
        (
            "[link]\nkeepalive_s = 1e308",
            "key 'link.keepalive_s': 1e308 is out of range",
        ),
        (
            "[link]\nbackoff_initial_s = 1e308",
            "key 'link.backoff_initial_s': 1e308",
        ),
        (
            "[link]\nbackoff_max_s = 1e-9",
            "(accepted: 0.05..=3600 seconds)",
        ),
        ("threads = 0", "key 'threads': 0 is out of range"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("agent.toml");
        std::fs::write(
            &config,
            format!("version = 1\ncoordinator = \"http://127.0.0.1:1\"\n{key}\n"),
        )
        .unwrap();
        let state = dir.path().join("state");
        let out = agent(
            dir.path(),
            &[
                "run",
                "--config",
                config.to_str().unwrap(),
                "--state-dir",
                state.to_str().unwrap(),
            ],
        );
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{key}: {stderr}");
        assert!(
            stderr.contains(needle) && stderr.contains("agent.toml"),
            "{key}: {stderr}"
        );
    }
}

#[test]
fn a_run_that_measures_nothing_fails_and_writes_nothing() {
    // Every figure fails (a matrix that cannot be allocated) ...
    refuses(
        &[
            "calibrate",
            "--operations",
            "gemm",
            "--precisions",
            "fp32",
            "--sizes",
            "2147483647",
            "--trials",
            "1",
            "--warmup",
            "0",
        ],
        4,
        "no figure was measured: 1 failed (first: gemm fp32 size 2147483647",
    );
    // ... or is unsupported (NumPy has no bf16).
    refuses(
        &[
            "calibrate",
            "--operations",
            "gemm",
            "--precisions",
            "bf16",
            "--sizes",
            "16",
        ],
        4,
        "no figure was measured: 1 unsupported",
    );
}
