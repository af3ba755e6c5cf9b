//! Report models as self-contained web pages (maud templates): inline CSS, inline SVG plots
//! ([`super::plot`]), no script, nothing from another host; readable without JavaScript and
//! offline. The coordinator's web side serves them, and `fleetctl report --format html`
//! writes the same [`report_page`].

use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::plot::{self, Bars, DriftLine, Reference, Roof, RoofPoint};
use super::{num, opt, pct};
use crate::aggregate::RunCounts;
use crate::fleet::anomalies::AnomaliesReport;
use crate::fleet::boards::BoardsReport;
use crate::fleet::compare::CompareReport;
use crate::fleet::drift::{DriftReport, DriftSeries};
use crate::fleet::roofline::RooflineReport;
use crate::fleet::{AlertRecord, AlertState, BoardGroup, Report, ReportQuery};
use crate::model::{Millis, RunState};

/// What the overview says of a board without a result in the reports' default window (it
/// reads the last [`crate::fleet::ReportQuery::DEFAULT_NIGHTS`] nights).
const NONE_IN_WINDOW: &str = "none in 30 nights";

/// The most plots one page draws (the tables list everything).
pub const MAX_PLOTS: usize = 24;

/// One board as the overview lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct BoardStatus {
    /// Its id.
    pub agent_id: String,
    /// Host name.
    pub hostname: String,
    /// Effective preset.
    pub preset: String,
    /// Online now.
    pub online: bool,
    /// Last contact.
    pub last_seen: Millis,
    /// Its latest stored result's measurement time.
    pub last_calibrated: Option<Millis>,
    /// Its board group, once it has results.
    pub group_key: Option<String>,
}

/// One campaign as the overview lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignStatus {
    /// Its id.
    pub id: String,
    /// Created.
    pub created_at: Millis,
    /// The schedule that fired it, if one did.
    pub schedule: Option<String>,
    /// Its runs by state.
    pub counts: RunCounts,
}

/// What the overview (`/`) shows.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetStatus {
    /// Every registered board.
    pub boards: Vec<BoardStatus>,
    /// Alerts that stand (open, acknowledged), newest first.
    pub alerts: Vec<AlertRecord>,
    /// The latest campaigns, newest first.
    pub campaigns: Vec<CampaignStatus>,
}

/// One board's page (`/boards/{agent_id}`).
#[derive(Debug, Clone, PartialEq)]
pub struct BoardPage {
    /// Its id.
    pub agent_id: String,
    /// Its status, when it is registered.
    pub status: Option<BoardStatus>,
    /// Its drift series and alerts.
    pub drift: Report,
}

