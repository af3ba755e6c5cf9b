//! A real calibration on tiny sizes, both formats, and `--load`.

use fleetcal_proto::origin::OriginProfile;
use fleetcal_proto::result::Status;
use fleetcal_proto::schema::{ORIGIN_SCHEMA, RESULT_SCHEMA};
use fleetcal_proto::{CalibrationResult, Framework, Operation, Precision};

use crate::support::{agent, assert_valid, json_files, text, TINY};

#[test]
fn auto_numpy_calibration_writes_a_valid_result_and_loads_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["calibrate", "--preset", "auto", "--quick"];
    args.extend_from_slice(TINY);
    let out = agent(dir.path(), &args);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("EXECUTION DEVICE"), "{stdout}");
    assert!(stdout.contains("Framework:  NUMPY"), "{stdout}");
    assert!(stdout.contains("SUMMARY"), "{stdout}");
    assert!(stdout.contains("Noise floor: "), "{stdout}");

    let files = json_files(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.ends_with("_numpy.json"), "{name}");
    let textual = std::fs::read_to_string(&files[0]).unwrap();
    assert_valid(RESULT_SCHEMA, &serde_json::from_str(&textual).unwrap());
    let result = CalibrationResult::from_json(&textual, &name).unwrap();
    let md = &result.metadata;
    assert_eq!(md.framework, Framework::Numpy);
    assert!(md.fallback.is_none());
    assert!(
        md.preset.derivation.is_some(),
        "auto preset records its derivation"
    );
    assert!(md.engine.blas.is_some(), "numpy engine records its BLAS");
    assert_eq!(md.settings.warmup_runs, 1);
    assert_eq!(md.settings.measurement_runs, 2);
    assert_eq!(result.summary.noise_probes.len(), 2, "the A/A probe ran");
    assert!(result.summary.noise_floor_pct.is_some());
    let env = md.environment.as_ref().expect("an environment section");
    assert_eq!(env.version, 1);
    assert_eq!(env.software.engine, "numpy");
    assert_eq!(
        env.software.blas_library.known().map(String::as_str),
        Some("OpenBLAS")
    );
    assert!(env.host.allowed_cpu_count.known().is_some_and(|&n| n >= 1));

    // Every operation ran at the requested sizes; bf16 is not a NumPy dtype.
    for op in Operation::ALL {
        assert!(
            result.records.iter().any(|r| r.operation == op),
            "{op} missing"
        );
    }
    let gemm_fp32 = result
        .records
        .iter()
        .find(|r| r.operation == Operation::Gemm && r.precision == Precision::Fp32 && r.size == 32)
        .expect("gemm fp32 32");
    assert_eq!(gemm_fp32.status, Status::Measured);
    assert_eq!(gemm_fp32.flops, 2.0 * 32.0 * 32.0 * 32.0);
    assert_eq!(gemm_fp32.bytes, 3.0 * 32.0 * 32.0 * 4.0);
    let lat = gemm_fp32.latency_ms.unwrap();
    assert!(lat.best > 0.0 && lat.best <= lat.median && lat.median <= lat.max);
    // Raw samples: one per trial; adaptive repeats take at least 6 (the fewest with an
    // interval) and at most 20 in quick mode, from the asked minimum of 2.
    let sampling = gemm_fp32.sampling.as_ref().expect("raw samples");
    assert_eq!(sampling.samples_ns.len(), gemm_fp32.trials as usize);
    assert!((6..=20).contains(&gemm_fp32.trials), "{}", gemm_fp32.trials);
    assert_eq!(sampling.ci_target_pct, Some(3.0));
    assert_eq!(md.settings.max_trials, Some(20));
    // Telemetry: a clock reading at least (cpufreq, or the clock loop without it), and what
    // could not be read is listed, not taken as fine.
    let t = gemm_fp32.telemetry.as_ref().expect("telemetry");
    assert!(t.readings >= 2);
    assert!(t.cpu_mhz.is_some(), "{t:?}");
    assert!(t.temperature_c.is_some() || t.missing.iter().any(|m| m.starts_with("temperature: ")));
    assert!(t.throttled.is_some() || t.missing.iter().any(|m| m.starts_with("throttling: ")));
    let bf16 = result
        .records
        .iter()
        .find(|r| r.precision == Precision::Bf16)
        .expect("bf16 record");
    assert_eq!(bf16.status, Status::Unsupported);
    assert!(result
        .summary
        .unsupported_precisions
        .contains(&Precision::Bf16));
    let triad = result
        .records
        .iter()
        .find(|r| r.operation == Operation::StreamTriad)
        .unwrap();
    assert_eq!(triad.bytes, 3.0 * 1024.0 * 1024.0, "3 arrays of 1 MiB");

    let load = agent(dir.path(), &["calibrate", "--load", &name]);
    let (stdout, stderr) = text(&load);
    assert!(load.status.success(), "{stderr}");
    assert!(
        stdout.contains("SUMMARY") && stdout.contains("gemm"),
        "{stdout}"
    );
}

