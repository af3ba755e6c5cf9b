//! SVG plots for the web pages and `fleetctl report --format html`, drawn with plotters' SVG
//! backend (text is SVG `<text>` in the page's font: no font files are read). Pure: data in,
//! an `<svg>` string out. Values that are not finite (or not positive on a log axis) are left
//! out; a plot with nothing to draw is an error the page shows instead of the plot.

use plotters::prelude::*;

/// NumPy's colour in every plot.
pub const NUMPY: RGBColor = RGBColor(31, 119, 180);
/// PyTorch's colour in every plot.
pub const PYTORCH: RGBColor = RGBColor(230, 110, 20);
/// Alerts and outliers.
pub const ALERT: RGBColor = RGBColor(200, 30, 30);
/// A drop suspected but not confirmed (orange, drawn hollow).
pub const SUSPECT: RGBColor = RGBColor(230, 130, 10);
/// Reference lines (group median, baseline, roofs).
pub const REFERENCE: RGBColor = RGBColor(90, 90, 90);
/// Colours for series without a meaning of their own (boards, precisions).
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(230, 110, 20),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
    RGBColor(188, 189, 34),
];

/// The size of every plot, in SVG pixels.
pub const SIZE: (u32, u32) = (540, 290);

const FONT: &str = "sans-serif";

/// One series of bars: a name for the legend, a colour, one value per category.
#[derive(Debug, Clone)]
pub struct Bars {
    /// Legend name.
    pub name: String,
    /// Colour.
    pub color: RGBColor,
    /// One value per category; `None` draws no bar.
    pub values: Vec<Option<f64>>,
}

/// A horizontal reference line across a bar chart (a group median).
#[derive(Debug, Clone)]
pub struct Reference {
    /// Legend name.
    pub name: String,
    /// Its height.
    pub value: f64,
}

/// Why a plot was not drawn.
pub type PlotError = String;

fn err<E: std::fmt::Debug>(e: E) -> PlotError {
    format!("plot: {e:?}")
}

fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite())
}

/// A category label, shortened so bars stay readable.
fn short(label: &str, max: usize) -> String {
    if label.chars().count() <= max {
        label.to_string()
    } else {
        let cut: String = label.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// Grouped bars: per category, one bar per series side by side (NumPy vs PyTorch per
/// precision; a board's figure per board), and optional reference lines.
pub fn grouped_bars(
    title: &str,
    y_desc: &str,
    categories: &[String],
    series: &[Bars],
    references: &[Reference],
) -> Result<String, PlotError> {
    let n = categories.len();
    let top = series
        .iter()
        .flat_map(|s| s.values.iter().copied().filter_map(finite))
        .chain(references.iter().map(|r| r.value).filter(|v| v.is_finite()))
        .fold(f64::NEG_INFINITY, f64::max);
    if n == 0 || series.is_empty() || !top.is_finite() {
        return Err("nothing to plot".into());
    }
    // Headroom for the legend above the tallest bar.
    let top = if top > 0.0 { top * 1.45 } else { 1.0 };
    // The x axis counts thousandths of a category (integers format by default; a category's
    // label sits at its middle).
    let n_i = i32::try_from(n).map_err(err)?.saturating_mul(1000);
    let keys: Vec<i32> = (0..n_i).step_by(1000).map(|x| x + 500).collect();
    let labels: Vec<String> = categories
        .iter()
        .map(|c| short(c, if n > 8 { 10 } else { 18 }))
        .collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d((0..n_i).with_key_points(keys), 0.0..top)
            .map_err(err)?;
        let label_of = |x: &i32| {
            usize::try_from(x.div_euclid(1000))
                .ok()
                .and_then(|i| labels.get(i))
                .cloned()
                .unwrap_or_default()
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_label_formatter(&label_of)
            .y_desc(y_desc)
            .y_label_formatter(&|v| tick(*v, top))
            .label_style((FONT, 15))
            .light_line_style(TRANSPARENT)
            .draw()
            .map_err(err)?;
        // Series that never share a category (a board drawn as normal or as an outlier)
        // overlay in one full-width slot; others stand side by side.
        let overlay = (0..n).all(|i| {
            series
                .iter()
                .filter(|s| s.values.get(i).copied().flatten().is_some())
                .count()
                <= 1
        });
        let k = if overlay {
            1
        } else {
            i32::try_from(series.len()).map_err(err)?
        };
        let width = 800 / k;
        for (si, s) in series.iter().enumerate() {
            let color = s.color;
            let slot = if overlay {
                0
            } else {
                i32::try_from(si).map_err(err)?
            };
            let left = 100 + slot * width;
            let bars = s
                .values
                .iter()
                .zip((0..n_i).step_by(1000))
                .filter_map(|(v, x)| {
                    finite(*v).map(|v| {
                        let x0 = x + left;
                        Rectangle::new([(x0, 0.0), (x0 + width * 92 / 100, v)], color.filled())
                    })
                });
            chart
                .draw_series(bars)
                .map_err(err)?
                .label(s.name.clone())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
                });
        }
        for r in references.iter().filter(|r| r.value.is_finite()) {
            let style = REFERENCE.stroke_width(2);
            chart
                .draw_series(DashedLineSeries::new(
                    [(0, r.value), (n_i, r.value)],
                    6,
                    4,
                    style,
                ))
                .map_err(err)?
                .label(r.name.clone())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 12, y)], style));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font((FONT, 15))
            .background_style(WHITE.mix(0.85))
            .border_style(REFERENCE)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// One line of a drift plot: a board's headline figure over nights.
