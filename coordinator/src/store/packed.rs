//! How a result's run summary is stored in `fleet_runs` (migrations `0012` and `0013`), in
//! three small packed, zstd-compressed values, each read only by the reports that need it:
//! - `summary`: its headline peaks (`summary.peak_by_precision`), its anomaly lines and the
//!   records its headline figures are made of
//!   ([`crate::fleet::headline::headline_records`]): about a kilobyte for a quick result,
//!   what every report reads of every run (the drift of a month of 1,000 boards: 31,000);
//! - `flags`: what its figures show ([`crate::fleet::anomalies::figure_flags`]), for the
//!   anomalies report (~0.5 KB);
//! - `points`: its roofline points not among the headline records
//!   ([`crate::fleet::headline::point_records`]), for the roofline report (~1 KB);
//! - `rates` (migration `0014`): every other measured record with the best and median rate
//!   the compare report reads ([`crate::fleet::headline::rates`]), so that with `summary`
//!   and `points` the compare report has every measured record of a pair without opening
//!   its documents (~2 KB).
//!
//! Where a row per record (164 of them) cost ~23 KB on SQLite and ~37 KB on PostgreSQL; every
//! other field of a record is read from the result document itself when it is needed.
//!
//! Stored as `0xD1`, the id of the result codec's dictionary and a zstd frame against it
//! (schema v12's summaries: a plain zstd frame, still read). Layout (after zstd): a four-byte magic (`FRS1`, `FRF1`, `FRP1`), then each list as a count
//! and its items; texts are length-prefixed UTF-8, integers LEB128 varints (signed ones
//! zigzag-mapped), doubles their eight bytes, optional values a presence byte or bit first.

use super::bytes::{put_f64, put_len, put_str, put_varint, unzigzag, zigzag, Reader};
use super::codec::CodecError;
use crate::fleet::anomalies::{AnomalyKind, FigureFlag};
use crate::fleet::{FleetFigure, PeakRow};

/// The first bytes of a packed summary, before compression.
const MAGIC: &[u8; 4] = b"FRS1";
/// The first bytes of packed figure flags.
const FLAGS_MAGIC: &[u8; 4] = b"FRF1";
/// The first bytes of packed roofline points.
const POINTS_MAGIC: &[u8; 4] = b"FRP1";
/// The first bytes of packed pair rates.
const RATES_MAGIC: &[u8; 4] = b"FRR1";
/// The first byte of a value compressed against a dictionary (then the dictionary's id and
/// the zstd frame); a plain zstd frame (schema v12's summaries) starts with `0x28`.
const DICTIONARY_MARK: [u8; 1] = [0xD1];
/// The most bytes a packed value may unpack to (a quick result's summary is ~3 KB).
const MAX_UNPACKED: usize = 16 * 1024 * 1024;

/// What one run's `summary` column holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RunSummary {
    /// Its headline peaks, in the result's order.
    pub peaks: Vec<PeakRow>,
    /// Its anomaly lines.
    pub anomalies: Vec<String>,
    /// The records its headline figures are made of (their `run_id` is left empty: it is the
    /// row's).
    pub figures: Vec<FleetFigure>,
}

fn put_opt_f64(out: &mut Vec<u8>, v: Option<f64>) {
    match v {
        Some(v) => {
            out.push(1);
            put_f64(out, v);
        }
        None => out.push(0),
    }
}

fn opt_f64(r: &mut Reader<'_>) -> Result<Option<f64>, CodecError> {
    match r.byte()? {
        0 => Ok(None),
        1 => r.f64().map(Some),
        b => Err(CodecError::Damaged(format!("presence byte {b}"))),
    }
}

/// A figure's optional rates, in this order, with one presence bit each.
fn rates_of(f: &FleetFigure) -> [Option<f64>; 6] {
    [
        f.best_gops,
        f.median_gops,
        f.best_gbps,
        f.median_gbps,
        f.efficiency,
        f.cv_pct,
    ]
}