#[test]
fn origin_format_has_the_origin_keys_and_loads_back() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("profile.json");
    let mut args = vec![
        "calibrate",
        "--preset",
        "auto",
        "--format",
        "origin",
        "--operations",
        "blas3,stream_copy",
        "--output",
        out_file.to_str().unwrap(),
    ];
    args.extend_from_slice(TINY);
    let out = agent(dir.path(), &args);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let textual = std::fs::read_to_string(&out_file).unwrap();
    let value: serde_json::Value = serde_json::from_str(&textual).unwrap();
    assert_valid(ORIGIN_SCHEMA, &value);
    let profile = OriginProfile::from_json(&textual, "profile.json").unwrap();
    assert_eq!(profile.metadata.framework, "numpy");
    assert_eq!(profile.metadata.num_warmup_runs, 1);
    let keys: Vec<&String> = profile.operation_profiles.keys().collect();
    assert!(
        keys.iter().any(|k| k.as_str()
            == "stream_copy_flops_per_element=0_framework=numpy_kernel=copy_num_arrays=2_num_memory_ops=2_size_mb=1"),
        "{keys:?}"
    );
    assert!(
        keys.iter()
            .any(|k| k.starts_with("blas3_gemm_best_precision=")
                && k.ends_with("_blas_level=3_framework=numpy_operation=gemm_size=32")),
        "{keys:?}"
    );
    assert!(
        !keys.iter().any(|k| k.starts_with("blas1")),
        "only listed operations run"
    );
    let gemm = profile
        .operation_profiles
        .values()
        .find(|r| r.operation_type == "blas3_gemm")
        .unwrap();
    let fp32 = &gemm.precision_results["fp32"];
    assert!(fp32.supported);
    assert!(fp32.max_latency_ms.unwrap() >= fp32.mean_latency_ms.unwrap());
    assert!(!gemm.precision_results["bf16"].supported);
    assert!(profile.fusion_profiles.is_empty());
    for key in [
        "theoretical_peak_gflops",
        "best_measured_gflops",
        "precision_matrix",
        "fusion_profiles",
    ] {
        assert!(value.get(key).is_some(), "{key}");
    }

    let load = agent(dir.path(), &["calibrate", "--load", "profile.json"]);
    let (stdout, stderr) = text(&load);
    assert!(load.status.success(), "{stderr}");
    assert!(stdout.contains("origin format"), "{stdout}");
}

#[test]
fn presets_lists_the_origin_presets() {
    let dir = tempfile::tempdir().unwrap();
    let out = agent(dir.path(), &["presets"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    for id in [
        "i7-12700k",
        "h100-sxm5",
        "jetson-orin-agx",
        "jetson-orin-nano",
        "ampere-altra-max",
        "jetson-orin-agx-cpu",
        "jetson-orin-agx-gpu",
        "jetson-orin-nano-cpu",
        "jetson-orin-nano-gpu",
        "auto",
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(&format!("{id} "))),
            "{id} missing:\n{stdout}"
        );
    }
}

#[test]
fn load_of_a_result_missing_its_rates_is_an_error_or_a_summary_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![
        "calibrate",
        "--operations",
        "gemm,stream_copy",
        "--output",
        "r.json",
    ];
    args.extend_from_slice(TINY);
    let out = agent(dir.path(), &args);
    assert!(out.status.success(), "{:?}", text(&out));
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("r.json")).unwrap()).unwrap();
    let mut stripped = 0;
    for r in doc["records"].as_array_mut().unwrap() {
        if r["status"] == "measured" {
            let r = r.as_object_mut().unwrap();
            stripped += usize::from(r.remove("gops").is_some());
            r.remove("bandwidth_gbps");
        }
    }
    assert!(stripped > 0, "measured BLAS records had rates to strip");
    std::fs::write(dir.path().join("bad.json"), doc.to_string()).unwrap();
    let load = agent(dir.path(), &["calibrate", "--load", "bad.json"]);
    let (stdout, stderr) = text(&load);
    assert!(!stderr.contains("panicked"), "{stderr}");
    match load.status.code() {
        // Read as it is: the missing figures are shown as n/a.
        Some(0) => assert!(stdout.contains("n/a"), "{stdout}"),
        // Refused by the result's validation, naming the file.
        Some(2) => assert!(stderr.contains("bad.json"), "{stderr}"),
        other => panic!("exit {other:?}\n{stdout}\n{stderr}"),
    }
}