#[derive(Debug, Clone)]
pub struct DriftLine {
    /// Legend name.
    pub name: String,
    /// (time in ms since the epoch, value), oldest first.
    pub points: Vec<(i64, f64)>,
}

/// Drift over nights: the figure's line and points, the baseline (dashed), environment
/// changes as vertical markers (a new baseline period), confirmed alerts as red triangles
/// and drops that are suspected but not (yet) confirmed as hollow orange triangles.
pub fn drift_lines(
    title: &str,
    y_desc: &str,
    lines: &[DriftLine],
    baseline: Option<f64>,
    period_starts: &[i64],
    alerts: &[(i64, f64)],
    suspects: &[(i64, f64)],
) -> Result<String, PlotError> {
    let days = |ms: i64| ms_to_days(ms);
    let pts: Vec<(f64, f64)> = lines
        .iter()
        .flat_map(|l| l.points.iter())
        .filter(|(_, v)| v.is_finite())
        .map(|(t, v)| (days(*t), *v))
        .chain(
            alerts
                .iter()
                .chain(suspects)
                .filter(|(_, v)| v.is_finite())
                .map(|(t, v)| (days(*t), *v)),
        )
        .collect();
    if pts.is_empty() {
        return Err("nothing to plot".into());
    }
    let (mut x0, mut x1) = bounds(pts.iter().map(|p| p.0));
    let (mut y0, mut y1) = bounds(
        pts.iter()
            .map(|p| p.1)
            .chain(baseline.filter(|b| b.is_finite())),
    );
    // At least ten minutes wide, so a few runs close together still spread out.
    if x1 - x0 < 1.0 / 144.0 {
        let mid = (x0 + x1) / 2.0;
        x0 = mid - 1.0 / 288.0;
        x1 = mid + 1.0 / 288.0;
    }
    let pad = ((y1 - y0) * 0.15).max(y1.abs() * 0.05).max(1e-9);
    y0 = (y0 - pad).max(0.0);
    y1 += pad;
    let span = x1 - x0;
    x0 -= span * 0.03;
    x1 += span * 0.03;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_labels(6)
            .x_label_formatter(&|d| day_label(*d, x1 - x0))
            .y_desc(y_desc)
            .y_label_formatter(&|v| tick(*v, y1 - y0))
            .label_style((FONT, 15))
            .light_line_style(TRANSPARENT)
            .draw()
            .map_err(err)?;
        for &start in period_starts {
            let x = days(start);
            let style = REFERENCE.mix(0.7).stroke_width(1);
            chart
                .draw_series(DashedLineSeries::new([(x, y0), (x, y1)], 4, 4, style))
                .map_err(err)?;
        }
        if !period_starts.is_empty() {
            let style = REFERENCE.mix(0.7).stroke_width(1);
            chart
                .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())
                .map_err(err)?
                .label("new period (environment change)")
                .legend(move |(x, y)| PathElement::new([(x + 6, y - 6), (x + 6, y + 6)], style));
        }
        if let Some(b) = baseline.filter(|b| b.is_finite()) {
            let style = REFERENCE.stroke_width(2);
            chart
                .draw_series(DashedLineSeries::new([(x0, b), (x1, b)], 6, 4, style))
                .map_err(err)?
                .label("baseline")
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 12, y)], style));
        }
        for (i, line) in lines.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let data: Vec<(f64, f64)> = line
                .points
                .iter()
                .filter(|(_, v)| v.is_finite())
                .map(|(t, v)| (days(*t), *v))
                .collect();
            chart
                .draw_series(LineSeries::new(data.clone(), color.stroke_width(2)))
                .map_err(err)?
                .label(line.name.clone())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 12, y)], color.stroke_width(2))
                });
            chart
                .draw_series(data.into_iter().map(|p| Circle::new(p, 3, color.filled())))
                .map_err(err)?;
        }
        let alert_points: Vec<(f64, f64)> = alerts
            .iter()
            .filter(|(_, v)| v.is_finite())
            .map(|(t, v)| (days(*t), *v))
            .collect();
        if !alert_points.is_empty() {
            chart
                .draw_series(
                    alert_points
                        .into_iter()
                        .map(|p| TriangleMarker::new(p, 8, ALERT.filled())),
                )
                .map_err(err)?
                .label("alert")
                .legend(|(x, y)| TriangleMarker::new((x + 6, y), 6, ALERT.filled()));
        }
        let suspect_points: Vec<(f64, f64)> = suspects
            .iter()
            .filter(|(_, v)| v.is_finite())
            .map(|(t, v)| (days(*t), *v))
            .collect();
        if !suspect_points.is_empty() {
            let style = SUSPECT.stroke_width(2);
            chart
                .draw_series(
                    suspect_points
                        .into_iter()
                        .map(move |p| TriangleMarker::new(p, 8, style)),
                )
                .map_err(err)?
                .label("drop suspected, not confirmed")
                .legend(move |(x, y)| TriangleMarker::new((x + 6, y), 6, style));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerLeft)
            .label_font((FONT, 15))
            .background_style(WHITE.mix(0.85))
            .border_style(REFERENCE)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// One roof of a roofline: a precision's compute peak.
