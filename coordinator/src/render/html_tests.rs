use serde_json::json;

use super::*;
use crate::fleet::AlertState;

const NOW: Millis = 1_764_400_000_000;
const DAY: Millis = 86_400_000;

fn group() -> serde_json::Value {
    json!({"key": "g-0123456789ab", "label": "Test CPU 9000 8c, OpenBLAS 0.3.21",
           "facts": {}, "members": [{"agent_id": "a-1", "hostname": "board-1"},
                                    {"agent_id": "a-2", "hostname": "board-<2>"}]})
}

fn report(v: serde_json::Value) -> Report {
    serde_json::from_value(v).unwrap()
}

/// Every plot of a page: its name and whether it holds an `<svg>` (not a "no plot" note).
fn plots(page: &str) -> Vec<(String, bool)> {
    page.split("<figure class=\"plot\" data-plot=\"")
        .skip(1)
        .map(|rest| {
            let name = rest.split('"').next().unwrap().to_string();
            let body = rest.split("</figure>").next().unwrap();
            (name, body.contains("<svg") && !body.contains("no plot"))
        })
        .collect()
}

fn assert_self_contained(page: &str) {
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(!page.contains("<script"), "no script");
    assert!(
        !page.contains("http://")
            || page.matches("http://").all(|_| false)
            || page.contains("xmlns"),
        "no remote"
    );
    for bad in ["<link", "src=\"http", "@import", "url(http"] {
        assert!(!page.contains(bad), "{bad}");
    }
}

fn compare() -> Report {
    report(
        json!({"report": "compare", "generated_at": NOW, "groups": [group()],
        "headlines": [
            {"group_key": "g-0123456789ab", "figure": "gemm_peak", "precision": "fp32", "unit": "GFLOPS",
             "numpy": 240.0, "pytorch": 200.0, "ratio_median": 0.83, "ratio_mad": 0.02,
             "noise_floor_pct": 2.0, "winner": "numpy", "by_pct": 20.0, "boards": 2, "run_ids": ["r1"]},
            {"group_key": "g-0123456789ab", "figure": "gemm_peak", "precision": "fp64", "unit": "GFLOPS",
             "numpy": 120.0, "pytorch": 95.0, "ratio_median": 0.79, "ratio_mad": 0.03,
             "noise_floor_pct": 2.0, "winner": "numpy", "by_pct": 26.0, "boards": 2, "run_ids": ["r1"]}],
        "rows": [{"group_key": "g-0123456789ab", "operation": "gemm", "precision": "fp32", "size": 1024,
             "unit": "GFLOPS", "numpy_best": 240.0, "pytorch_best": 200.0, "ratio_median": 0.83,
             "ratio_min": 0.8, "ratio_max": 0.86, "ratio_mad": 0.02,
             "boards": [{"agent_id": "a-1", "numpy_best": 240.0, "pytorch_best": 200.0,
                         "ratio": 0.83}]}],
        "pairs": [{"agent_id": "a-1", "hostname": "board-1", "campaign_id": "c1",
                   "numpy_run_id": "r1", "pytorch_run_id": "r2"}]}),
    )
}

#[test]
fn the_compare_page_plots_numpy_against_pytorch_per_group() {
    let page = report_page(&compare(), &ReportQuery::default(), NOW);
    assert_self_contained(&page);
    assert_eq!(plots(&page), vec![("compare".to_string(), true)]);
    for text in [
        "NumPy vs PyTorch",
        "gemm fp32",
        "gemm fp64",
        "0.83×",
        "g-0123456789ab",
        "numpy",
    ] {
        assert!(page.contains(text), "{text}");
    }
    // Host names are escaped, links lead to the board pages.
    assert!(page.contains("board-&lt;2&gt;"), "escaped");
    assert!(page.contains("href=\"/boards/a-1\""));
    assert!(page.contains("href=\"/reports/compare?format=csv\""));
}

#[test]
fn the_query_is_kept_in_the_form_and_the_data_links() {
    let mut q = ReportQuery::default();
    q.fleet.select = vec![("site".into(), "lab 2".into())];
    q.nights = Some(7);
    let page = report_page(&compare(), &q, NOW);
    assert!(
        page.contains("value=\"site=lab 2\""),
        "the form shows the selection"
    );
    assert!(
        page.contains("/reports/compare?select=site=lab%202&amp;nights=7&amp;format=json"),
        "{page}"
    );
}