#[test]
fn output_dash_puts_only_the_result_on_stdout_and_the_console_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["calibrate", "--operations", "gemm", "--output", "-"];
    args.extend_from_slice(TINY);
    let out = agent(dir.path(), &args);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let result = CalibrationResult::from_json(&stdout, "stdout").expect("stdout is the result");
    assert!(!result.records.is_empty());
    assert!(
        stderr.contains("EXECUTION DEVICE") && stderr.contains("SUMMARY"),
        "{stderr}"
    );
    assert!(stderr.contains("Calibration written to stdout"), "{stderr}");
    assert!(json_files(dir.path()).is_empty(), "no file besides stdout");
}

#[test]
fn output_never_replaces_what_is_not_a_regular_file() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let mut tiny = vec!["calibrate", "--operations", "gemm"];
    tiny.extend_from_slice(TINY);
    let run = |output: &std::path::Path| {
        let mut args = tiny.clone();
        args.extend(["--output", output.to_str().unwrap()]);
        agent(dir.path(), &args)
    };

    // A character device is written in place (our own null device where root may make one).
    let null = dir.path().join("null");
    let made = std::process::Command::new("mknod")
        .arg(&null)
        .args(["c", "1", "3"])
        .status()
        .is_ok_and(|s| s.success());
    let null = if made {
        null
    } else {
        std::path::PathBuf::from("/dev/null")
    };
    let out = run(&null);
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(std::fs::metadata(&null)
        .unwrap()
        .file_type()
        .is_char_device());

    // A symlink stays a link; its target gets the result.
    let target = dir.path().join("target.json");
    std::fs::write(&target, "old").unwrap();
    let link = dir.path().join("latest.json");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let out = run(&link);
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    CalibrationResult::from_json(&std::fs::read_to_string(&target).unwrap(), "target").unwrap();

    // A socket is refused before anything runs, and left alone.
    let sock = dir.path().join("s.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let out = run(&sock);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(stderr.contains("s.sock: is a socket"), "{stderr}");
    assert!(
        !stdout.contains("EXECUTION DEVICE"),
        "refused before running: {stdout}"
    );
    assert!(std::fs::symlink_metadata(&sock)
        .unwrap()
        .file_type()
        .is_socket());
}

#[test]
fn host_root_detects_the_board_under_it() {
    // A Jetson Orin Nano's /proc, /sys and /etc (the fixture tree the environment readers
    // are tested on): `--preset auto` derives its peaks from that board, not this one.
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/src/detect/fixtures/env/orin");
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("orin.json");
    let out = agent(
        dir.path(),
        &[
            "--host-root",
            fixture,
            "calibrate",
            "--preset",
            "auto",
            "--operations",
            "gemm",
            "--precisions",
            "fp32,fp64",
            "--sizes",
            "16",
            "--trials",
            "2",
            "--warmup",
            "0",
            "--no-telemetry",
            "--output",
            out_file.to_str().unwrap(),
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
    let m = &doc["metadata"];
    assert_eq!(m["host"]["cpu_model"], "Cortex-A78AE");
    assert_eq!(m["host"]["jetson"], "NVIDIA Jetson Orin Nano Developer Kit");
    assert_eq!(m["environment"]["host"]["microarch"]["known"], "Cortex-A78");
    assert_eq!(m["preset"]["derivation"]["inputs"]["clock_ghz"], "1.510");
    let fp32 = m["preset"]["peaks"]["fp32"].as_f64().unwrap();
    let fp64 = m["preset"]["peaks"]["fp64"].as_f64().unwrap();
    assert!(
        fp32 > 0.0 && (fp32 - 2.0 * fp64).abs() < 1e-9,
        "{fp32} {fp64}"
    );

    // Not a directory: refused as bad input, nothing run.
    let out = agent(dir.path(), &["--host-root", "/no/such/dir", "presets"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--host-root") && stderr.contains("not a directory"),
        "{stderr}"
    );
}
