//! Drawing report models ([`crate::fleet::Report`]): a plain-text [`table`] that fits a
//! 100-column terminal, [`csv`] and [`json`] for scripts, [`html`] pages with SVG [`plot`]s
//! for people. Pure; fleetctl and the web side call the same functions, so they cannot
//! disagree. JSON and CSV carry every number the table shows plus the run ids it came from.

pub mod csv;
pub mod html;
pub mod json;
pub mod plot;
pub mod table;

/// A number for a table: four significant digits at most, no exponent.
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return "-".to_string();
    }
    let a = v.abs();
    if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// An optional number for a table (`-` when absent).
pub fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), num)
}

/// A signed percentage for a table (`-12.3%`).
pub fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{v:+.1}%")
    } else {
        "-".to_string()
    }
}

/// The date of a time for a table (`2026-01-31`).
pub fn date(ms: crate::model::Millis) -> String {
    let t = crate::model::rfc3339(ms);
    t.get(..10).map_or(t.clone(), str::to_string)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::fleet::alert::{AlertRecord, AlertState};
    use crate::fleet::anomalies::{anomalies, AnomalyInputs};
    use crate::fleet::boards::boards;
    use crate::fleet::compare::compare;
    use crate::fleet::drift::{drift, DriftParams};
    use crate::fleet::fixtures::{gemm, night, rows, run, triad};
    use crate::fleet::group::group_boards;
    use crate::fleet::roofline::roofline;
    use crate::fleet::{FleetRows, Report};

    /// Three boards (one with a very long host name), both frameworks, 12 nights; board c
    /// drops 20% on the last two nights.
    fn fleet() -> FleetRows {
        let mut items = Vec::new();
        for n in 0..12 {
            for (agent, speed) in [("a", 1.0), ("b", 1.02), ("c", 0.99)] {
                let drop = if agent == "c" && n >= 10 { 0.8 } else { 1.0 };
                for (fw, f) in [("numpy", 1.0), ("pytorch", 1.3)] {
                    let id = format!("{agent}-{fw}-{n}");
                    let mut r = run(&id, &format!("camp-{n}"), agent, fw, night(n), "EPYC 9654");
                    if agent == "a" {
                        r.hostname =
                            format!("a-board-with-a-very-long-host-name-{}", "x".repeat(60));
                    }
                    let v = 100.0
                        * speed
                        * f
                        * drop
                        * (1.0 + f64::from(u32::try_from(n % 3).unwrap()) * 0.002);
                    items.push((
                        r,
                        vec![gemm(&id, "fp32", 1024, v), triad(&id, 64, 20.0 * speed)],
                    ));
                }
            }
        }
        rows(items)
    }

    fn all_reports() -> Vec<Report> {
        let rows = fleet();
        let g = group_boards(&rows.runs);
        let alert = AlertRecord {
            id: "0123456789abcdef".into(),
            agent_id: "c".into(),
            hostname: "host-c".into(),
            group_key: g.key_of("c").unwrap().into(),
            framework: "numpy".into(),
            figure: "gemm_peak fp32".into(),
            baseline: 99.0,
            current: 79.2,
            change_pct: -20.0,
            kind: "step".into(),
            began_at: night(10),
            run_id: "c-numpy-10".into(),
            confirm_campaign_id: Some("confirm-1".into()),
            state: AlertState::Open,
            created_at: night(10),
            updated_at: night(10),
            message: "confirmed, by run c-numpy-10c".into(),
        };
        let last: BTreeMap<String, i64> = BTreeMap::new();
        vec![
            Report::Compare(compare(&rows, &g, night(12))),
            Report::Boards(boards(&rows, &g, night(12))),
            Report::Drift(drift(
                &rows,
                &g,
                vec![alert],
                &DriftParams::default(),
                night(12),
            )),
            Report::Anomalies(anomalies(
                &rows,
                &g,
                AnomalyInputs {
                    runs: &[],
                    agents: &[],
                    last_result: &last,
                    since: None,
                    stale_days: 3,
                    group: None,
                },
                night(12),
            )),
            Report::Roofline(roofline(&rows, &g, night(12))),
        ]
    }

    #[test]
    fn every_table_fits_100_columns_and_shows_the_groups() {
        for r in all_reports() {
            let t = super::table::report(&r);
            for line in t.lines() {
                assert!(
                    line.chars().count() <= super::table::WIDTH,
                    "{}: {line}",
                    r.kind()
                );
            }
            let key = &r.groups()[0].key;
            assert!(t.contains(key.as_str()), "{}: {t}", r.kind());
            assert!(t.contains("host-b"), "{}: {t}", r.kind());
        }
    }

    /// The value of `column` in each CSV record of kind `record`.
    fn column(csv: &str, record: &str, column: &str) -> Vec<String> {
        let mut lines = csv.lines();
        let header: Vec<String> = split(lines.next().unwrap());
        let i = header
            .iter()
            .position(|h| h == column)
            .unwrap_or_else(|| panic!("no column {column}: {header:?}"));
        lines
            .map(split)
            .filter(|cells| cells[0] == record)
            .map(|cells| {
                assert_eq!(cells.len(), header.len(), "{cells:?}");
                cells[i].clone()
            })
            .collect()
    }

    /// The fields of a CSV line (quotes undone).
    fn split(line: &str) -> Vec<String> {
        let mut out = vec![String::new()];
        let mut quoted = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, quoted) {
                ('"', true) if chars.peek() == Some(&'"') => {
                    chars.next();
                    out.last_mut().unwrap().push('"');
                }
                ('"', _) => quoted = !quoted,
                (',', false) => out.push(String::new()),
                (c, _) => out.last_mut().unwrap().push(c),
            }
        }
        out
    }

    #[test]
    fn csv_and_json_carry_the_tables_numbers_and_the_run_ids() {
        let reports = all_reports();
        // compare: PyTorch 1.3× NumPy on every board.
        let c = super::csv::report(&reports[0]);
        assert!(
            column(&c, "headline", "ratio_median")
                .iter()
                .any(|r| r.starts_with("1.3")),
            "{c}"
        );
        assert_eq!(column(&c, "headline", "winner")[0], "pytorch");
        assert!(
            column(&c, "pair", "numpy_run_id").contains(&"b-numpy-11".to_string()),
            "{c}"
        );
        let t = super::table::report(&reports[0]);
        assert!(t.contains("pytorch") && t.contains("1.300"), "{t}");
        // boards: c's drop makes it the slowest; its run id is there.
        let b = super::csv::report(&reports[1]);
        let runs = column(&b, "board", "run_id");
        assert!(runs.contains(&"c-numpy-11".to_string()), "{b}");
        // drift: the alert and c's finding, with run ids, in every format.
        let d = super::csv::report(&reports[2]);
        assert_eq!(column(&d, "alert", "alert_id"), ["0123456789abcdef"]);
        assert_eq!(column(&d, "alert", "state"), ["open"]);
        assert_eq!(column(&d, "alert", "change_pct"), ["-20"]);
        assert_eq!(
            column(&d, "alert", "detail"),
            ["confirmed, by run c-numpy-10c"]
        );
        assert!(
            column(&d, "finding", "run_id").contains(&"c-numpy-10".to_string()),
            "{d}"
        );
        assert!(column(&d, "night", "run_id").contains(&"a-numpy-0".to_string()));
        let dt = super::table::report(&reports[2]);
        assert!(
            dt.contains("01234567") && dt.contains("open") && dt.contains("-20.0%"),
            "{dt}"
        );
        let dj = super::json::report(&reports[2]).unwrap();
        assert!(
            dj.contains("\"c-numpy-10\"") && dj.contains("\"began_at\""),
            "{dj}"
        );
        // roofline: roofs and points with run ids.
        let f = super::csv::report(&reports[4]);
        assert_eq!(column(&f, "roof", "roof"), ["bandwidth", "compute"]);
        assert!(
            column(&f, "point", "run_ids").contains(&"a-pytorch-11".to_string()),
            "{f}"
        );
        for r in &reports {
            let csv = super::csv::report(r);
            assert_eq!(
                column(&csv, "group", "group").len(),
                r.groups().len(),
                "{csv}"
            );
            let json = super::json::report(r).unwrap();
            assert_eq!(serde_json::from_str::<Report>(&json).unwrap(), *r);
        }
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(super::csv::field("a,b"), "\"a,b\"");
        assert_eq!(super::csv::field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(super::csv::field("plain"), "plain");
        let text = super::csv::lines(&["x", "y"], &[vec!["1".into()]]);
        assert_eq!(text, "x,y\r\n1,\r\n");
    }

    #[test]
    fn numbers_keep_four_significant_digits() {
        assert_eq!(super::num(12345.6), "12346");
        assert_eq!(super::num(123.45), "123.5");
        assert_eq!(super::num(1.23456), "1.235");
        assert_eq!(super::num(f64::NAN), "-");
        assert_eq!(super::pct(-12.34), "-12.3%");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Whatever the figures and names (zeros, negatives, NaN, huge, unicode), every
        /// report computes and every table fits 100 columns.
        #[test]
        fn any_rows_render_within_the_width(
            values in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::num::f64::ANY,
                    0.0..1e6f64,
                ],
                1..40,
            ),
            host in "\\PC{0,120}",
            env_flip in 0usize..40,
        ) {
            let mut items = Vec::new();
            for (i, v) in values.iter().enumerate() {
                let n = i64::try_from(i).unwrap();
                let agent = ["a", "b", "c"][i % 3];
                for fw in ["numpy", "pytorch"] {
                    let id = format!("{agent}-{fw}-{i}");
                    let mut r = run(&id, &format!("c{}", i / 3), agent, fw, night(n / 3), "CPU");
                    r.hostname = format!("{host}{agent}");
                    if i > env_flip {
                        r.env_key = Some("env-2".into());
                    }
                    items.push((r, vec![gemm(&id, "fp32", 64, *v), triad(&id, 1, *v / 10.0)]));
                }
            }
            let rows = rows(items);
            let g = group_boards(&rows.runs);
            let last = BTreeMap::new();
            let reports = [
                Report::Compare(compare(&rows, &g, 0)),
                Report::Boards(boards(&rows, &g, 0)),
                Report::Drift(drift(&rows, &g, Vec::new(), &DriftParams::default(), 0)),
                Report::Anomalies(anomalies(&rows, &g, AnomalyInputs {
                    runs: &[], agents: &[], last_result: &last, since: None, stale_days: 3,
                    group: None,
                }, 0)),
                Report::Roofline(roofline(&rows, &g, 0)),
            ];
            for r in &reports {
                for line in super::table::report(r).lines() {
                    proptest::prop_assert!(line.chars().count() <= super::table::WIDTH, "{line}");
                }
                let _ = super::csv::report(r);
                proptest::prop_assert!(super::json::report(r).is_ok());
            }
        }
    }
}