#[derive(Debug, Clone)]
pub struct Roof {
    /// Legend name (`fp32`).
    pub name: String,
    /// GFLOPS/GIOPS.
    pub gops: f64,
}

/// One measured point of a roofline.
#[derive(Debug, Clone)]
pub struct RoofPoint {
    /// Which series (a board) it belongs to.
    pub series: String,
    /// Operations per byte.
    pub intensity: f64,
    /// GFLOPS/GIOPS.
    pub gops: f64,
}

/// A roofline, log-log: each compute roof meets the bandwidth roof (GB/s × intensity) at its
/// ridge; the boards' points on top, one colour per board.
pub fn roofline(
    title: &str,
    bandwidth_gbps: Option<f64>,
    roofs: &[Roof],
    points: &[RoofPoint],
) -> Result<String, PlotError> {
    let bw = bandwidth_gbps.filter(|b| b.is_finite() && *b > 0.0);
    let roofs: Vec<&Roof> = roofs
        .iter()
        .filter(|r| r.gops.is_finite() && r.gops > 0.0)
        .collect();
    let points: Vec<&RoofPoint> = points
        .iter()
        .filter(|p| p.intensity.is_finite() && p.intensity > 0.0)
        .filter(|p| p.gops.is_finite() && p.gops > 0.0)
        .collect();
    if roofs.is_empty() && points.is_empty() {
        return Err("nothing to plot".into());
    }
    let ridges = roofs.iter().filter_map(|r| bw.map(|b| r.gops / b));
    let (mut x0, mut x1) = bounds(points.iter().map(|p| p.intensity).chain(ridges));
    x0 = (x0 / 4.0).max(1e-4);
    x1 = (x1 * 4.0).max(x0 * 10.0);
    let (mut y0, mut y1) = bounds(
        points
            .iter()
            .map(|p| p.gops)
            .chain(roofs.iter().map(|r| r.gops))
            .chain(bw.map(|b| b * x0)),
    );
    y0 = (y0 / 3.0).max(1e-4);
    y1 = (y1 * 2.5).max(y0 * 10.0);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("operational intensity (ops/byte)")
            .y_desc("GFLOPS / GIOPS")
            .x_label_formatter(&|v| compact(*v))
            .y_label_formatter(&|v| compact(*v))
            .label_style((FONT, 15))
            .light_line_style(TRANSPARENT)
            .draw()
            .map_err(err)?;
        if let Some(b) = bw {
            let top = roofs.iter().map(|r| r.gops).fold(y1, f64::min);
            let style = REFERENCE.stroke_width(2);
            let end = (top / b).clamp(x0, x1);
            chart
                .draw_series(LineSeries::new([(x0, b * x0), (end, b * end)], style))
                .map_err(err)?
                .label(format!("bandwidth {} GB/s", compact(b)))
                .legend(move |(x, y)| PathElement::new([(x, y + 4), (x + 12, y - 4)], style));
        }
        for (i, r) in roofs.iter().enumerate() {
            let color = PALETTE[(i + 2) % PALETTE.len()];
            let start = bw.map_or(x0, |b| (r.gops / b).clamp(x0, x1));
            chart
                .draw_series(DashedLineSeries::new(
                    [(start, r.gops), (x1, r.gops)],
                    6,
                    3,
                    color.stroke_width(2),
                ))
                .map_err(err)?
                .label(format!("{} roof {}", r.name, compact(r.gops)))
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 12, y)], color.stroke_width(2))
                });
        }
        let mut names: Vec<&str> = points.iter().map(|p| p.series.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        for (i, name) in names.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            chart
                .draw_series(
                    points
                        .iter()
                        .filter(|p| p.series == *name)
                        .map(|p| Circle::new((p.intensity, p.gops), 4, color.filled())),
                )
                .map_err(err)?
                .label(short(name, 24))
                .legend(move |(x, y)| Circle::new((x + 6, y), 4, color.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font((FONT, 15))
            .background_style(WHITE.mix(0.85))
            .border_style(REFERENCE)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Milliseconds since the epoch as days since the epoch.
fn ms_to_days(ms: i64) -> f64 {
    let whole = i32::try_from(ms.div_euclid(86_400_000)).map_or(0.0, f64::from);
    let rest = i32::try_from(ms.rem_euclid(86_400_000)).map_or(0.0, f64::from);
    whole + rest / 86_400_000.0
}

/// A day count as `Nov 29`, or `Nov 29 18:40` when the axis spans less than three days.
fn day_label(days: f64, span_days: f64) -> String {
    if !days.is_finite() || days.abs() > 1e6 {
        return String::new();
    }
    let secs = (days * 86_400.0).round();
    // Bounded above: |secs| ≤ 8.64e10, well within i64.
    let secs = format!("{secs:.0}").parse::<i64>().unwrap_or(0);
    let format = if span_days < 3.0 {
        "%b %d %H:%M"
    } else {
        "%b %d"
    };
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.format(format).to_string())
        .unwrap_or_default()
}

/// An axis tick: as many decimals as the axis' span needs to tell ticks apart.
fn tick(v: f64, span: f64) -> String {
    if !v.is_finite() {
        String::new()
    } else if v.abs() < 1e4 && span >= 2.0 && (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else if v.abs() >= 1e4 || span >= 20.0 {
        compact(v)
    } else if span >= 2.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A number in at most about five characters (`1.2k`, `340`, `0.25`).
pub fn compact(v: f64) -> String {
    let a = v.abs();
    if !v.is_finite() {
        String::new()
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 10.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The smallest and largest of some values (0..1 when there are none).
fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo.is_finite() && hi.is_finite() {
        (lo, hi)
    } else {
        (0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(svg: &str, what: &str) -> usize {
        svg.matches(what).count()
    }

    #[test]
    fn grouped_bars_draw_one_bar_per_value_and_name_the_categories() {
        let svg = grouped_bars(
            "gemm peak",
            "GFLOPS",
            &["fp32".into(), "fp64".into(), "bf16".into()],
            &[
                Bars {
                    name: "NumPy".into(),
                    color: NUMPY,
                    values: vec![Some(240.0), Some(120.0), None],
                },
                Bars {
                    name: "PyTorch".into(),
                    color: PYTORCH,
                    values: vec![Some(200.0), Some(95.0), Some(900.0)],
                },
            ],
            &[Reference {
                name: "group median".into(),
                value: 210.0,
            }],
        )
        .unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        for text in [
            "gemm peak",
            "fp32",
            "fp64",
            "bf16",
            "NumPy",
            "PyTorch",
            "group median",
        ] {
            assert!(svg.contains(text), "{text} in the plot");
        }
        let numpy_fill = "fill=\"#1F77B4\"";
        // Two NumPy bars and the legend's swatch.
        assert_eq!(count(&svg, numpy_fill), 3, "{svg}");
        assert_eq!(count(&svg, "fill=\"#E66E14\""), 4);
    }

    #[test]
    fn non_finite_values_are_left_out_and_nothing_is_an_error() {
        let bars = |v: f64| Bars {
            name: "x".into(),
            color: NUMPY,
            values: vec![Some(v)],
        };
        assert!(grouped_bars("t", "y", &["a".into()], &[bars(f64::NAN)], &[]).is_err());
        assert!(grouped_bars("t", "y", &[], &[], &[]).is_err());
        let svg = grouped_bars(
            "t",
            "y",
            &["a".into(), "b".into()],
            &[Bars {
                name: "x".into(),
                color: NUMPY,
                values: vec![Some(f64::INFINITY), Some(3.0)],
            }],
            &[],
        )
        .unwrap();
        assert_eq!(count(&svg, "fill=\"#1F77B4\""), 2, "one bar and the swatch");
        assert!(drift_lines("t", "y", &[], None, &[], &[], &[]).is_err());
        assert!(roofline("t", Some(f64::NAN), &[], &[]).is_err());
    }

    #[test]
    fn drift_lines_show_points_markers_baseline_and_alerts() {
        let day = 86_400_000;
        let t0 = 1_764_000_000_000;
        let points: Vec<(i64, f64)> = (0..10)
            .map(|i| (t0 + i * day, if i < 7 { 240.0 } else { 200.0 }))
            .collect();
        let svg = drift_lines(
            "board-1 gemm_peak fp32",
            "GFLOPS",
            &[DriftLine {
                name: "numpy".into(),
                points,
            }],
            Some(240.0),
            &[t0 + 3 * day],
            &[(t0 + 7 * day, 200.0)],
            &[(t0 + 8 * day, 200.0)],
        )
        .unwrap();
        for text in [
            "board-1 gemm_peak fp32",
            "baseline",
            "alert",
            "new period",
            "numpy",
        ] {
            assert!(svg.contains(text), "{text}");
        }
        assert_eq!(count(&svg, "<circle"), 10, "one point per night");
        assert!(svg.contains("fill=\"#C81E1E\""), "the alert is drawn red");
        assert!(
            svg.contains("drop suspected, not confirmed"),
            "a suspicion is no alert"
        );
        assert!(
            svg.contains("#E6820A"),
            "the suspicion is drawn orange: {svg}"
        );
        assert!(svg.contains("<polyline"), "the line");
        assert!(svg.contains("Nov 2"), "dates on the x axis");
    }

    #[test]
    fn the_roofline_is_log_log_with_roofs_and_points() {
        let svg = roofline(
            "zen4 roofline",
            Some(40.0),
            &[Roof {
                name: "fp32".into(),
                gops: 480.0,
            }],
            &[
                RoofPoint {
                    series: "board-a".into(),
                    intensity: 170.0,
                    gops: 460.0,
                },
                RoofPoint {
                    series: "board-b".into(),
                    intensity: 0.08,
                    gops: 3.1,
                },
                RoofPoint {
                    series: "board-b".into(),
                    intensity: -1.0,
                    gops: 3.1,
                },
            ],
        )
        .unwrap();
        for text in [
            "zen4 roofline",
            "fp32 roof 480",
            "bandwidth 40 GB/s",
            "board-a",
            "board-b",
        ] {
            assert!(svg.contains(text), "{text}");
        }
        // Two valid points and two legend swatches.
        assert_eq!(count(&svg, "<circle"), 4, "{svg}");
        assert!(svg.contains("ops/byte"));
    }

    #[test]
    fn compact_numbers_stay_short() {
        assert_eq!(compact(1234.0), "1.2k");
        assert_eq!(compact(45_000.0), "45k");
        assert_eq!(compact(240.4), "240");
        assert_eq!(compact(2.5), "2.5");
        assert_eq!(compact(0.25), "0.25");
        assert_eq!(compact(f64::NAN), "");
    }
}
