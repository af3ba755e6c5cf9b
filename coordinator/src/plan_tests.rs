//! Unit and property tests of campaign planning.

use std::collections::BTreeMap;
use std::path::Path;

use fleetcal_proto::{DeviceKind, Framework, Preset};
use proptest::prelude::*;

use super::*;
use crate::model::{Capabilities, FrameworkChoice, Overrides, Selector};

fn preset(id: &str, device: &str, fw: &str, matches: &str) -> Preset {
    let text = format!(
        "schema_version = 1\nid = \"{id}\"\nhardware_name = \"HW {id}\"\ndevice = \"{device}\"\n\
         architecture = \"x86_64\"\nplatform = \"desktop\"\ndefault_framework = \"{fw}\"\n\
         notes = \"test\"\n[match]\n{matches}\n[peaks]\nfp32 = 100.0\n"
    );
    Preset::from_toml(&text, Path::new("<test>")).unwrap()
}

fn presets() -> Vec<Preset> {
    vec![
        preset("gpu-h100", "cuda", "pytorch", "gpu_name = [\"H100\"]"),
        preset(
            "i7",
            "cpu",
            "numpy",
            "cpu_vendor = \"GenuineIntel\"\ncpu_model = [\"i7-12700K\"]",
        ),
        preset("plain", "cpu", "numpy", ""),
    ]
}

fn agent(id: &str, model: &str, gpu: Option<&str>, engines: &[&str]) -> AgentRecord {
    AgentRecord {
        agent_id: id.into(),
        hostname: format!("host-{id}"),
        labels: BTreeMap::from([("site".to_string(), "lab".to_string())]),
        preset: None,
        capabilities: Capabilities {
            cpu_vendor: "GenuineIntel".into(),
            cpu_model: model.into(),
            engines: engines.iter().map(|s| s.to_string()).collect(),
            cuda_available: gpu.is_some(),
            gpu_name: gpu.unwrap_or_default().into(),
            ..Capabilities::default()
        },
        agent_version: "0".into(),
        registered_at: 0,
        last_seen: 0,
    }
}

fn spec(selector: Selector, framework: FrameworkChoice) -> CampaignSpec {
    CampaignSpec {
        selector,
        framework,
        quick: true,
        warmup: None,
        trials: None,
        max_duration_s: None,
        run_timeout_s: 60,
        deadline_s: 60,
        concurrency: 0,
        overrides: Overrides::default(),
    }
}

#[test]
fn presets_are_configured_then_matched_then_auto() {
    let p = presets();
    let cpu = agent(
        "a",
        "12th Gen Intel(R) Core(TM) i7-12700K",
        None,
        &["numpy"],
    );
    assert_eq!(effective_preset(&cpu, &p).id, "i7");
    let gpu = agent(
        "b",
        "i7-12700K",
        Some("NVIDIA H100 80GB HBM3"),
        &["pytorch"],
    );
    assert_eq!(
        effective_preset(&gpu, &p).id,
        "gpu-h100",
        "cuda preset wins on a cuda agent"
    );
    let other = agent("c", "AMD Ryzen", None, &["numpy"]);
    assert_eq!(effective_preset(&other, &p).id, AUTO_PRESET);
    let mut configured = other.clone();
    configured.preset = Some("plain".into());
    assert_eq!(effective_preset(&configured, &p).id, "plain");
    configured.preset = Some("nope".into());
    let choice = effective_preset(&configured, &p);
    assert!(choice.device.unwrap_err().contains("'nope'"));
}

#[test]
fn default_framework_follows_the_device() {
    let p = presets();
    let agents = vec![
        agent("a", "i7-12700K", None, &["numpy", "pytorch"]),
        agent("b", "x", Some("H100"), &["numpy", "pytorch"]),
    ];
    let runs = plan_campaign(&agents, &p, &spec(Selector::All, FrameworkChoice::Default)).unwrap();
    let got: Vec<_> = runs
        .iter()
        .map(|r| (r.agent_id.as_str(), r.framework, r.device))
        .collect();
    assert_eq!(
        got,
        vec![
            ("a", Framework::Numpy, DeviceKind::Cpu),
            ("b", Framework::Pytorch, DeviceKind::Cuda)
        ]
    );
    assert!(runs.iter().all(|r| r.refused.is_none()));
}

