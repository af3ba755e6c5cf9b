//! Reports as CSV (RFC 4180): one header, one line per record, the first column naming the
//! record's kind (`group`, `headline`, `pair`, …). Numbers are written in full (shortest
//! round-trip form), times as RFC 3339, and every record carries the run ids it came from.

use crate::fleet::anomalies::AnomaliesReport;
use crate::fleet::boards::BoardsReport;
use crate::fleet::compare::CompareReport;
use crate::fleet::drift::DriftReport;
use crate::fleet::group::BoardGroup;
use crate::fleet::roofline::RooflineReport;
use crate::fleet::Report;
use crate::model::{rfc3339, Millis};

/// A field, quoted when it holds a comma, a quote or a line break.
pub fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Lines of fields under a header, each line ending in CRLF.
pub fn lines(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    let mut push = |cells: Vec<String>| {
        out.push_str(&cells.iter().map(|c| field(c)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    };
    push(header.iter().map(|h| h.to_string()).collect());
    for r in rows {
        let mut r = r.clone();
        r.resize(header.len(), String::new());
        push(r);
    }
    out
}

fn n(v: f64) -> String {
    if v.is_finite() {
        v.to_string()
    } else {
        String::new()
    }
}

fn on(v: Option<f64>) -> String {
    v.map_or_else(String::new, n)
}

fn t(ms: Millis) -> String {
    rfc3339(ms)
}

/// A report as CSV.
pub fn report(r: &Report) -> String {
    match r {
        Report::Compare(c) => compare(c),
        Report::Boards(b) => boards(b),
        Report::Drift(d) => drift(d),
        Report::Anomalies(a) => anomalies(a),
        Report::Roofline(f) => roofline(f),
    }
}

/// The `group` records: the key in column `group`, the members (`host=agent;…`) in
/// `members`, the facts in `detail`.
fn group_rows(gs: &[BoardGroup], header: &[&str]) -> Vec<Vec<String>> {
    gs.iter()
        .map(|g| {
            Record::new(header, "group")
                .set("group", &g.key)
                .set(
                    "members",
                    g.members
                        .iter()
                        .map(|m| format!("{}={}", m.hostname, m.agent_id))
                        .collect::<Vec<_>>()
                        .join(";"),
                )
                .set("detail", &g.label)
                .cells
        })
        .collect()
}

fn compare(c: &CompareReport) -> String {
    let header = [
        "record",
        "group",
        "figure",
        "operation",
        "precision",
        "size",
        "unit",
        "numpy_best",
        "numpy_median",
        "pytorch_best",
        "pytorch_median",
        "ratio",
        "ratio_median",
        "ratio_min",
        "ratio_max",
        "ratio_mad",
        "noise_floor_pct",
        "winner",
        "by_pct",
        "boards",
        "agent_id",
        "hostname",
        "campaign_id",
        "numpy_run_id",
        "pytorch_run_id",
        "run_ids",
        "members",
        "detail",
    ];
    let mut rows = group_rows(&c.groups, &header);
    for h in &c.headlines {
        rows.push(
            Record::new(&header, "headline")
                .set("group", &h.group_key)
                .set("figure", &h.figure)
                .set("precision", &h.precision)
                .set("unit", &h.unit)
                .set("numpy_best", n(h.numpy))
                .set("pytorch_best", n(h.pytorch))
                .set("ratio_median", n(h.ratio_median))
                .set("ratio_mad", n(h.ratio_mad))
                .set("noise_floor_pct", n(h.noise_floor_pct))
                .set("winner", h.winner.as_str())
                .set("by_pct", n(h.by_pct))
                .set("boards", h.boards.to_string())
                .set("run_ids", h.run_ids.join(";"))
                .cells,
        );
    }
    for x in &c.rows {
        let figure = |record: &str| {
            Record::new(&header, record)
                .set("group", &x.group_key)
                .set("operation", &x.operation)
                .set("precision", &x.precision)
                .set("size", x.size.to_string())
                .set("unit", &x.unit)
        };
        let run_ids: Vec<String> = x
            .boards
            .iter()
            .flat_map(|b| [b.numpy_run_id.clone(), b.pytorch_run_id.clone()])
            .collect();
        rows.push(
            figure("row")
                .set("numpy_best", n(x.numpy_best))
                .set("numpy_median", on(x.numpy_median))
                .set("pytorch_best", n(x.pytorch_best))
                .set("pytorch_median", on(x.pytorch_median))
                .set("ratio_median", n(x.ratio_median))
                .set("ratio_min", n(x.ratio_min))
                .set("ratio_max", n(x.ratio_max))
                .set("ratio_mad", n(x.ratio_mad))
                .set("boards", x.boards.len().to_string())
                .set("run_ids", run_ids.join(";"))
                .cells,
        );
        for b in &x.boards {
            rows.push(
                figure("pair")
                    .set("numpy_best", n(b.numpy_best))
                    .set("numpy_median", on(b.numpy_median))
                    .set("pytorch_best", n(b.pytorch_best))
                    .set("pytorch_median", on(b.pytorch_median))
                    .set("ratio", n(b.ratio))
                    .set("agent_id", &b.agent_id)
                    .set("hostname", &b.hostname)
                    .set("campaign_id", &b.campaign_id)
                    .set("numpy_run_id", &b.numpy_run_id)
                    .set("pytorch_run_id", &b.pytorch_run_id)
                    .set(
                        "run_ids",
                        format!("{};{}", b.numpy_run_id, b.pytorch_run_id),
                    )
                    .cells,
            );
        }
    }
    lines(&header, &rows)
}

fn boards(b: &BoardsReport) -> String {
    let header = [
        "record",
        "group",
        "agent_id",
        "hostname",
        "framework",
        "figure",
        "unit",
        "value",
        "efficiency",
        "theoretical",
        "group_median",
        "vs_group_pct",
        "robust_z",
        "outlier",
        "group_boards",
        "measured_at",
        "run_id",
        "members",
        "detail",
    ];
    let mut rows = group_rows(&b.groups, &header);
    for x in &b.rows {
        rows.push(vec![
            "board".into(),
            x.group_key.clone(),
            x.agent_id.clone(),
            x.hostname.clone(),
            x.framework.clone(),
            x.figure.clone(),
            x.unit.clone(),
            n(x.value),
            on(x.efficiency),
            on(x.theoretical),
            n(x.group_median),
            n(x.vs_group_pct),
            n(x.robust_z),
            x.outlier.to_string(),
            x.group_boards.to_string(),
            t(x.measured_at),
            x.run_id.clone(),
        ]);
    }
    lines(&header, &rows)
}

/// A record filled by column name, every other column empty.
struct Record<'h> {
    header: &'h [&'h str],
    cells: Vec<String>,
}