#[test]
fn the_boards_page_marks_outliers_against_the_group_median() {
    let row = |agent: &str, host: &str, value: f64, outlier: bool| {
        json!({
        "group_key": "g-0123456789ab", "agent_id": agent, "hostname": host, "framework": "numpy",
        "figure": "gemm_peak fp32", "unit": "GFLOPS", "value": value, "efficiency": value / 500.0,
        "theoretical": 500.0, "group_median": 240.0, "vs_group_pct": (value - 240.0) / 2.4,
        "robust_z": if outlier { -6.0 } else { 0.1 }, "outlier": outlier, "group_boards": 3,
        "run_id": "r", "measured_at": NOW - DAY})
    };
    let r = report(
        json!({"report": "boards", "generated_at": NOW, "groups": [group()],
        "rows": [row("a-1", "board-1", 240.0, false), row("a-2", "board-2", 241.0, false),
                 row("a-3", "board-3", 150.0, true)]}),
    );
    let page = report_page(&r, &ReportQuery::default(), NOW);
    assert_self_contained(&page);
    assert_eq!(plots(&page), vec![("boards".to_string(), true)]);
    assert!(
        page.contains("% of theoretical"),
        "efficiency against the group"
    );
    assert!(page.contains("group median"));
    assert!(page.contains("-37.5%"), "board-3's shortfall");
    assert_eq!(page.matches(">outlier</td>").count(), 1);
}

fn drift() -> Report {
    let points: Vec<_> = (0..10)
        .map(|i| {
            json!({"run_id": format!("r{i}"), "at": NOW - (10 - i) * DAY,
                        "value": if i < 7 { 240.0 } else { 190.0 }})
        })
        .collect();
    let runs: Vec<_> = (0..10)
        .map(|i| {
            json!({"run_id": format!("r{i}"), "campaign_id": "c", "at": NOW - (10 - i) * DAY,
                        "env_key": if i < 3 { "e1" } else { "e2" }})
        })
        .collect();
    report(
        json!({"report": "drift", "generated_at": NOW, "groups": [group()], "runs": runs,
        "series": [{"group_key": "g-0123456789ab", "agent_id": "a-1", "hostname": "board-1",
            "framework": "numpy", "figure": "gemm_peak fp32", "unit": "GFLOPS", "points": points,
            "periods": [{"start_at": NOW - 10 * DAY, "start_run_id": "r0", "env_key": "e1", "nights": 3},
                        {"start_at": NOW - 7 * DAY, "start_run_id": "r3", "env_key": "e2",
                         "previous_env_key": "e1", "nights": 7}],
            "baseline": 240.0, "latest": 190.0, "latest_change_pct": -20.8, "threshold_pct": 4.0,
            "finding": {"kind": "step", "began_at": NOW - 3 * DAY, "began_run_id": "r7",
                        "baseline": 240.0, "current": 190.0, "change_pct": -20.8, "p_value": 0.001,
                        "threshold_pct": 4.0, "significant": true, "run_id": "r9"}}],
        "alerts": [{"id": "al-123456789", "agent_id": "a-1", "hostname": "board-1",
            "group_key": "g-0123456789ab", "framework": "numpy", "figure": "gemm_peak fp32",
            "baseline": 240.0, "current": 190.0, "change_pct": -20.8, "kind": "step",
            "began_at": NOW - 3 * DAY, "run_id": "r9", "state": "open",
            "created_at": NOW - DAY, "updated_at": NOW - DAY, "message": "confirmed"}]}),
    )
}

#[test]
fn the_drift_page_draws_the_nights_periods_and_alerts() {
    let page = report_page(&drift(), &ReportQuery::default(), NOW);
    assert_self_contained(&page);
    assert_eq!(plots(&page), vec![("drift".to_string(), true)]);
    for text in [
        "new period",
        "baseline",
        "alert",
        "step -20.8%",
        "al-12345",
        ">open<",
    ] {
        assert!(page.contains(text), "{text}");
    }
    // The alert point is drawn red in the plot.
    let svg = page.split("<svg").nth(1).unwrap();
    assert!(svg.contains("#C81E1E"));
}

