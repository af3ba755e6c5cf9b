//! Unit and property tests of the edge checks.

use proptest::prelude::*;

use super::*;

const ID: &str = "0b5d3e4a-9a51-4c43-8d2e-0f6f6c1d7a10";

fn caps() -> Capabilities {
    Capabilities {
        arch: "x86_64".into(),
        cpu_model: "Test CPU".into(),
        cpu_count: 8,
        memory_gb: 16.0,
        simd: vec!["avx2".into()],
        engines: vec!["numpy".into()],
        ..Capabilities::default()
    }
}

fn message(e: DomainError) -> String {
    assert!(matches!(e, DomainError::InvalidRequest(_)), "{e:?}");
    e.to_string()
}

fn register(
    hostname: &str,
    labels: &BTreeMap<String, String>,
    c: &Capabilities,
) -> Result<(), DomainError> {
    registration(ID, hostname, labels, Some("test-cpu"), c, "0.1.0")
}

#[test]
fn a_plain_registration_passes() {
    let labels = BTreeMap::from([
        ("site".into(), "lab 1".into()),
        ("k8s.io/zone".into(), "a".into()),
    ]);
    register("box-1", &labels, &caps()).unwrap();
    // Unreported numbers (0) and no preset are fine.
    registration(
        ID,
        "h",
        &BTreeMap::new(),
        None,
        &Capabilities::default(),
        "",
    )
    .unwrap();
}

#[test]
fn nan_and_infinite_memory_are_refused_naming_the_field() {
    for bad in [f64::NAN, f64::INFINITY, -1.0, 2e6] {
        let c = Capabilities {
            memory_gb: bad,
            ..caps()
        };
        let e = message(register("h", &BTreeMap::new(), &c).unwrap_err());
        assert!(e.contains("field 'capabilities.memory_gb'"), "{e}");
    }
    let e = message(
        capabilities(&Capabilities {
            memory_gb: f64::NAN,
            ..caps()
        })
        .unwrap_err(),
    );
    assert_eq!(
        e,
        "invalid request: field 'capabilities.memory_gb': NaN must be a finite number from 0 to 1e6"
    );
    let e = message(
        capabilities(&Capabilities {
            cpu_count: MAX_CPU_COUNT + 1,
            ..caps()
        })
        .unwrap_err(),
    );
    assert!(e.contains("'capabilities.cpu_count'"), "{e}");
}

#[test]
fn huge_texts_are_refused_and_quoted_bounded() {
    let big = "x".repeat(1 << 20);
    let e = message(register(&big, &BTreeMap::new(), &caps()).unwrap_err());
    assert!(
        e.contains("field 'hostname'")
            && e.contains("is 1048576 bytes, longer than 255")
            && e.len() < 300,
        "{e}"
    );
    let e = message(hostname("  ").unwrap_err());
    assert!(e.contains("must not be empty"), "{e}");
    let e = message(hostname("a\nb").unwrap_err());
    assert!(e.contains("control characters"), "{e}");
    let labels = BTreeMap::from([("site".to_string(), big.clone())]);
    let e = message(register("h", &labels, &caps()).unwrap_err());
    assert!(e.contains("field 'labels.site'") && e.len() < 300, "{e}");
    let c = Capabilities {
        cpu_model: big.clone(),
        ..caps()
    };
    let e = message(register("h", &BTreeMap::new(), &c).unwrap_err());
    assert!(
        e.contains("'capabilities.cpu_model'") && e.len() < 300,
        "{e}"
    );
    let c = Capabilities {
        simd: vec!["x".into(); MAX_LIST_LEN + 1],
        ..caps()
    };
    let e = message(capabilities(&c).unwrap_err());
    assert!(e.contains("'capabilities.simd'"), "{e}");
    let e = message(id("run_id", &big).unwrap_err());
    assert!(e.contains("field 'run_id'") && e.len() < 300, "{e}");
    id("run_id", "no-such-run").unwrap();
    let e = message(agent_id(&"a".repeat(100_000)).unwrap_err());
    assert!(e.contains("field 'agent_id'") && e.len() < 300, "{e}");
    let e = message(agent_id("not-a-uuid").unwrap_err());
    assert_eq!(
        e,
        "invalid request: field 'agent_id': 'not-a-uuid' is not a UUID"
    );
    let e = message(registration(ID, "h", &BTreeMap::new(), Some(&big), &caps(), "").unwrap_err());
    assert!(e.contains("field 'preset'") && e.len() < 300, "{e}");
}

#[test]
fn label_count_and_keys_are_bounded() {
    let many: BTreeMap<String, String> = (0..50_000)
        .map(|i| (format!("k{i}"), "v".to_string()))
        .collect();
    let e = message(labels("labels", &many).unwrap_err());
    assert_eq!(
        e,
        "invalid request: field 'labels': 50000 labels, at most 64 are allowed"
    );
    for bad in ["", "a=b", "a,b", "a b", &"k".repeat(64)] {
        let one = BTreeMap::from([(bad.to_string(), "v".to_string())]);
        let e = message(labels("labels", &one).unwrap_err());
        assert!(e.contains("key"), "{bad:?}: {e}");
    }
}