const STYLE: &str = r#"
:root{color-scheme:light}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;color:#1d232a;background:#f4f6f8;font-size:15px;line-height:1.4}
header{background:#1d2b3a;color:#fff;padding:10px 24px;display:flex;gap:24px;align-items:baseline;flex-wrap:wrap}
header b{font-size:18px}
header a{color:#cfe3ff;text-decoration:none;margin-right:14px}
header a.on{color:#fff;border-bottom:2px solid #fff}
main{padding:16px 24px;max-width:1180px}
h1{font-size:22px;margin:8px 0 12px}
h2{font-size:18px;margin:22px 0 8px}
h3{font-size:15px;margin:14px 0 6px}
table{border-collapse:collapse;background:#fff;margin:6px 0 14px;font-size:13px}
th,td{border:1px solid #d7dde3;padding:4px 8px;text-align:left;vertical-align:top;white-space:nowrap}
td.w{white-space:normal;min-width:200px}
th{background:#e9eef3}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:8px 0 16px}
.card{background:#fff;border:1px solid #d7dde3;border-radius:6px;padding:10px 16px;min-width:140px}
.card .v{font-size:26px;font-weight:600}
.ok{color:#17803d}.bad{color:#c81e1e}.warn{color:#b45309}.muted{color:#5b6670}
.plots{display:flex;flex-wrap:wrap;gap:12px}
figure.plot{background:#fff;border:1px solid #d7dde3;border-radius:6px;margin:0;padding:6px;max-width:100%}
figure.plot svg{max-width:100%;height:auto;display:block}
figcaption{font-size:12px;color:#5b6670;padding:2px 4px;max-width:530px}
form.q{background:#fff;border:1px solid #d7dde3;border-radius:6px;padding:8px 12px;display:flex;gap:10px;flex-wrap:wrap;align-items:end;margin-bottom:10px}
form.q label{font-size:12px;color:#5b6670;display:flex;flex-direction:column}
form.q input{font-size:13px;padding:3px 5px;width:150px}
code{font-size:12px}
footer{padding:12px 24px;color:#5b6670;font-size:12px}
"#;

/// The report pages, in the navigation's order.
const NAV: [(&str, &str); 5] = [
    ("compare", "NumPy vs PyTorch"),
    ("boards", "Boards"),
    ("drift", "Drift"),
    ("anomalies", "Anomalies"),
    ("roofline", "Roofline"),
];

fn layout(title: &str, active: &str, now: Millis, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · fleetcal" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    b { "fleetcal" }
                    nav {
                        a href="/" class=[(active == "overview").then_some("on")] { "Overview" }
                        @for (kind, name) in NAV {
                            a href={ "/reports/" (kind) } class=[(active == kind).then_some("on")] { (name) }
                        }
                        a href="/metrics" { "Metrics" }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
                footer { "generated " (time(now)) " by the fleetcal coordinator" }
            }
        }
    }
    .into_string()
}

/// A UTC time (`2026-11-29 18:31 UTC`).
pub fn time(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "—".into())
}

/// How long ago (`5 s`, `3 min`, `2 h`, `4 d`).
pub fn age(now: Millis, then: Millis) -> String {
    let s = now.saturating_sub(then).max(0) / 1000;
    match s {
        0..60 => format!("{s} s ago"),
        60..3600 => format!("{} min ago", s / 60),
        3600..86_400 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// A plot in a figure, or the reason it was not drawn.
fn figure(name: &str, caption: &str, svg: Result<String, plot::PlotError>) -> Markup {
    html! {
        figure.plot data-plot=(name) {
            @match svg {
                Ok(svg) => (PreEscaped(svg)),
                Err(why) => p.muted { "no plot: " (why) },
            }
            figcaption { (caption) }
        }
    }
}

fn board_link(agent_id: &str, hostname: &str) -> Markup {
    html! { a href={ "/boards/" (agent_id) } { (hostname) } }
}

fn groups_table(groups: &[BoardGroup]) -> Markup {
    html! {
        h2 { "Board groups" }
        @if groups.is_empty() {
            p.muted { "No stored results match." }
        } @else {
            table {
                tr { th { "group" } th { "hardware and libraries" } th { "boards" } }
                @for g in groups {
                    tr {
                        td { code { (g.key) } }
                        td.w { (g.label) }
                        td.w {
                            @for (i, m) in g.members.iter().enumerate() {
                                @if i > 0 { ", " }
                                (board_link(&m.agent_id, &m.hostname))
                            }
                        }
                    }
                }
            }
        }
    }
}

fn alerts_table(alerts: &[AlertRecord]) -> Markup {
    html! {
        @if alerts.is_empty() {
            p.muted { "No alerts." }
        } @else {
            table {
                tr {
                    th { "alert" } th { "state" } th { "board" } th { "figure" } th { "baseline" }
                    th { "current" } th { "change" } th { "kind" } th { "began" }
                }
                @for a in alerts {
                    tr {
                        td { code { (short_id(&a.id)) } }
                        td.bad[a.state.is_live()] { (a.state.as_str()) }
                        td { (board_link(&a.agent_id, &a.hostname)) }
                        td { (a.figure) " (" (a.framework) ")" }
                        td.n { (num(a.baseline)) }
                        td.n { (num(a.current)) }
                        td.n { (pct(a.change_pct)) }
                        td { (a.kind) }
                        td { (time(a.began_at)) }
                    }
                }
            }
        }
    }
}

/// The narrowing form of a report page (GET, no script) and the same data as JSON and CSV.
fn query_form(action: &str, q: &ReportQuery) -> Markup {
    let select = q
        .fleet
        .select
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut link = Vec::new();
    if !select.is_empty() {
        link.push(format!("select={}", urlish(&select)));
    }
    if let Some(g) = &q.group {
        link.push(format!("group={}", urlish(g)));
    }
    if let Some(n) = q.nights {
        link.push(format!("nights={n}"));
    }
    if let Some(since) = q.fleet.since {
        link.push(format!("since={}", urlish(&rfc3339(since))));
    }
    if let Some(b) = &q.fleet.agent_id {
        link.push(format!("board={}", urlish(b)));
    }
    if let Some(s) = &q.fleet.schedule {
        link.push(format!("schedule={}", urlish(s)));
    }
    if let Some(f) = &q.fleet.framework {
        link.push(format!("framework={}", urlish(f)));
    }
    let base = link.join("&");
    let with = |format: &str| {
        if base.is_empty() {
            format!("{action}?format={format}")
        } else {
            format!("{action}?{base}&format={format}")
        }
    };
    html! {
        form.q method="get" action=(action) {
            label { "select (k=v,…)" input type="text" name="select" value=(select); }
            label { "group" input type="text" name="group" value=[q.group.as_deref()]; }
            label { "nights" input type="text" name="nights" value=[q.nights]; }
            button type="submit" { "Show" }
            span { "Same data: " a href=(with("json")) { "JSON" } " · " a href=(with("csv")) { "CSV" } }
        }
    }
}

fn rfc3339(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Percent-encodes what a query value must not carry raw.
fn urlish(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'=' | b',' | b':')
        {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The fleet overview: boards online and offline, last calibration, alerts, campaigns.
pub fn overview_page(s: &FleetStatus, now: Millis) -> String {
    let online = s.boards.iter().filter(|b| b.online).count();
    let offline = s.boards.len() - online;
    let newest = s.boards.iter().filter_map(|b| b.last_calibrated).max();
    let open = s.alerts.len();
    let body = html! {
        div.cards {
            div.card { div.v.ok { (online) } "boards online" }
            div.card { div.v.bad[offline > 0] { (offline) } "boards offline" }
            div.card { div.v.bad[open > 0] { (open) } "open alerts" }
            div.card {
                div.v { (newest.map_or_else(|| NONE_IN_WINDOW.to_string(), |t| age(now, t))) }
                "latest calibration"
            }
        }
        h2 { "Boards" }
        @if s.boards.is_empty() {
            p.muted { "No board has registered yet." }
        } @else {
            table {
                tr {
                    th { "board" } th { "state" } th { "preset" } th { "group" }
                    th { "last seen" } th { "last calibration" }
                }
                @for b in &s.boards {
                    tr {
                        td { (board_link(&b.agent_id, &b.hostname)) }
                        td {
                            @if b.online { span.ok { "online" } } @else { span.bad { "offline" } }
                        }
                        td { (b.preset) }
                        td { code { (b.group_key.as_deref().unwrap_or("—")) } }
                        td { (age(now, b.last_seen)) }
                        td {
                            @match b.last_calibrated {
                                Some(t) => { (age(now, t)) " " span.muted { "(" (time(t)) ")" } }
                                None => span.warn { (NONE_IN_WINDOW) },
                            }
                        }
                    }
                }
            }
        }
        h2 { "Open alerts" }
        (alerts_table(&s.alerts))
        h2 { "Latest campaigns" }
        @if s.campaigns.is_empty() {
            p.muted { "No campaign yet." }
        } @else {
            table {
                tr {
                    th { "campaign" } th { "created" } th { "schedule" }
                    @for st in RunState::ALL { th { (st.as_str()) } }
                }
                @for c in &s.campaigns {
                    tr {
                        td { code { (short_id(&c.id)) } }
                        td { (time(c.created_at)) }
                        td { (c.schedule.as_deref().unwrap_or("—")) }
                        @for st in RunState::ALL {
                            td.n { (c.counts.get(&st).copied().unwrap_or(0)) }
                        }
                    }
                }
            }
        }
        h2 { "Reports" }
        ul {
            @for (kind, name) in NAV {
                li { a href={ "/reports/" (kind) } { (name) } }
            }
        }
    };
    layout("Fleet overview", "overview", now, body)
}

/// A report as a page: the narrowing form, its plots and tables, its groups.
pub fn report_page(report: &Report, q: &ReportQuery, now: Millis) -> String {
    let kind = report.kind();
    let title = NAV
        .iter()
        .find(|(k, _)| *k == kind.as_str())
        .map_or(kind.as_str(), |(_, n)| *n);
    let action = format!("/reports/{}", kind.as_str());
    let body = html! {
        (query_form(&action, q))
        @match report {
            Report::Compare(r) => (compare_body(r)),
            Report::Boards(r) => (boards_body(r)),
            Report::Drift(r) => (drift_body(r)),
            Report::Anomalies(r) => (anomalies_body(r)),
            Report::Roofline(r) => (roofline_body(r)),
        }
        (groups_table(report.groups()))
    };
    layout(title, kind.as_str(), now, body)
}

fn compare_body(r: &CompareReport) -> Markup {
    // One plot per group and unit (GFLOPS/GIOPS peaks per precision; GB/s bandwidth).
    let mut plots: Vec<(&str, &str)> = r
        .headlines
        .iter()
        .map(|h| (h.group_key.as_str(), h.unit.as_str()))
        .collect();
    // Rates (GIOPS, GFLOPS) before bandwidth (GB/s).
    plots.sort_unstable_by(|a, b| a.0.cmp(b.0).then(b.1.cmp(a.1)));
    plots.dedup();
    html! {
        h2 { "Headlines" }
        @if r.headlines.is_empty() {
            p.muted { "No board has NumPy and PyTorch results from one campaign." }
        } @else {
            div.plots {
                @for (g, unit) in plots.iter().take(MAX_PLOTS) {
                    @let hs: Vec<_> = r.headlines.iter().filter(|h| h.group_key == *g && h.unit == *unit).collect();
                    @let cats: Vec<String> = hs.iter().map(|h| if h.precision.is_empty() { short_figure(&h.figure).to_string() } else { format!("{} {}", short_figure(&h.figure), h.precision) }).collect();
                    (figure("compare", &format!("NumPy vs PyTorch in {unit}, group {g}: each framework's figure over the group's boards"), plot::grouped_bars(
                        &format!("NumPy vs PyTorch · {g}"),
                        unit,
                        &cats,
                        &[
                            Bars { name: "NumPy".into(), color: plot::NUMPY, values: hs.iter().map(|h| Some(h.numpy)).collect() },
                            Bars { name: "PyTorch".into(), color: plot::PYTORCH, values: hs.iter().map(|h| Some(h.pytorch)).collect() },
                        ],
                        &[],
                    )))
                }
            }
            table {
                tr {
                    th { "group" } th { "figure" } th { "precision" } th { "NumPy" } th { "PyTorch" }
                    th { "unit" } th { "PyTorch/NumPy" } th { "spread (MAD)" } th { "winner" } th { "by" } th { "boards" }
                }
                @for h in &r.headlines {
                    tr {
                        td { code { (h.group_key) } }
                        td { (h.figure) }
                        td { (h.precision) }
                        td.n { (num(h.numpy)) }
                        td.n { (num(h.pytorch)) }
                        td { (h.unit) }
                        td.n { (format!("{:.2}×", h.ratio_median)) }
                        td.n { (format!("±{:.2}", h.ratio_mad)) }
                        td { (h.winner.as_str()) }
                        td.n { (format!("{:.1} %", h.by_pct)) }
                        td.n { (h.boards) }
                    }
                }
            }
        }
        h2 { "Per operation, precision and size" }
        @if r.rows.is_empty() {
            p.muted { "No pairs." }
        } @else {
            table {
                tr {
                    th { "group" } th { "operation" } th { "precision" } th { "size" }
                    th { "NumPy best" } th { "PyTorch best" } th { "unit" } th { "ratio (median)" }
                    th { "min–max" } th { "boards" }
                }
                @for row in &r.rows {
                    tr {
                        td { code { (row.group_key) } }
                        td { (row.operation) }
                        td { (row.precision) }
                        td.n { (row.size) }
                        td.n { (num(row.numpy_best)) }
                        td.n { (num(row.pytorch_best)) }
                        td { (row.unit) }
                        td.n { (format!("{:.2}×", row.ratio_median)) }
                        td.n { (format!("{:.2}–{:.2}", row.ratio_min, row.ratio_max)) }
                        td.w {
                            @for (i, b) in row.boards.iter().enumerate() {
                                @if i > 0 { ", " }
                                (board_link(&b.agent_id, &b.hostname)) " " (format!("{:.2}×", b.ratio))
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `gemm_peak` → `gemm`, `stream_bandwidth` → `stream` (plot labels).
fn short_figure(figure: &str) -> &str {
    figure
        .strip_suffix("_peak")
        .or_else(|| figure.strip_suffix("_bandwidth"))
        .unwrap_or(figure)
}

fn boards_body(r: &BoardsReport) -> Markup {
    // One plot per (group, figure, framework), boards side by side against the group median.
    let mut keys: Vec<(&str, &str, &str)> = r
        .rows
        .iter()
        .map(|b| {
            (
                b.group_key.as_str(),
                b.figure.as_str(),
                b.framework.as_str(),
            )
        })
        .collect();
    keys.dedup();
    html! {
        h2 { "Each board against its group" }
        @if r.rows.is_empty() {
            p.muted { "No headline figures." }
        } @else {
            div.plots {
                @for (g, f, fw) in keys.iter().take(MAX_PLOTS) {
                    @let rows: Vec<_> = r.rows.iter().filter(|b| b.group_key == *g && b.figure == *f && b.framework == *fw).collect();
                    @let cats: Vec<String> = rows.iter().map(|b| b.hostname.clone()).collect();
                    @let unit = rows.first().map_or("", |b| b.unit.as_str());
                    @let eff = rows.iter().all(|b| b.efficiency.is_some());
                    @let median = rows.first().map(|b| b.group_median);
                    @let theoretical = rows.iter().find_map(|b| b.theoretical);
                    @let scale = |v: f64, b: &crate::fleet::boards::BoardFigure| if eff { b.theoretical.map_or(v, |t| if t > 0.0 { v / t * 100.0 } else { v }) } else { v };
                    (figure("boards", &format!("{f} ({fw}) per board, group {g}; red: outlier"), plot::grouped_bars(
                        &format!("{f} ({fw}) · {g}"),
                        if eff && theoretical.is_some() { "% of theoretical" } else { unit },
                        &cats,
                        &[
                            Bars { name: "board".into(), color: plot::NUMPY, values: rows.iter().map(|b| (!b.outlier).then(|| scale(b.value, b))).collect() },
                            Bars { name: "outlier".into(), color: plot::ALERT, values: rows.iter().map(|b| b.outlier.then(|| scale(b.value, b))).collect() },
                        ],
                        &median.map(|m| Reference { name: "group median".into(), value: rows.first().map_or(m, |b| scale(m, b)) }).into_iter().collect::<Vec<_>>(),
                    )))
                }
            }
            table {
                tr {
                    th { "group" } th { "board" } th { "framework" } th { "figure" } th { "value" } th { "unit" }
                    th { "efficiency" } th { "group median" } th { "vs group" } th { "robust z" } th { "outlier" }
                }
                @for b in &r.rows {
                    tr {
                        td { code { (b.group_key) } }
                        td { (board_link(&b.agent_id, &b.hostname)) }
                        td { (b.framework) }
                        td { (b.figure) }
                        td.n { (num(b.value)) }
                        td { (b.unit) }
                        td.n { (b.efficiency.map_or_else(|| "—".into(), |e| format!("{:.0} %", e * 100.0))) }
                        td.n { (num(b.group_median)) }
                        td.n.bad[b.outlier] { (pct(b.vs_group_pct)) }
                        td.n { (format!("{:.1}", b.robust_z)) }
                        td.bad[b.outlier] { @if b.outlier { "outlier" } }
                    }
                }
            }
        }
    }
}

fn drift_plot(s: &DriftSeries, alerts: &[AlertRecord]) -> Markup {
    let starts: Vec<Millis> = s.periods.iter().skip(1).map(|p| p.start_at).collect();
    // Only a confirmed drop (open or acknowledged) is an alert; a stored suspicion awaiting
    // its confirmation run, or a significant finding with no stored alert yet, is drawn as
    // a suspicion.
    let mine = |a: &&AlertRecord| {
        a.agent_id == s.agent_id && a.framework == s.framework && a.figure == s.figure
    };
    let marks: Vec<(Millis, f64)> = alerts
        .iter()
        .filter(mine)
        .filter(|a| matches!(a.state, AlertState::Open | AlertState::Acknowledged))
        .map(|a| (a.began_at, a.current))
        .collect();
    let mut suspects: Vec<(Millis, f64)> = alerts
        .iter()
        .filter(mine)
        .filter(|a| a.state == AlertState::Suspected)
        .map(|a| (a.began_at, a.current))
        .collect();
    if let Some(f) = s.finding.as_ref().filter(|f| f.significant) {
        if marks.is_empty() && suspects.is_empty() {
            suspects.push((f.began_at, f.current));
        }
    }
    figure(
        "drift",
        &format!(
            "{} {} ({}): nights, baseline (dashed), new periods (grey), confirmed alerts (red), \
             suspected drops (orange)",
            s.hostname, s.figure, s.framework
        ),
        plot::drift_lines(
            &format!("{} · {} ({})", s.hostname, s.figure, s.framework),
            &s.unit,
            &[DriftLine {
                name: s.framework.clone(),
                points: s.points.iter().map(|p| (p.at, p.value)).collect(),
            }],
            s.baseline,
            &starts,
            &marks,
            &suspects,
        ),
    )
}

fn drift_table(r: &DriftReport) -> Markup {
    html! {
        table {
            tr {
                th { "board" } th { "framework" } th { "figure" } th { "nights" } th { "periods" }
                th { "baseline" } th { "latest" } th { "change" } th { "noise threshold" } th { "finding" }
            }
            @for s in &r.series {
                tr {
                    td { (board_link(&s.agent_id, &s.hostname)) }
                    td { (s.framework) }
                    td { (s.figure) }
                    td.n { (s.points.len()) }
                    td.n { (s.periods.len()) }
                    td.n { (opt(s.baseline)) }
                    td.n { (opt(s.latest)) }
                    td.n { (s.latest_change_pct.map_or_else(|| "—".into(), pct)) }
                    td.n { (format!("{:.1} %", s.threshold_pct)) }
                    td {
                        @if let Some(f) = &s.finding {
                            span.bad[f.significant] {
                                (f.kind.as_str()) " " (pct(f.change_pct)) " since " (time(f.began_at))
                                @if !f.significant { " (suspected)" }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn drift_body(r: &DriftReport) -> Markup {
    // Series with a finding first, then the rest, up to the plot limit.
    let mut order: Vec<&DriftSeries> = r.suspects().collect();
    order.extend(r.series.iter().filter(|s| s.finding.is_none()));
    html! {
        h2 { "Alerts" }
        (alerts_table(&r.alerts))
        h2 { "Each board over nights" }
        @if r.series.is_empty() {
            p.muted { "No nights." }
        } @else {
            div.plots {
                @for s in order.iter().take(MAX_PLOTS) { (drift_plot(s, &r.alerts)) }
            }
            (drift_table(r))
        }
    }
}

fn anomalies_body(r: &AnomaliesReport) -> Markup {
    let mut kinds: Vec<&str> = r.items.iter().map(|a| a.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let counts: Vec<Option<f64>> = kinds
        .iter()
        .map(|k| {
            let n = r.items.iter().filter(|a| a.kind.as_str() == *k).count();
            Some(f64::from(u32::try_from(n).unwrap_or(u32::MAX)))
        })
        .collect();
    let kinds: Vec<String> = kinds.iter().map(|k| (*k).to_string()).collect();
    html! {
        p { "Boards not calibrated for more than " (r.stale_days) " days are named." }
        @if r.items.is_empty() {
            p.ok { "No anomalies." }
        } @else {
            div.plots {
                (figure("anomalies", "anomalies by kind", plot::grouped_bars(
                    "Anomalies by kind", "count", &kinds,
                    &[Bars { name: "anomalies".into(), color: plot::ALERT, values: counts }], &[])))
            }
            table {
                tr {
                    th { "kind" } th { "board" } th { "framework" } th { "when" } th { "figures" }
                    th { "value" } th { "detail" } th { "run" }
                }
                @for a in &r.items {
                    tr {
                        td { (a.kind.as_str()) }
                        td { (board_link(&a.agent_id, &a.hostname)) }
                        td { (a.framework.as_deref().unwrap_or("—")) }
                        td { (a.at.map_or_else(|| "—".into(), time)) }
                        td.w { (a.figures.join(", ")) }
                        td.n { (opt(a.value)) }
                        td.w { (a.detail) }
                        td { code { (a.run_id.as_deref().map_or("—", short_id)) } }
                    }
                }
            }
        }
    }
}

fn roofline_body(r: &RooflineReport) -> Markup {
    html! {
        @if r.rooflines.is_empty() {
            p.muted { "No measured figures." }
        } @else {
            div.plots {
                @for g in r.rooflines.iter().take(MAX_PLOTS) {
                    (figure("roofline", &format!("roofline of group {}: compute roofs per precision, the bandwidth roof, each board's points", g.group_key), plot::roofline(
                        &format!("Roofline · {}", g.group_key),
                        g.bandwidth_gbps,
                        &g.compute.iter().map(|c| Roof { name: c.precision.clone(), gops: c.gops }).collect::<Vec<_>>(),
                        &g.points.iter().map(|p| RoofPoint { series: p.hostname.clone(), intensity: p.intensity, gops: p.gops }).collect::<Vec<_>>(),
                    )))
                }
            }
            table {
                tr { th { "group" } th { "bandwidth roof" } th { "precision" } th { "compute roof" } th { "best" } th { "theoretical" } }
                @for g in &r.rooflines {
                    @for c in &g.compute {
                        tr {
                            td { code { (g.group_key) } }
                            td.n { (g.bandwidth_gbps.map_or_else(|| "—".into(), |b| format!("{} GB/s", num(b)))) }
                            td { (c.precision) }
                            td.n { (num(c.gops)) " " (c.unit) }
                            td.n { (num(c.best_gops)) }
                            td.n { (opt(c.theoretical)) }
                        }
                    }
                }
            }
        }
    }
}

/// One board's page: its status, its alerts, its headline figures over nights.
pub fn board_page(p: &BoardPage, now: Millis) -> String {
    let name = p
        .status
        .as_ref()
        .map_or(p.agent_id.as_str(), |s| s.hostname.as_str());
    let body = html! {
        @if let Some(s) = &p.status {
            table {
                tr { th { "agent id" } td { code { (s.agent_id) } } }
                tr { th { "state" } td { @if s.online { span.ok { "online" } } @else { span.bad { "offline" } } } }
                tr { th { "preset" } td { (s.preset) } }
                tr { th { "group" } td { code { (s.group_key.as_deref().unwrap_or("—")) } } }
                tr { th { "last seen" } td { (age(now, s.last_seen)) } }
                tr { th { "last calibration" } td { (s.last_calibrated.map_or_else(|| format!("none in the last {} nights", crate::fleet::ReportQuery::DEFAULT_BOARD_NIGHTS), |t| format!("{} ({})", age(now, t), time(t)))) } }
            }
        } @else {
            p.warn { "This board is not registered (any more); its stored results are below." }
        }
        p {
            "Same data: "
            a href={ "/boards/" (p.agent_id) "?format=json" } { "JSON" } " · "
            a href={ "/boards/" (p.agent_id) "?format=csv" } { "CSV" }
        }
        @match &p.drift {
            Report::Drift(r) => {
                h2 { "Alerts" }
                (alerts_table(&r.alerts))
                h2 { "Headline figures over nights" }
                @if r.series.is_empty() {
                    p.muted { "No stored results." }
                } @else {
                    div.plots {
                        @for s in r.series.iter().take(MAX_PLOTS) { (drift_plot(s, &r.alerts)) }
                    }
                    (drift_table(r))
                }
            }
            other => p.muted { "unexpected report " (other.kind().as_str()) },
        }
    };
    layout(&format!("Board {name}"), "board", now, body)
}

#[cfg(test)]
#[path = "html_tests.rs"]
mod tests;