/// The stored form of a run summary.
pub(crate) fn pack(s: &RunSummary) -> Result<Vec<u8>, CodecError> {
    let mut out = MAGIC.to_vec();
    put_len(&mut out, s.peaks.len());
    for p in &s.peaks {
        put_str(&mut out, &p.precision);
        put_f64(&mut out, p.gops);
        put_str(&mut out, &p.operation);
        put_varint(&mut out, zigzag(p.size));
        put_opt_f64(&mut out, p.efficiency);
    }
    put_len(&mut out, s.anomalies.len());
    for a in &s.anomalies {
        put_str(&mut out, a);
    }
    put_len(&mut out, s.figures.len());
    for f in &s.figures {
        put_figure(&mut out, f);
    }
    zip(&out)
}

/// The stored form of a result's figure flags.
pub(crate) fn pack_flags(flags: &[FigureFlag]) -> Result<Vec<u8>, CodecError> {
    let mut out = FLAGS_MAGIC.to_vec();
    put_len(&mut out, flags.len());
    for flag in flags {
        put_str(&mut out, flag.kind.as_str());
        put_len(&mut out, flag.figures.len());
        for f in &flag.figures {
            put_str(&mut out, f);
        }
        put_opt_f64(&mut out, flag.value);
        put_str(&mut out, &flag.detail);
    }
    zip(&out)
}

/// The stored form of a result's roofline points.
pub(crate) fn pack_points(points: &[FleetFigure]) -> Result<Vec<u8>, CodecError> {
    pack_figures(POINTS_MAGIC, points)
}

/// The stored form of a result's pair rates.
pub(crate) fn pack_rates(rates: &[FleetFigure]) -> Result<Vec<u8>, CodecError> {
    pack_figures(RATES_MAGIC, rates)
}

/// Figures after `magic`, packed.
fn pack_figures(magic: &[u8; 4], figures: &[FleetFigure]) -> Result<Vec<u8>, CodecError> {
    let mut out = magic.to_vec();
    put_len(&mut out, figures.len());
    for f in figures {
        put_figure(&mut out, f);
    }
    zip(&out)
}

/// One packed figure (its `run_id` empty).
fn read_figure(r: &mut Reader<'_>) -> Result<FleetFigure, CodecError> {
    let idx = unzigzag(r.varint()?);
    let operation = r.str("operation")?;
    let precision = r.str("precision")?;
    let size = unzigzag(r.varint()?);
    let status = r.str("status")?;
    let reason = match r.byte()? {
        0 => None,
        1 => Some(r.str("reason")?),
        b => return Err(CodecError::Damaged(format!("presence byte {b}"))),
    };
    let present = r.byte()?;
    let mut rates = [None; 6];
    for (i, slot) in rates.iter_mut().enumerate() {
        if present & (1 << i) != 0 {
            *slot = Some(r.f64()?);
        }
    }
    let trials = u32::try_from(r.varint()?)
        .map_err(|_| CodecError::Damaged("trials out of range".into()))?;
    let flags = r.byte()?;
    let [best_gops, median_gops, best_gbps, median_gbps, efficiency, cv_pct] = rates;
    Ok(FleetFigure {
        run_id: String::new(),
        idx,
        operation,
        precision,
        size,
        status,
        reason,
        best_gops,
        median_gops,
        best_gbps,
        median_gbps,
        efficiency,
        trials,
        cv_pct,
        above_theoretical: flags & 1 != 0,
        noisy: flags & 2 != 0,
        throttled: flags & 4 != 0,
        in_cache: flags & 8 != 0,
        bandwidth_eligible: flags & 16 != 0,
    })
}

