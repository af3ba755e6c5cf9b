//! `--load FILE`: recognise either result format and summarise it.

use std::path::Path;

use fleetcal_proto::origin::OriginProfile;
use fleetcal_proto::CalibrationResult;

use super::summary_tables;
use crate::AgentError;

/// A result file in one of the two formats.
#[derive(Debug, Clone)]
pub enum LoadedResult {
    /// fleetcal's own schema.
    Fleetcal(Box<CalibrationResult>),
    /// The origin's profile format.
    Origin(Box<OriginProfile>),
}

impl LoadedResult {
    /// Reads a file and decides its format: a `schema_version` key means fleetcal's.
    pub fn read(path: &Path) -> Result<LoadedResult, AgentError> {
        let text = std::fs::read_to_string(path).map_err(|source| AgentError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        LoadedResult::parse(&text, &path.display().to_string())
    }

    /// Parses a document (`name` names it in errors) in either format.
    pub fn parse(text: &str, name: &str) -> Result<LoadedResult, AgentError> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            AgentError::Contract(fleetcal_proto::ContractError::Result {
                source_name: name.to_string(),
                message: format!("not JSON: {e}"),
            })
        })?;
        if value.get("schema_version").is_some() {
            Ok(LoadedResult::Fleetcal(Box::new(
                CalibrationResult::from_json(text, name)?,
            )))
        } else {
            Ok(LoadedResult::Origin(Box::new(OriginProfile::from_json(
                text, name,
            )?)))
        }
    }

    /// Its summary lines.
    pub fn summary(&self) -> Vec<String> {
        match self {
            LoadedResult::Fleetcal(r) => summary_tables(r),
            LoadedResult::Origin(p) => origin_lines(p),
        }
    }
}

fn origin_lines(p: &OriginProfile) -> Vec<String> {
    let md = &p.metadata;
    let mut out = vec![
        "=".repeat(96),
        format!(
            "CALIBRATION PROFILE (origin format): {} — {} on {} ({})",
            md.hardware_name,
            md.framework.to_uppercase(),
            md.device_type,
            md.calibration_date
        ),
        "=".repeat(96),
        format!("  CPU: {} ({} threads, {:.1} GB)", md.cpu_model, md.cpu_count, md.total_memory_gb),
        format!(
            "  Theoretical: {:.1} GFLOPS fp32, {:.1} GB/s",
            p.theoretical_peak_gflops, p.theoretical_bandwidth_gbps
        ),
        format!(
            "  Measured: best {:.1} / avg {:.1} / worst {:.1} GFLOPS; bandwidth {:.1} GB/s ({:.1}%)",
            p.best_measured_gflops,
            p.avg_measured_gflops,
            p.worst_measured_gflops,
            p.measured_bandwidth_gbps,
            p.bandwidth_efficiency * 100.0
        ),
        String::new(),
        format!("  {:<60} {:>10} {:>10} {:>10}", "Operation profile", "GFLOPS", "GB/s", "Eff"),
    ];
    for (key, r) in &p.operation_profiles {
        out.push(format!(
            "  {:<60} {:>10.1} {:>10.1} {:>9.1}%",
            key.chars().take(60).collect::<String>(),
            r.measured_gflops,
            r.achieved_bandwidth_gbps,
            r.efficiency * 100.0
        ));
    }
    out.push(String::new());
    out.push("  Peak by precision:".into());
    for (prec, g) in &p.precision_matrix.peak_gflops_by_precision {
        out.push(format!("    {prec:<6} {g:>10.1}"));
    }
    if !p.precision_matrix.unsupported_precisions.is_empty() {
        out.push(format!(
            "  Unsupported: {}",
            p.precision_matrix.unsupported_precisions.join(", ")
        ));
    }
    out
}

