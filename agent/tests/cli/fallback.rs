//! The device fallback is never silent: without a terminal it is refused and nothing is written.

use crate::support::{agent, json_files, text, TINY};

#[test]
fn cuda_preset_without_cuda_refuses_without_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![
        "calibrate",
        "--preset",
        "jetson-orin-nano-gpu",
        "--skip-platform-check",
    ];
    args.extend_from_slice(TINY);
    let out = agent(dir.path(), &args);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(3),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("WARNING: Device Fallback Occurred!"),
        "{stdout}"
    );
    assert!(stdout.contains("Requested device: CUDA"), "{stdout}");
    assert!(stdout.contains("CPU (fallback)"), "{stdout}");
    assert!(stderr.contains("device fallback refused"), "{stderr}");
    assert!(json_files(dir.path()).is_empty(), "nothing may be written");
}

#[test]
fn accepted_fallback_is_recorded_or_needs_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![
        "calibrate",
        "--preset",
        "jetson-orin-nano-gpu",
        "--skip-platform-check",
        "--allow-fallback",
        "--operations",
        "gemm,stream_copy",
    ];
    args.extend_from_slice(TINY);
    let out = agent(dir.path(), &args);
    let (stdout, stderr) = text(&out);
    if cfg!(feature = "torch") {
        assert!(out.status.success(), "{stdout}\n{stderr}");
        let files = json_files(dir.path());
        assert_eq!(files.len(), 1);
        assert!(files[0].to_string_lossy().ends_with("_pytorch.json"));
        let r = fleetcal_proto::CalibrationResult::from_json(
            &std::fs::read_to_string(&files[0]).unwrap(),
            "fallback",
        )
        .unwrap();
        let fb = r.metadata.fallback.expect("fallback recorded");
        assert_eq!(fb.accepted_by, "--allow-fallback");
        assert_eq!(
            r.metadata.requested_device,
            fleetcal_proto::DeviceKind::Cuda
        );
        assert_eq!(r.metadata.device_type, fleetcal_proto::DeviceKind::Cpu);
    } else {
        assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
        assert!(stderr.contains("--features torch"), "{stderr}");
        assert!(json_files(dir.path()).is_empty());
    }
}