/// One figure, packed (its `run_id` left out).
fn put_figure(out: &mut Vec<u8>, f: &FleetFigure) {
    put_varint(out, zigzag(f.idx));
    put_str(out, &f.operation);
    put_str(out, &f.precision);
    put_varint(out, zigzag(f.size));
    put_str(out, &f.status);
    match &f.reason {
        Some(reason) => {
            out.push(1);
            put_str(out, reason);
        }
        None => out.push(0),
    }
    let rates = rates_of(f);
    let present = rates
        .iter()
        .enumerate()
        .fold(0u8, |m, (i, v)| if v.is_some() { m | 1 << i } else { m });
    out.push(present);
    for v in rates.into_iter().flatten() {
        put_f64(out, v);
    }
    put_varint(out, u64::from(f.trials));
    let flags = [
        f.above_theoretical,
        f.noisy,
        f.throttled,
        f.in_cache,
        f.bandwidth_eligible,
    ];
    out.push(
        flags
            .iter()
            .enumerate()
            .fold(0u8, |m, (i, &b)| if b { m | 1 << i } else { m }),
    );
}

/// A packed value compressed: [`DICTIONARY_MARK`], then a zstd frame against the result
/// codec's built-in dictionary (whose texts, operation and precision names, statuses,
/// anomaly lines, are most of a packed value's): a third smaller and three times faster to
/// decompress than a frame without it (0.9 KB and 1.3 µs for a quick result's summary).
fn zip(raw: &[u8]) -> Result<Vec<u8>, CodecError> {
    let (id, frame) = super::codec::compress(raw)?;
    let mut out = Vec::with_capacity(frame.len() + 2);
    out.extend_from_slice(&DICTIONARY_MARK);
    out.push(id);
    out.extend_from_slice(&frame);
    Ok(out)
}

/// `bytes` decompressed (a plain zstd frame, as schema v12 stored summaries, or [`zip`]'s
/// form), starting with `magic`.
fn unzip(bytes: &[u8], magic: &[u8; 4]) -> Result<Vec<u8>, CodecError> {
    let raw = match bytes.strip_prefix(&DICTIONARY_MARK) {
        Some(rest) => {
            let (&id, frame) = rest
                .split_first()
                .ok_or_else(|| CodecError::Damaged("packed value: no dictionary id".into()))?;
            super::codec::decompress(frame, id)?
        }
        None => zstd::bulk::decompress(bytes, MAX_UNPACKED)?,
    };
    if !raw.starts_with(magic) {
        return Err(CodecError::Damaged(format!(
            "packed {}: unknown form",
            String::from_utf8_lossy(magic)
        )));
    }
    Ok(raw)
}

/// The end of a packed value: nothing may follow.
fn end(r: &Reader<'_>, what: &str) -> Result<(), CodecError> {
    if r.0.is_empty() {
        Ok(())
    } else {
        Err(CodecError::Damaged(format!("{what}: bytes after the end")))
    }
}

/// A run summary back from its stored form; an error (never a panic) for damaged bytes.
pub(crate) fn unpack(bytes: &[u8]) -> Result<RunSummary, CodecError> {
    let raw = unzip(bytes, MAGIC)?;
    let mut r = Reader(&raw[MAGIC.len()..]);
    let mut s = RunSummary::default();
    for _ in 0..r.len("peak count")? {
        s.peaks.push(PeakRow {
            precision: r.str("peak precision")?,
            gops: r.f64()?,
            operation: r.str("peak operation")?,
            size: unzigzag(r.varint()?),
            efficiency: opt_f64(&mut r)?,
        });
    }
    for _ in 0..r.len("anomaly count")? {
        s.anomalies.push(r.str("anomaly")?);
    }
    for _ in 0..r.len("figure count")? {
        s.figures.push(read_figure(&mut r)?);
    }
    end(&r, "run summary")?;
    Ok(s)
}

