//! Reports as plain-text tables that fit [`WIDTH`] columns: the groups (key, boards, facts)
//! first, then the report's rows. Cells too wide for their column end in `…`.

use crate::fleet::anomalies::AnomaliesReport;
use crate::fleet::boards::BoardsReport;
use crate::fleet::compare::CompareReport;
use crate::fleet::drift::DriftReport;
use crate::fleet::group::BoardGroup;
use crate::fleet::roofline::RooflineReport;
use crate::fleet::Report;

use super::{date, num, opt, pct};

/// The terminal width every table fits.
pub const WIDTH: usize = 100;
/// The narrowest a column is squeezed to.
const MIN_COLUMN: usize = 4;

/// Cuts a cell to `width` characters, ending in `…` when cut.
fn cut(cell: &str, width: usize) -> String {
    if cell.chars().count() <= width {
        return cell.to_string();
    }
    let mut s: String = cell.chars().take(width.saturating_sub(1)).collect();
    s.push('…');
    s
}

/// Renders rows under a header, two spaces between columns, no trailing spaces, squeezing
/// the widest columns until a line fits [`WIDTH`].
pub fn fit(header: &[&str], rows: &[Vec<String>]) -> String {
    fit_flex(header, rows, &[])
}

/// [`fit`], squeezing the columns `flex` (host names, details) first.
pub fn fit_flex(header: &[&str], rows: &[Vec<String>], flex: &[usize]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let gaps = 2 * widths.len().saturating_sub(1);
    while widths.iter().sum::<usize>() + gaps > WIDTH {
        let widest_flex = flex
            .iter()
            .filter_map(|i| widths.get(*i).map(|w| (*i, *w)))
            .filter(|(_, w)| *w > MIN_COLUMN)
            .max_by_key(|(_, w)| *w);
        if let Some((i, w)) = widest_flex {
            widths[i] = w - 1;
            continue;
        }
        let Some((i, w)) = widths.iter().enumerate().max_by_key(|(_, w)| **w) else {
            break;
        };
        if *w <= MIN_COLUMN {
            break;
        }
        widths[i] = w - 1;
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let w = widths.get(i).copied().unwrap_or(0);
            let c = cut(c, w);
            if i > 0 {
                s.push_str("  ");
            }
            s.push_str(&c);
            if i + 1 < cells.len() {
                s.push_str(&" ".repeat(w.saturating_sub(c.chars().count())));
            }
        }
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// The longest a host name is shown in a group's member list.
const HOST: usize = 40;

/// The groups: each one's key, board count and facts on a line, then its boards (host
/// names), wrapped to [`WIDTH`].
fn groups(gs: &[BoardGroup]) -> String {
    let mut out = String::new();
    for g in gs {
        let head = format!("group {}  {} board(s)  ", g.key, g.members.len());
        let room = WIDTH.saturating_sub(head.chars().count());
        out.push_str(&head);
        out.push_str(&cut(&g.label, room));
        out.push('\n');
        let mut line = String::from("  boards:");
        for m in &g.members {
            let host = cut(&m.hostname, HOST);
            if line.chars().count() + 1 + host.chars().count() > WIDTH {
                out.push_str(&line);
                out.push('\n');
                line = String::from("         ");
            }
            line.push(' ');
            line.push_str(&host);
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// A report as a table.
pub fn report(r: &Report) -> String {
    let body = match r {
        Report::Compare(c) => compare(c),
        Report::Boards(b) => boards(b),
        Report::Drift(d) => drift(d),
        Report::Anomalies(a) => anomalies(a),
        Report::Roofline(f) => roofline(f),
    };
    format!("{}\n{body}", groups(r.groups()))
}

fn compare(c: &CompareReport) -> String {
    let heads: Vec<Vec<String>> = c
        .headlines
        .iter()
        .map(|h| {
            vec![
                h.group_key.clone(),
                if h.precision.is_empty() {
                    h.figure.clone()
                } else {
                    format!("{} {}", h.figure, h.precision)
                },
                h.unit.clone(),
                num(h.numpy),
                num(h.pytorch),
                format!("{:.3}", h.ratio_median),
                format!("{:.3}", h.ratio_mad),
                format!("{:.1}%", h.noise_floor_pct),
                h.winner.as_str().to_string(),
                if h.by_pct > 0.0 {
                    format!("{:.1}%", h.by_pct)
                } else {
                    "-".into()
                },
                h.boards.to_string(),
            ]
        })
        .collect();
    let rows: Vec<Vec<String>> = c
        .rows
        .iter()
        .map(|x| {
            vec![
                x.group_key.clone(),
                x.operation.clone(),
                x.precision.clone(),
                x.size.to_string(),
                num(x.numpy_best),
                opt(x.numpy_median),
                num(x.pytorch_best),
                opt(x.pytorch_median),
                format!("{:.3}", x.ratio_median),
                format!("{:.2}-{:.2}", x.ratio_min, x.ratio_max),
                x.boards.len().to_string(),
            ]
        })
        .collect();
    format!(
        "{}\n{}",
        fit(
            &[
                "GROUP", "HEADLINE", "UNIT", "NUMPY", "PYTORCH", "PT/NP", "MAD", "NOISE", "WINNER",
                "BY", "N"
            ],
            &heads
        ),
        fit(
            &[
                "GROUP", "OP", "PREC", "SIZE", "NP BEST", "NP MED", "PT BEST", "PT MED", "PT/NP",
                "RANGE", "N"
            ],
            &rows
        )
    )
}

fn boards(b: &BoardsReport) -> String {
    let mut out = String::new();
    for g in &b.groups {
        let rows: Vec<Vec<String>> = b
            .rows
            .iter()
            .filter(|x| x.group_key == g.key)
            .map(|x| {
                vec![
                    x.hostname.clone(),
                    x.framework.clone(),
                    x.figure.clone(),
                    num(x.value),
                    x.unit.clone(),
                    x.efficiency
                        .map_or("-".into(), |e| format!("{:.0}%", e * 100.0)),
                    num(x.group_median),
                    pct(x.vs_group_pct),
                    format!("{:+.1}", x.robust_z),
                    if x.outlier {
                        "OUTLIER".into()
                    } else {
                        String::new()
                    },
                ]
            })
            .collect();
        if rows.is_empty() {
            continue;
        }
        out.push_str(&format!("group {}\n", g.key));
        out.push_str(&fit_flex(
            &[
                "BOARD", "FW", "FIGURE", "VALUE", "UNIT", "EFF", "GRP MED", "VS GRP", "Z", "",
            ],
            &rows,
            &[0],
        ));
        out.push('\n');
    }
    out
}

fn drift(d: &DriftReport) -> String {
    let rows: Vec<Vec<String>> = d
        .series
        .iter()
        .map(|s| {
            let (drop, since) = s
                .finding
                .as_ref()
                .map_or((String::new(), String::new()), |f| {
                    (
                        format!(
                            "{}{}",
                            f.kind.as_str(),
                            if f.significant { "" } else { "?" }
                        ),
                        date(f.began_at),
                    )
                });
            vec![
                s.hostname.clone(),
                s.framework.clone(),
                s.figure.clone(),
                s.points.len().to_string(),
                opt(s.baseline),
                opt(s.latest),
                s.latest_change_pct.map_or("-".into(), pct),
                format!("{:.1}%", s.threshold_pct),
                drop,
                since,
            ]
        })
        .collect();
    let mut out = fit_flex(
        &[
            "BOARD", "FW", "FIGURE", "N", "BASELINE", "LATEST", "CHANGE", "NOISE", "DROP", "SINCE",
        ],
        &rows,
        &[0],
    );
    let markers: Vec<Vec<String>> = d
        .series
        .iter()
        .flat_map(|s| {
            s.periods.iter().skip(1).map(move |p| {
                vec![
                    s.hostname.clone(),
                    s.framework.clone(),
                    s.figure.clone(),
                    date(p.start_at),
                    p.previous_env_key
                        .as_deref()
                        .unwrap_or_default()
                        .to_string(),
                    p.env_key.as_deref().unwrap_or_default().to_string(),
                ]
            })
        })
        .collect();
    if !markers.is_empty() {
        out.push('\n');
        out.push_str(&fit_flex(
            &["BOARD", "FW", "FIGURE", "NEW PERIOD", "FROM ENV", "TO ENV"],
            &markers,
            &[4, 5, 0],
        ));
    }
    if !d.alerts.is_empty() {
        let alerts: Vec<Vec<String>> = d
            .alerts
            .iter()
            .map(|a| {
                vec![
                    a.id.chars().take(8).collect(),
                    a.state.as_str().to_string(),
                    a.hostname.clone(),
                    a.framework.clone(),
                    a.figure.clone(),
                    a.kind.clone(),
                    num(a.baseline),
                    num(a.current),
                    pct(a.change_pct),
                    date(a.began_at),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&fit_flex(
            &[
                "ALERT", "STATE", "BOARD", "FW", "FIGURE", "KIND", "BASELINE", "CURRENT", "CHANGE",
                "BEGAN",
            ],
            &alerts,
            &[2, 4],
        ));
    }
    out
}

fn anomalies(a: &AnomaliesReport) -> String {
    if a.items.is_empty() {
        return "no anomalies\n".to_string();
    }
    let rows: Vec<Vec<String>> = a
        .items
        .iter()
        .map(|i| {
            vec![
                i.kind.as_str().to_string(),
                i.hostname.clone(),
                i.framework.clone().unwrap_or_default(),
                i.at.map_or("-".into(), date),
                i.run_id
                    .as_deref()
                    .map_or("-".into(), |r| r.chars().take(8).collect()),
                i.detail.clone(),
            ]
        })
        .collect();
    fit_flex(
        &["KIND", "BOARD", "FW", "WHEN", "RUN", "DETAIL"],
        &rows,
        &[5, 1],
    )
}

fn roofline(f: &RooflineReport) -> String {
    let mut rows = Vec::new();
    for g in &f.rooflines {
        if let Some(bw) = g.bandwidth_gbps {
            rows.push(vec![
                g.group_key.clone(),
                "bandwidth".into(),
                num(bw),
                "GB/s".into(),
                "-".into(),
                "-".into(),
                g.bandwidth_run_ids.len().to_string(),
            ]);
        }
        for c in &g.compute {
            rows.push(vec![
                g.group_key.clone(),
                format!("compute {}", c.precision),
                num(c.gops),
                c.unit.clone(),
                num(c.best_gops),
                opt(c.theoretical),
                c.run_ids.len().to_string(),
            ]);
        }
        let ridge = g
            .compute
            .first()
            .zip(g.bandwidth_gbps)
            .map(|(c, bw)| c.gops / bw);
        if let Some(r) = ridge.filter(|r| r.is_finite()) {
            rows.push(vec![
                g.group_key.clone(),
                "ridge (FLOP/B)".into(),
                num(r),
                String::new(),
                String::new(),
                String::new(),
                format!("{} pts", g.points.len()),
            ]);
        }
    }
    fit(
        &["GROUP", "ROOF", "MEDIAN", "UNIT", "BEST", "THEORY", "N"],
        &rows,
    )
}