#[test]
fn the_board_page_shows_its_status_and_drift_lines() {
    let p = BoardPage {
        agent_id: "a-1".into(),
        status: Some(BoardStatus {
            agent_id: "a-1".into(),
            hostname: "board-1".into(),
            preset: "cpu-generic".into(),
            online: false,
            last_seen: NOW - 2 * 3600 * 1000,
            last_calibrated: Some(NOW - DAY),
            group_key: Some("g-0123456789ab".into()),
        }),
        drift: drift(),
    };
    let page = board_page(&p, NOW);
    assert_self_contained(&page);
    assert!(page.contains("Board board-1"));
    assert!(page.contains("offline") && page.contains("2 h ago") && page.contains("1 d ago"));
    assert_eq!(plots(&page), vec![("drift".to_string(), true)]);
    assert!(page.contains("href=\"/boards/a-1?format=json\""));
}

#[test]
fn anomalies_and_roofline_pages_have_their_plots() {
    let r = report(
        json!({"report": "anomalies", "generated_at": NOW, "groups": [], "stale_days": 3,
        "items": [{"kind": "device_fallback", "agent_id": "a-1", "hostname": "board-1",
                   "detail": "cuda asked, cpu used", "figures": []},
                  {"kind": "not_calibrated", "agent_id": "a-2", "hostname": "board-2",
                   "value": 5.0, "detail": "no result for 5 days", "figures": []}]}),
    );
    let page = report_page(&r, &ReportQuery::default(), NOW);
    assert_eq!(plots(&page), vec![("anomalies".to_string(), true)]);
    assert!(page.contains("cuda asked, cpu used") && page.contains("not_calibrated"));

    let r = report(
        json!({"report": "roofline", "generated_at": NOW, "groups": [group()],
        "rooflines": [{"group_key": "g-0123456789ab", "bandwidth_gbps": 40.0, "bandwidth_run_ids": [],
            "compute": [{"precision": "fp32", "unit": "GFLOPS", "gops": 480.0, "best_gops": 480.0,
                         "theoretical": 500.0, "run_ids": []}],
            "points": [{"agent_id": "a-1", "hostname": "board-1", "framework": "numpy",
                        "operation": "gemm", "precision": "fp32", "size": 1024, "intensity": 170.0,
                        "gops": 470.0, "run_id": "r"}]}]}),
    );
    let page = report_page(&r, &ReportQuery::default(), NOW);
    assert_self_contained(&page);
    assert_eq!(plots(&page), vec![("roofline".to_string(), true)]);
    assert!(page.contains("40 GB/s"));
}

#[test]
fn the_overview_counts_boards_alerts_and_lists_campaigns() {
    let board = |id: &str, online: bool, cal: Option<Millis>| BoardStatus {
        agent_id: id.into(),
        hostname: format!("host-{id}"),
        preset: "cpu-generic".into(),
        online,
        last_seen: NOW - 5000,
        last_calibrated: cal,
        group_key: None,
    };
    let Report::Drift(d) = drift() else { panic!() };
    let s = FleetStatus {
        boards: vec![
            board("a", true, Some(NOW - 3 * DAY)),
            board("b", true, None),
            board("c", false, Some(NOW - DAY)),
        ],
        alerts: d.alerts.clone(),
        campaigns: vec![CampaignStatus {
            id: "c0ffee00-1111".into(),
            created_at: NOW - DAY,
            schedule: Some("nightly".into()),
            counts: crate::aggregate::counts_from([
                (RunState::Succeeded, 3),
                (RunState::Failed, 1),
            ]),
        }],
    };
    let page = overview_page(&s, NOW);
    assert_self_contained(&page);
    assert!(
        page.contains("<div class=\"v ok\">2</div>boards online"),
        "{page}"
    );
    assert!(page.contains("<div class=\"v bad\">1</div>boards offline"));
    assert!(page.contains("<div class=\"v bad\">1</div>open alerts"));
    assert!(page.contains("<div class=\"v\">1 d ago</div>latest calibration"));
    assert!(
        page.contains("c0ffee00")
            && page.contains("nightly")
            && page.contains(">none in 30 nights<")
    );
    assert_eq!(AlertState::Open.as_str(), "open");
}

#[test]
fn ages_and_times_read_well() {
    assert_eq!(age(NOW, NOW - 5_000), "5 s ago");
    assert_eq!(age(NOW, NOW - 3 * 60_000), "3 min ago");
    assert_eq!(age(NOW, NOW + 5_000), "0 s ago");
    assert_eq!(time(0), "1970-01-01 00:00 UTC");
    assert_eq!(urlish("a b&c"), "a%20b%26c");
}

#[test]
fn the_overview_names_the_window_its_last_calibrations_come_from() {
    assert_eq!(
        NONE_IN_WINDOW,
        format!(
            "none in {} nights",
            crate::fleet::ReportQuery::DEFAULT_NIGHTS
        )
    );
}