impl<'h> Record<'h> {
    fn new(header: &'h [&'h str], record: &str) -> Record<'h> {
        let mut cells = vec![String::new(); header.len()];
        if let Some(c) = cells.first_mut() {
            *c = record.to_string();
        }
        Record { header, cells }
    }

    /// Sets a column by name; a name not in the header is a bug in this file (the tests
    /// render every record kind), so it panics in debug builds and is left out otherwise.
    fn set(mut self, column: &str, value: impl Into<String>) -> Record<'h> {
        match self.header.iter().position(|h| *h == column) {
            Some(i) => self.cells[i] = value.into(),
            None => debug_assert!(false, "csv column '{column}' is not in the header"),
        }
        self
    }
}

fn drift(d: &DriftReport) -> String {
    let header = [
        "record",
        "group",
        "agent_id",
        "hostname",
        "framework",
        "figure",
        "unit",
        "at",
        "value",
        "baseline",
        "current",
        "change_pct",
        "threshold_pct",
        "kind",
        "p_value",
        "significant",
        "state",
        "env_key",
        "previous_env_key",
        "nights",
        "run_id",
        "campaign_id",
        "alert_id",
        "members",
        "detail",
    ];
    let mut rows = group_rows(&d.groups, &header);
    for s in &d.series {
        let base = |record: &str| {
            Record::new(&header, record)
                .set("group", &s.group_key)
                .set("agent_id", &s.agent_id)
                .set("hostname", &s.hostname)
                .set("framework", &s.framework)
                .set("figure", &s.figure)
                .set("unit", &s.unit)
        };
        let latest = s.points.last();
        let mut row = base("series")
            .set("at", latest.map_or(String::new(), |p| t(p.at)))
            .set("value", on(s.latest))
            .set("baseline", on(s.baseline))
            .set("current", on(s.latest))
            .set("change_pct", on(s.latest_change_pct))
            .set("threshold_pct", n(s.threshold_pct))
            .set("nights", s.points.len().to_string())
            .set(
                "run_id",
                latest.map_or(String::new(), |p| p.run_id.to_string()),
            );
        if let Some(f) = &s.finding {
            row = row
                .set("kind", f.kind.as_str())
                .set("p_value", n(f.p_value))
                .set("significant", f.significant.to_string());
        }
        rows.push(row.cells);
        if let Some(f) = &s.finding {
            rows.push(
                base("finding")
                    .set("at", t(f.began_at))
                    .set("baseline", n(f.baseline))
                    .set("current", n(f.current))
                    .set("change_pct", n(f.change_pct))
                    .set("threshold_pct", n(f.threshold_pct))
                    .set("kind", f.kind.as_str())
                    .set("p_value", n(f.p_value))
                    .set("significant", f.significant.to_string())
                    .set("run_id", &*f.began_run_id)
                    .set("detail", format!("latest run {}", f.run_id))
                    .cells,
            );
        }
        for p in s.periods.iter().skip(1) {
            rows.push(
                base("period")
                    .set("at", t(p.start_at))
                    .set("env_key", p.env_key.as_deref().unwrap_or_default())
                    .set(
                        "previous_env_key",
                        p.previous_env_key.as_deref().unwrap_or_default(),
                    )
                    .set("nights", p.nights.to_string())
                    .set("run_id", &*p.start_run_id)
                    .cells,
            );
        }
        for p in &s.points {
            rows.push(
                base("night")
                    .set("at", t(p.at))
                    .set("value", n(p.value))
                    .set("env_key", p.env_key.as_deref().unwrap_or_default())
                    .set("run_id", &*p.run_id)
                    .set("campaign_id", &*p.campaign_id)
                    .cells,
            );
        }
    }
    for a in &d.alerts {
        rows.push(
            Record::new(&header, "alert")
                .set("group", &a.group_key)
                .set("agent_id", &a.agent_id)
                .set("hostname", &a.hostname)
                .set("framework", &a.framework)
                .set("figure", &a.figure)
                .set("at", t(a.began_at))
                .set("baseline", n(a.baseline))
                .set("current", n(a.current))
                .set("change_pct", n(a.change_pct))
                .set("kind", &a.kind)
                .set("state", a.state.as_str())
                .set("run_id", &a.run_id)
                .set(
                    "campaign_id",
                    a.confirm_campaign_id.clone().unwrap_or_default(),
                )
                .set("alert_id", &a.id)
                .set("detail", &a.message)
                .cells,
        );
    }
    lines(&header, &rows)
}