#[test]
fn compare_plans_both_frameworks_only_where_pytorch_exists() {
    let p = presets();
    let agents = vec![
        agent("a", "i7-12700K", None, &["numpy", "pytorch"]),
        agent("b", "i7-12700K", None, &["numpy"]),
        agent("c", "x", Some("H100"), &["pytorch"]),
    ];
    let runs = plan_campaign(&agents, &p, &spec(Selector::All, FrameworkChoice::Compare)).unwrap();
    let got: Vec<_> = runs
        .iter()
        .map(|r| (r.agent_id.as_str(), r.framework))
        .collect();
    assert_eq!(
        got,
        vec![
            ("a", Framework::Numpy),
            ("a", Framework::Pytorch),
            ("b", Framework::Numpy),
            ("c", Framework::Pytorch)
        ]
    );
}

#[test]
fn impossible_combinations_become_failed_runs_with_reasons() {
    let p = presets();
    let gpu = agent("g", "x", Some("H100"), &["numpy", "pytorch"]);
    let runs = plan_agent(&gpu, &p, FrameworkChoice::Only(Framework::Numpy));
    assert_eq!(runs.len(), 1);
    assert_eq!(
        runs[0].refused.as_deref(),
        Some(
            fleetcal_proto::ContractError::NumpyOnCuda
                .to_string()
                .as_str()
        )
    );
    let cpu = agent("c", "i7-12700K", None, &["numpy"]);
    let runs = plan_agent(&cpu, &p, FrameworkChoice::Only(Framework::Pytorch));
    assert_eq!(
        runs[0].refused.as_deref(),
        Some("framework 'pytorch' is not built into this agent (it has: numpy)")
    );
    let mut no_cuda = agent("n", "x", None, &["pytorch"]);
    no_cuda.preset = Some("gpu-h100".into());
    let runs = plan_agent(&no_cuda, &p, FrameworkChoice::Default);
    assert!(
        runs[0]
            .refused
            .as_deref()
            .unwrap()
            .contains("no usable cuda device"),
        "{runs:?}"
    );
}

#[test]
fn a_cpu_presets_default_framework_is_followed() {
    let mut p = presets();
    p.push(preset(
        "torch-cpu",
        "cpu",
        "pytorch",
        "cpu_model = [\"Torchy\"]",
    ));
    let a = agent("t", "Torchy 1", None, &["numpy", "pytorch"]);
    let runs = plan_agent(&a, &p, FrameworkChoice::Default);
    let got: Vec<_> = runs
        .iter()
        .map(|r| (r.preset_id.as_str(), r.framework, r.refused.is_none()))
        .collect();
    assert_eq!(got, vec![("torch-cpu", Framework::Pytorch, true)]);
}

#[test]
fn selectors_filter_and_an_empty_selection_is_an_error() {
    let p = presets();
    let agents = vec![
        agent("a", "i7-12700K", None, &["numpy"]),
        agent("b", "zz", None, &["numpy"]),
    ];
    let by_preset = spec(Selector::Preset("i7".into()), FrameworkChoice::Default);
    assert_eq!(plan_campaign(&agents, &p, &by_preset).unwrap().len(), 1);
    let labels = BTreeMap::from([("site".to_string(), "moon".to_string())]);
    let err = plan_campaign(
        &agents,
        &p,
        &spec(Selector::Labels(labels), FrameworkChoice::Default),
    )
    .unwrap_err();
    assert!(err.to_string().contains("site=moon"), "{err}");
}

proptest! {
    #[test]
    fn every_plan_is_runnable_or_refused_with_a_reason(
        cuda in any::<bool>(),
        has_numpy in any::<bool>(),
        has_torch in any::<bool>(),
        model in prop::sample::select(vec!["i7-12700K", "EPYC", ""]),
        choice in prop::sample::select(vec![
            FrameworkChoice::Default,
            FrameworkChoice::Compare,
            FrameworkChoice::Only(Framework::Numpy),
            FrameworkChoice::Only(Framework::Pytorch),
        ]),
    ) {
        let mut engines = vec![];
        if has_numpy { engines.push("numpy"); }
        if has_torch { engines.push("pytorch"); }
        let a = agent("p", model, cuda.then_some("H100"), &engines);
        let runs = plan_agent(&a, &presets(), choice);
        prop_assert!(!runs.is_empty() && runs.len() <= 2);
        for r in &runs {
            let runnable = !(r.framework == Framework::Numpy && r.device == DeviceKind::Cuda)
                && a.capabilities.engines().has(r.framework)
                && (r.device == DeviceKind::Cpu || cuda);
            prop_assert_eq!(runnable, r.refused.is_none(), "{:?}", r);
        }
        if runs.len() == 2 {
            prop_assert_eq!(choice, FrameworkChoice::Compare);
            prop_assert_ne!(runs[0].framework, runs[1].framework);
        }
    }
}