/// The summary lines of a saved result, in either format.
pub fn load_summary(path: &Path) -> Result<Vec<String>, AgentError> {
    Ok(LoadedResult::read(path)?.summary())
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use fleetcal_proto::origin;
    use proptest::prelude::*;
    use serde_json::Value;

    use super::*;
    use crate::bench::CancelToken;
    use crate::calibrate::{calibrate, CalibrationRequest};
    use crate::report::QuietConsole;

    /// A real result of this host: numpy, gemm and dot at n=16 and one STREAM kernel,
    /// measured once per test binary.
    fn real_result() -> &'static CalibrationResult {
        static RESULT: OnceLock<CalibrationResult> = OnceLock::new();
        RESULT.get_or_init(|| {
            let req = CalibrationRequest {
                preset: "i7-12700k".into(),
                operations: vec![
                    fleetcal_proto::Operation::Gemm,
                    fleetcal_proto::Operation::Dot,
                    fleetcal_proto::Operation::StreamTriad,
                ],
                precisions: Some(vec![
                    fleetcal_proto::Precision::Fp32,
                    fleetcal_proto::Precision::Bf16,
                ]),
                blas_sizes: Some(vec![16]),
                stream_mib: Some(vec![0.01]),
                warmup_runs: Some(0),
                measurement_runs: Some(1),
                threads: Some(1),
                skip_platform_check: true,
                ..CalibrationRequest::default()
            };
            let _threads = crate::testing::thread_counts_shared();
            calibrate(&req, &mut QuietConsole::default(), &CancelToken::new())
                .expect("a tiny calibration")
        })
    }

    #[test]
    fn measured_records_without_their_rates_print_as_not_available() {
        let mut r = real_result().clone();
        for rec in &mut r.records {
            rec.gops = None;
            rec.bandwidth_gbps = None;
            rec.latency_ms = None;
        }
        let lines = summary_tables(&r).join("\n");
        assert!(lines.contains("gemm") && lines.contains("n/a"), "{lines}");
        assert!(lines.contains("stream_triad"), "{lines}");
    }

    /// Every path (object key or array index) in a JSON document, depth first.
    fn paths(v: &Value, prefix: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    prefix.push(Value::String(k.clone()));
                    out.push(prefix.clone());
                    paths(child, prefix, out);
                    prefix.pop();
                }
            }
            Value::Array(a) => {
                for (i, child) in a.iter().enumerate() {
                    prefix.push(Value::from(i));
                    out.push(prefix.clone());
                    paths(child, prefix, out);
                    prefix.pop();
                }
            }
            _ => {}
        }
    }

    /// Deletes the node at `path`, or replaces it with `with`.
    fn mutate(doc: &mut Value, path: &[Value], with: Option<Value>) {
        let Some((last, parents)) = path.split_last() else {
            return;
        };
        let mut node = doc;
        for step in parents {
            node = match (node, step) {
                (Value::Object(m), Value::String(k)) => match m.get_mut(k) {
                    Some(n) => n,
                    None => return,
                },
                (Value::Array(a), Value::Number(i)) => {
                    match i
                        .as_u64()
                        .and_then(|i| usize::try_from(i).ok())
                        .and_then(|i| a.get_mut(i))
                    {
                        Some(n) => n,
                        None => return,
                    }
                }
                _ => return,
            };
        }
        match (node, last, with) {
            (Value::Object(m), Value::String(k), None) => {
                m.remove(k);
            }
            (Value::Object(m), Value::String(k), Some(v)) => {
                m.insert(k.clone(), v);
            }
            (Value::Array(a), Value::Number(i), with) => {
                if let Some(i) = i.as_u64().and_then(|i| usize::try_from(i).ok()) {
                    if i < a.len() {
                        match with {
                            None => {
                                a.remove(i);
                            }
                            Some(v) => a[i] = v,
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            prop::sample::select(vec![-1.0, 0.0, 1e308, -1e308, 5e-324]).prop_map(Value::from),
            "[a-z0-9_ ]{0,12}".prop_map(Value::from),
            prop::sample::select(vec![
                "fp32",
                "gemm",
                "measured",
                "failed",
                "cuda",
                "numpy",
                "stream_triad",
            ])
            .prop_map(Value::from),
        ]
    }

    fn record_field() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "operation",
            "precision",
            "size",
            "array_mib",
            "status",
            "reason",
            "flops",
            "bytes",
            "trials",
            "latency_ms",
            "gops",
            "bandwidth_gbps",
            "efficiency",
            "flags",
        ])
    }

    fn json() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("[a-z_]{1,10}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Reads a document the way `--load` does and, when it deserialises at all, renders it
    /// without validation too: the readers must be total, whatever validation lets through.
    fn read_every_way(doc: &Value) {
        let text = doc.to_string();
        if let Ok(loaded) = LoadedResult::parse(&text, "prop.json") {
            let _ = loaded.summary();
        }
        if let Ok(r) = serde_json::from_value::<CalibrationResult>(doc.clone()) {
            let _ = summary_tables(&r);
            let _ = crate::output::render(&r, crate::output::Format::Origin);
        }
        if let Ok(p) = serde_json::from_value::<OriginProfile>(doc.clone()) {
            let _ = origin_lines(&p);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_json_is_an_error_or_a_summary(doc in json()) {
            read_every_way(&doc);
            let mut with_version = doc;
            if let Value::Object(m) = &mut with_version {
                m.insert("schema_version".into(), Value::from(1));
            }
            read_every_way(&with_version);
        }

        #[test]
        fn a_real_result_with_fields_deleted_or_replaced_never_panics(
            picks in prop::collection::vec(
                (any::<prop::sample::Index>(), prop::option::of(record_field()), prop::option::of(json())),
                1..5,
            ),
            origin_format in any::<bool>(),
        ) {
            let r = real_result();
            let mut doc: Value = if origin_format {
                serde_json::from_str(&origin::to_origin(r).to_json()).unwrap()
            } else {
                serde_json::from_str(&r.to_json()).unwrap()
            };
            for (index, field, with) in picks {
                let path = match (field, doc.get("records").and_then(Value::as_array)) {
                    // Half the mutations hit a field of a record, where the readers look.
                    (Some(field), Some(records)) if !records.is_empty() => vec![
                        Value::from("records"),
                        Value::from(index.index(records.len())),
                        Value::from(field),
                    ],
                    _ => {
                        let mut all = Vec::new();
                        paths(&doc, &mut Vec::new(), &mut all);
                        if all.is_empty() {
                            break;
                        }
                        all[index.index(all.len())].clone()
                    }
                };
                mutate(&mut doc, &path, with);
            }
            read_every_way(&doc);
        }
    }

    #[test]
    fn the_real_result_reads_back_in_both_formats() {
        let r = real_result();
        let lines = LoadedResult::parse(&r.to_json(), "r.json")
            .unwrap()
            .summary();
        assert!(lines.iter().any(|l| l.starts_with("SUMMARY")), "{lines:?}");
        let lines = LoadedResult::parse(&origin::to_origin(r).to_json(), "o.json")
            .unwrap()
            .summary();
        assert!(
            lines.iter().any(|l| l.contains("origin format")),
            "{lines:?}"
        );
    }
}