/// Figure flags back from their stored form.
pub(crate) fn unpack_flags(bytes: &[u8]) -> Result<Vec<FigureFlag>, CodecError> {
    let raw = unzip(bytes, FLAGS_MAGIC)?;
    let mut r = Reader(&raw[FLAGS_MAGIC.len()..]);
    let mut flags = Vec::new();
    for _ in 0..r.len("flag count")? {
        let kind = r.str("flag kind")?;
        let kind = AnomalyKind::from_name(&kind)
            .ok_or_else(|| CodecError::Damaged(format!("flag kind {kind:?}")))?;
        let mut figures = Vec::new();
        for _ in 0..r.len("flagged figure count")? {
            figures.push(r.str("flagged figure")?);
        }
        flags.push(FigureFlag {
            kind,
            figures,
            value: opt_f64(&mut r)?,
            detail: r.str("flag detail")?,
        });
    }
    end(&r, "figure flags")?;
    Ok(flags)
}

/// Roofline points back from their stored form (their `run_id` empty).
pub(crate) fn unpack_points(bytes: &[u8]) -> Result<Vec<FleetFigure>, CodecError> {
    unpack_figures(bytes, POINTS_MAGIC, "roofline points")
}

/// Pair rates back from their stored form (their `run_id` empty).
pub(crate) fn unpack_rates(bytes: &[u8]) -> Result<Vec<FleetFigure>, CodecError> {
    unpack_figures(bytes, RATES_MAGIC, "pair rates")
}