fn anomalies(a: &AnomaliesReport) -> String {
    let header = [
        "record",
        "kind",
        "group",
        "agent_id",
        "hostname",
        "framework",
        "run_id",
        "campaign_id",
        "at",
        "value",
        "figures",
        "members",
        "detail",
    ];
    let mut rows = group_rows(&a.groups, &header);
    for i in &a.items {
        rows.push(vec![
            "anomaly".into(),
            i.kind.as_str().into(),
            i.group_key.clone().unwrap_or_default(),
            i.agent_id.clone(),
            i.hostname.clone(),
            i.framework.clone().unwrap_or_default(),
            i.run_id.clone().unwrap_or_default(),
            i.campaign_id.clone().unwrap_or_default(),
            i.at.map_or(String::new(), t),
            on(i.value),
            i.figures.join(";"),
            String::new(),
            i.detail.clone(),
        ]);
    }
    lines(&header, &rows)
}

fn roofline(f: &RooflineReport) -> String {
    let header = [
        "record",
        "group",
        "roof",
        "precision",
        "unit",
        "value",
        "best",
        "theoretical",
        "agent_id",
        "hostname",
        "framework",
        "operation",
        "size",
        "intensity",
        "run_ids",
        "members",
        "detail",
    ];
    let mut rows = group_rows(&f.groups, &header);
    for g in &f.rooflines {
        let roof = |kind: &str| {
            Record::new(&header, "roof")
                .set("group", &g.group_key)
                .set("roof", kind)
        };
        if let Some(bw) = g.bandwidth_gbps {
            rows.push(
                roof("bandwidth")
                    .set("unit", "GB/s")
                    .set("value", n(bw))
                    .set("run_ids", g.bandwidth_run_ids.join(";"))
                    .cells,
            );
        }
        for c in &g.compute {
            rows.push(
                roof("compute")
                    .set("precision", &c.precision)
                    .set("unit", &c.unit)
                    .set("value", n(c.gops))
                    .set("best", n(c.best_gops))
                    .set("theoretical", on(c.theoretical))
                    .set("run_ids", c.run_ids.join(";"))
                    .cells,
            );
        }
        for p in &g.points {
            rows.push(
                Record::new(&header, "point")
                    .set("group", &g.group_key)
                    .set("precision", &p.precision)
                    .set("unit", crate::fleet::headline::rate_unit(&p.precision))
                    .set("value", n(p.gops))
                    .set("agent_id", &p.agent_id)
                    .set("hostname", &p.hostname)
                    .set("framework", &p.framework)
                    .set("operation", &p.operation)
                    .set("size", p.size.to_string())
                    .set("intensity", n(p.intensity))
                    .set("run_ids", &p.run_id)
                    .cells,
            );
        }
    }
    lines(&header, &rows)
}