#[test]
fn schedule_names_are_bounded_and_plain() {
    for good in [
        "nightly",
        "lab-2.gpu_boards",
        "0",
        &"n".repeat(MAX_SCHEDULE_NAME_LEN),
    ] {
        assert!(schedule_name("name", good).is_ok(), "{good}");
    }
    for bad in [
        "",
        "-x",
        ".hidden",
        "a b",
        "a/b",
        "nächtlich",
        "x\ny",
        &"n".repeat(65),
    ] {
        let e = message(schedule_name("name", bad).unwrap_err());
        assert!(
            e.starts_with("invalid request: field 'name': '"),
            "{bad:?}: {e}"
        );
        assert!(e.len() < 250, "bounded: {e}");
    }
}

#[test]
fn messages_are_cut_not_refused() {
    assert_eq!(super::message("short"), "short");
    let long = "é".repeat(MAX_MESSAGE_LEN);
    let cut = super::message(&long);
    assert!(cut.len() <= MAX_MESSAGE_LEN + '…'.len_utf8() && cut.ends_with('…'));
}

fn result_at(started: &str, finished: &str) -> CalibrationResult {
    let mut r: CalibrationResult =
        serde_json::from_str(include_str!("validate_tests.json")).expect("the test result parses");
    r.metadata.started_at = started.into();
    r.metadata.finished_at = finished.into();
    r
}

#[test]
fn result_times_are_judged_by_the_coordinators_clock() {
    let now = chrono::DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
        .unwrap()
        .timestamp_millis();
    let sent = now - 3_600_000;
    let ok = result_at("2026-03-01T11:30:00+00:00", "2026-03-01T12:04:00+00:00");
    ok.validate().unwrap();
    result_times(&ok, now, Some(sent)).unwrap();
    let future = result_at("2099-01-01T00:00:00Z", "2099-01-01T00:01:00Z");
    let e = result_times(&future, now, Some(sent)).unwrap_err();
    assert!(
        e.starts_with("field 'metadata.started_at': '2099-01-01T00:00:00Z' is in the future"),
        "{e}"
    );
    let late = result_at("2026-03-01T11:30:00Z", "2026-03-01T12:11:00Z");
    let e = result_times(&late, now, Some(sent)).unwrap_err();
    assert!(e.starts_with("field 'metadata.finished_at'"), "{e}");
    let old = result_at("2020-01-01T00:00:00Z", "2020-01-01T00:01:00Z");
    let e = result_times(&old, now, Some(sent)).unwrap_err();
    assert!(
        e.contains("before the coordinator sent the run at 2026-03-01T11:00:00Z"),
        "{e}"
    );
    // Within the skew either way is fine.
    let skewed = result_at("2026-03-01T10:51:00Z", "2026-03-01T12:09:00Z");
    result_times(&skewed, now, Some(sent)).unwrap();
}

fn text_strategy() -> impl Strategy<Value = String> {
    prop_oneof![".{0,12}", "[a-z0-9]{0,300}", Just(String::new())]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_capabilities_are_judged_without_panicking(
        cpu_count in any::<u32>(),
        memory_gb in prop_oneof![any::<f64>(), Just(f64::NAN), Just(f64::INFINITY)],
        texts in prop::collection::vec(text_strategy(), 9),
        simd in prop::collection::vec(text_strategy(), 0..4),
        labels in prop::collection::btree_map(".{0,70}", text_strategy(), 0..4),
        host in text_strategy(),
        agent in ".{0,40}",
    ) {
        let c = Capabilities {
            arch: texts[0].clone(),
            cpu_vendor: texts[1].clone(),
            cpu_model: texts[2].clone(),
            cpu_count,
            memory_gb,
            simd,
            os: texts[3].clone(),
            kernel: texts[4].clone(),
            engines: vec![texts[5].clone()],
            cuda_available: false,
            gpu_name: texts[6].clone(),
            cuda_version: texts[7].clone(),
            jetson_model: texts[8].clone(),
            power_mode: String::new(),
            environment_key: texts[0].clone(),
            environment_json: texts[1].clone(),
        };
        if let Err(e) = registration(&agent, &host, &labels, None, &c, "v") {
            let text = e.to_string();
            prop_assert!(text.starts_with("invalid request: field '"), "{}", text);
            prop_assert!(text.len() < 400, "{}", text);
        }
    }

    #[test]
    fn capabilities_in_range_are_accepted(
        cpu_count in 0..=MAX_CPU_COUNT,
        memory_gb in 0.0..=MAX_MEMORY_GB,
        texts in prop::collection::vec("[ -~]{0,256}", 9),
        simd in prop::collection::vec("[a-z0-9_]{1,64}", 0..32),
        labels in prop::collection::btree_map(
            "[A-Za-z0-9._/-]{1,63}", "[ -~]{0,255}", 0..=MAX_LABELS),
        host in "[a-z0-9.-]{1,255}",
    ) {
        let c = Capabilities {
            arch: texts[0].clone(),
            cpu_vendor: texts[1].clone(),
            cpu_model: texts[2].clone(),
            cpu_count,
            memory_gb,
            simd,
            os: texts[3].clone(),
            kernel: texts[4].clone(),
            engines: vec!["numpy".into()],
            cuda_available: true,
            gpu_name: texts[5].clone(),
            cuda_version: texts[6].clone(),
            jetson_model: texts[7].clone(),
            power_mode: texts[8].clone(),
            environment_key: texts[0].clone(),
            environment_json: texts[1].clone(),
        };
        let id = uuid::Uuid::new_v4().to_string();
        prop_assert!(registration(&id, &host, &labels, Some("auto"), &c, "0.1.0").is_ok());
    }
}