/// Figures back from their stored form after `magic`.
fn unpack_figures(
    bytes: &[u8],
    magic: &[u8; 4],
    what: &str,
) -> Result<Vec<FleetFigure>, CodecError> {
    let raw = unzip(bytes, magic)?;
    let mut r = Reader(&raw[magic.len()..]);
    let mut figures = Vec::new();
    for _ in 0..r.len(what)? {
        figures.push(read_figure(&mut r)?);
    }
    end(&r, what)?;
    Ok(figures)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::headline::headline_records;
    use crate::fleet::{FleetFigure, FleetRun};
    use fleetcal_proto::CalibrationResult;
    use proptest::prelude::*;

    const TEMPLATE: &str = include_str!("../../testdata/quick-result.json");

    fn summary_of_template() -> (RunSummary, Vec<FleetFigure>, FleetRun) {
        let result = CalibrationResult::from_json(TEMPLATE, "template").unwrap();
        let run = crate::fleet::fixtures::running_run();
        let fleet = FleetRun::from_result(&run, None, &result, 2);
        let mut figures = FleetFigure::from_result("", &result);
        figures.iter_mut().for_each(|f| f.run_id.clear());
        let s = RunSummary {
            peaks: fleet.peaks.clone(),
            anomalies: fleet.anomalies.clone(),
            figures: headline_records(&figures),
        };
        (s, figures, fleet)
    }

    #[test]
    fn the_real_results_summary_round_trips_small_with_the_same_headlines() {
        let (s, all, fleet) = summary_of_template();
        assert!(!s.peaks.is_empty() && !s.anomalies.is_empty());
        assert!(
            s.figures.len() < all.len() / 4,
            "{} of {}",
            s.figures.len(),
            all.len()
        );
        let packed = pack(&s).unwrap();
        assert!(packed.len() < 1200, "{} B", packed.len());
        let back = unpack(&packed).unwrap();
        assert_eq!(back, s);
        // The headlines are the same from the kept records as from all of them.
        let kept: Vec<&FleetFigure> = back.figures.iter().collect();
        let every: Vec<&FleetFigure> = all.iter().collect();
        assert_eq!(
            crate::fleet::headline::headlines(&fleet, &kept),
            crate::fleet::headline::headlines(&fleet, &every)
        );
    }

    #[test]
    fn damaged_summaries_are_errors() {
        let (s, _, _) = summary_of_template();
        let packed = pack(&s).unwrap();
        assert!(unpack(b"not zstd").is_err());
        for cut in [0, 1, 4, packed.len() / 2, packed.len() - 1] {
            assert!(unpack(&packed[..cut]).is_err(), "cut at {cut}");
        }
        let raw = unzip(&packed, MAGIC).unwrap();
        // Schema v12's form (a plain zstd frame) reads as well.
        assert_eq!(unpack(&zstd::bulk::compress(&raw, 3).unwrap()).unwrap(), s);
        assert!(packed.len() < zstd::bulk::compress(&raw, 3).unwrap().len());
        for cut in [0, 3, 5, raw.len() / 2, raw.len() - 1] {
            assert!(
                unpack(&zip(&raw[..cut]).unwrap()).is_err(),
                "raw cut at {cut}"
            );
            let plain = zstd::bulk::compress(&raw[..cut], 1).unwrap();
            assert!(unpack(&plain).is_err(), "plain raw cut at {cut}");
        }
        let mut longer = raw.clone();
        longer.push(0);
        assert!(unpack(&zip(&longer).unwrap()).is_err());
        assert!(
            unpack(&[0xD1, 9, 1, 2, 3]).is_err(),
            "an unknown dictionary"
        );
    }

    #[test]
    fn the_real_results_flags_and_points_round_trip_small() {
        let (_, all, fleet) = summary_of_template();
        // The template's noisy and skipped figures are flagged.
        let kinds: Vec<&str> = fleet.figure_flags.iter().map(|f| f.kind.as_str()).collect();
        assert!(
            kinds.contains(&"noisy") && kinds.contains(&"skipped"),
            "{kinds:?}"
        );
        let flags = pack_flags(&fleet.figure_flags).unwrap();
        assert!(flags.len() < 1024, "{} B", flags.len());
        assert_eq!(unpack_flags(&flags).unwrap(), fleet.figure_flags);
        let points = crate::fleet::headline::point_records(
            &all,
            &crate::fleet::headline::headline_records(&all),
        );
        assert!(!points.is_empty());
        let packed = pack_points(&points).unwrap();
        assert!(packed.len() < 1536, "{} B", packed.len());
        assert_eq!(unpack_points(&packed).unwrap(), points);
        // Pair rates: the measured records that are neither headline records nor points,
        // with two rates each.
        let rates: Vec<FleetFigure> = all
            .iter()
            .filter(|f| {
                crate::fleet::headline::rates(f).is_some()
                    && !points.iter().any(|p| p.idx == f.idx)
                    && !crate::fleet::headline::headline_records(&all)
                        .iter()
                        .any(|h| h.idx == f.idx)
            })
            .cloned()
            .collect();
        assert!(rates.len() > 50, "{} records", rates.len());
        // (With every field: the store keeps two rates of each, ~2.2 KB a quick result.)
        let packed_rates = pack_rates(&rates).unwrap();
        assert!(packed_rates.len() < 6144, "{} B", packed_rates.len());
        assert_eq!(unpack_rates(&packed_rates).unwrap(), rates);
        assert!(unpack_points(&packed_rates).is_err() && unpack_rates(&packed).is_err());
        // Each value is only read as what it is.
        assert!(unpack(&flags).is_err() && unpack_points(&flags).is_err());
        assert!(unpack_flags(&packed).is_err());
        for cut in [0, 1, 4, flags.len() / 2, flags.len() - 1] {
            assert!(unpack_flags(&flags[..cut]).is_err(), "cut at {cut}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn any_bytes_unpack_without_panicking(tail in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut raw = MAGIC.to_vec();
            raw.extend(tail);
            let _ = unpack(&zip(&raw).unwrap());
            let _ = unpack(&zstd::bulk::compress(&raw, 1).unwrap());
            raw[..4].copy_from_slice(FLAGS_MAGIC);
            let _ = unpack_flags(&zip(&raw).unwrap());
            raw[..4].copy_from_slice(POINTS_MAGIC);
            let _ = unpack_points(&zip(&raw).unwrap());
        }

        #[test]
        fn signed_sizes_round_trip(v in any::<i64>()) {
            prop_assert_eq!(unzigzag(zigzag(v)), v);
        }
    }
}
