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
//! (schema v12's summaries: a plain zstd frame, still read). Layout (after zstd): a
//! four-byte magic, then each list as a count and its items; texts are length-prefixed
//! UTF-8, integers LEB128 varints (signed ones zigzag-mapped), optional values a presence
//! byte or bit first. Doubles, bit for bit:
//! - in the `…2` forms of the points and rates (`FRP2`, `FRR2`, written since session 13),
//!   the figures are stored column by column ([`put_figures`]) and every double is in one
//!   lane ([`put_lane`]: their count, then their bytes plane by plane) between the magic and
//!   the rest, read in the order the rest names them. A quick result's pair rates are
//!   1.7 KB where figure by figure they were 2.2: under the ~2 KB a row must stay under to
//!   be kept in its page (PostgreSQL moves a larger value out of line in ~2 KB chunks, most
//!   of the last one's page space wasted; SQLite's 8 KB page holds three rows of 2.2 KB,
//!   four of 1.9);
//! - in the `…1` forms (`FRS1`, `FRF1`, `FRP1`, `FRR1`), figure by figure, each double
//!   inline where the rest names it. The summary (8 figures of a quick result: no smaller
//!   in columns, and quicker to read so) and the flags (few doubles) are still written so;
//!   `FRP1` and `FRR1`, as stored before, are still read.

use super::codec::CodecError;
use crate::fleet::anomalies::{AnomalyKind, FigureFlag};
use crate::fleet::{FleetFigure, PeakRow};
use fleetcal_proto::bytes::{
    put_f64, put_lane, put_len, put_str, put_varint, unzigzag, zigzag, Reader,
};

/// The first bytes of a packed summary, before compression.
const MAGIC: &[u8; 4] = b"FRS1";
/// The first bytes of packed figure flags.
const FLAGS_MAGIC: &[u8; 4] = b"FRF1";
/// The first bytes of packed roofline points (doubles inline: read only).
const POINTS_MAGIC: &[u8; 4] = b"FRP1";
/// The first bytes of packed roofline points with their doubles in a lane.
const POINTS_MAGIC_2: &[u8; 4] = b"FRP2";
/// The first bytes of packed pair rates (doubles inline: read only).
const RATES_MAGIC: &[u8; 4] = b"FRR1";
/// The first bytes of packed pair rates with their doubles in a lane.
const RATES_MAGIC_2: &[u8; 4] = b"FRR2";
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

/// A packed value being written: its bytes, and its doubles' lane (`None`: the `…1` forms,
/// each double inline).
struct Packer {
    body: Vec<u8>,
    lane: Option<Vec<f64>>,
}

impl Packer {
    /// With a lane (the `…2` forms) or without (`…1`: the summary, the flags, and the tests
    /// of reading the first forms of the others).
    fn new(lane: bool) -> Packer {
        Packer {
            body: Vec::new(),
            lane: lane.then(Vec::new),
        }
    }

    fn f64(&mut self, v: f64) {
        match &mut self.lane {
            Some(lane) => lane.push(v),
            None => put_f64(&mut self.body, v),
        }
    }

    fn opt_f64(&mut self, v: Option<f64>) {
        match v {
            Some(v) => {
                self.body.push(1);
                self.f64(v);
            }
            None => self.body.push(0),
        }
    }

    /// `magic`, the lane when there is one, the body; compressed.
    fn finish(self, magic: &[u8; 4]) -> Result<Vec<u8>, CodecError> {
        let mut out =
            Vec::with_capacity(self.body.len() + 8 * self.lane.as_ref().map_or(0, Vec::len) + 8);
        out.extend_from_slice(magic);
        if let Some(lane) = &self.lane {
            put_lane(&mut out, lane);
        }
        out.extend_from_slice(&self.body);
        zip(&out)
    }
}

/// A packed value being read: the rest of its bytes, and what is left of its lane (`None`:
/// doubles inline).
struct Unpacker<'a> {
    r: Reader<'a>,
    lane: Option<std::vec::IntoIter<f64>>,
}

impl<'a> Unpacker<'a> {
    /// The bytes after the magic; `lane`: the value has one, first.
    fn new(bytes: &'a [u8], lane: bool) -> Result<Unpacker<'a>, CodecError> {
        let mut r = Reader(bytes);
        let lane = if lane {
            Some(r.lane()?.into_iter())
        } else {
            None
        };
        Ok(Unpacker { r, lane })
    }

    fn f64(&mut self) -> Result<f64, CodecError> {
        match &mut self.lane {
            Some(lane) => lane
                .next()
                .ok_or_else(|| CodecError::Damaged("the lane of doubles ends early".into())),
            None => self.r.f64(),
        }
    }

    fn opt_f64(&mut self) -> Result<Option<f64>, CodecError> {
        match self.r.byte()? {
            0 => Ok(None),
            1 => self.f64().map(Some),
            b => Err(CodecError::Damaged(format!("presence byte {b}"))),
        }
    }

    /// The end of the value: no byte and no double may be left.
    fn end(self, what: &str) -> Result<(), CodecError> {
        if !self.r.0.is_empty() {
            return Err(CodecError::Damaged(format!("{what}: bytes after the end")));
        }
        if self.lane.is_some_and(|mut l| l.next().is_some()) {
            return Err(CodecError::Damaged(format!(
                "{what}: doubles after the end"
            )));
        }
        Ok(())
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

/// The stored form of a run summary (`FRS1`: its few figures are as small and quicker to
/// read figure by figure, with their doubles inline).
pub(crate) fn pack(s: &RunSummary) -> Result<Vec<u8>, CodecError> {
    let mut out = Packer::new(false);
    put_len(&mut out.body, s.peaks.len());
    for p in &s.peaks {
        put_str(&mut out.body, &p.precision);
        out.f64(p.gops);
        put_str(&mut out.body, &p.operation);
        put_varint(&mut out.body, zigzag(p.size));
        out.opt_f64(p.efficiency);
    }
    put_len(&mut out.body, s.anomalies.len());
    for a in &s.anomalies {
        put_str(&mut out.body, a);
    }
    put_figures(&mut out, &s.figures);
    out.finish(MAGIC)
}

/// The stored form of a result's figure flags (`FRF1`: its few doubles inline).
pub(crate) fn pack_flags(flags: &[FigureFlag]) -> Result<Vec<u8>, CodecError> {
    let mut out = Packer::new(false);
    put_len(&mut out.body, flags.len());
    for flag in flags {
        put_str(&mut out.body, flag.kind.as_str());
        put_len(&mut out.body, flag.figures.len());
        for f in &flag.figures {
            put_str(&mut out.body, f);
        }
        out.opt_f64(flag.value);
        put_str(&mut out.body, &flag.detail);
    }
    out.finish(FLAGS_MAGIC)
}

/// The stored form of a result's roofline points (`FRP2`).
pub(crate) fn pack_points(points: &[FleetFigure]) -> Result<Vec<u8>, CodecError> {
    pack_figures(POINTS_MAGIC_2, points, true)
}

/// The stored form of a result's pair rates (`FRR2`).
pub(crate) fn pack_rates(rates: &[FleetFigure]) -> Result<Vec<u8>, CodecError> {
    pack_figures(RATES_MAGIC_2, rates, true)
}

/// Figures after `magic`, packed, with their doubles in a lane or inline.
fn pack_figures(
    magic: &[u8; 4],
    figures: &[FleetFigure],
    lane: bool,
) -> Result<Vec<u8>, CodecError> {
    let mut out = Packer::new(lane);
    put_figures(&mut out, figures);
    out.finish(magic)
}

/// A list of figures: its count, then (the `…2` forms, with a lane) each field of every
/// figure in turn, column by column, an index as its difference from the one before; or
/// (`…1`) each figure's fields in turn ([`put_figure`]). Column by column, zstd finds a
/// result's repeated operations, precisions, sizes and statuses as long matches: a quick
/// result's pair rates' other fields pack to ~0.3 KB where figure by figure they were ~0.6.
fn put_figures(out: &mut Packer, figures: &[FleetFigure]) {
    put_len(&mut out.body, figures.len());
    if out.lane.is_none() {
        figures.iter().for_each(|f| put_figure(out, f));
        return;
    }
    let body = &mut out.body;
    let mut prev = 0i64;
    for f in figures {
        put_varint(body, zigzag(f.idx.wrapping_sub(prev)));
        prev = f.idx;
    }
    figures.iter().for_each(|f| put_str(body, &f.operation));
    figures.iter().for_each(|f| put_str(body, &f.precision));
    figures
        .iter()
        .for_each(|f| put_varint(body, zigzag(f.size)));
    figures.iter().for_each(|f| put_str(body, &f.status));
    for f in figures {
        match &f.reason {
            Some(reason) => {
                body.push(1);
                put_str(body, reason);
            }
            None => body.push(0),
        }
    }
    figures
        .iter()
        .for_each(|f| body.push(present(&rates_of(f))));
    figures
        .iter()
        .for_each(|f| put_varint(body, u64::from(f.trials)));
    figures.iter().for_each(|f| body.push(flag_bits(f)));
    for f in figures {
        for v in rates_of(f).into_iter().flatten() {
            out.f64(v);
        }
    }
}

/// A list of figures back ([`put_figures`]), `what` naming its count.
fn read_figures(r: &mut Unpacker<'_>, what: &str) -> Result<Vec<FleetFigure>, CodecError> {
    let n = r.r.len(what)?;
    if r.lane.is_none() {
        return (0..n).map(|_| read_figure(r)).collect();
    }
    // Each column takes at least a byte a figure: `n` is at most the bytes left.
    let mut idx = Vec::with_capacity(n);
    let mut prev = 0i64;
    for _ in 0..n {
        prev = prev.wrapping_add(unzigzag(r.r.varint()?));
        idx.push(prev);
    }
    let operations = (0..n)
        .map(|_| r.r.str("operation"))
        .collect::<Result<Vec<_>, _>>()?;
    let precisions = (0..n)
        .map(|_| r.r.str("precision"))
        .collect::<Result<Vec<_>, _>>()?;
    let sizes = (0..n)
        .map(|_| r.r.varint().map(unzigzag))
        .collect::<Result<Vec<_>, _>>()?;
    let statuses = (0..n)
        .map(|_| r.r.str("status"))
        .collect::<Result<Vec<_>, _>>()?;
    let reasons = (0..n)
        .map(|_| match r.r.byte()? {
            0 => Ok(None),
            1 => r.r.str("reason").map(Some),
            b => Err(CodecError::Damaged(format!("presence byte {b}"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let presents = r.r.take(n)?;
    let trials = (0..n)
        .map(|_| {
            u32::try_from(r.r.varint()?)
                .map_err(|_| CodecError::Damaged("trials out of range".into()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let flags = r.r.take(n)?;
    let columns = idx
        .into_iter()
        .zip(operations)
        .zip(precisions)
        .zip(sizes)
        .zip(statuses)
        .zip(reasons)
        .zip(presents.iter().zip(trials).zip(flags));
    columns
        .map(
            |(
                (((((idx, operation), precision), size), status), reason),
                ((&present, trials), &flags),
            )| {
                let rates = read_rates(r, present)?;
                Ok(figure(
                    idx, operation, precision, size, status, reason, rates, trials, flags,
                ))
            },
        )
        .collect()
}

/// The rates `present` names, from `r` (in [`rates_of`]'s order).
fn read_rates(r: &mut Unpacker<'_>, present: u8) -> Result<[Option<f64>; 6], CodecError> {
    let mut rates = [None; 6];
    for (i, slot) in rates.iter_mut().enumerate() {
        if present & (1 << i) != 0 {
            *slot = Some(r.f64()?);
        }
    }
    Ok(rates)
}

/// One presence bit per rate (in [`rates_of`]'s order).
fn present(rates: &[Option<f64>; 6]) -> u8 {
    rates
        .iter()
        .enumerate()
        .fold(0u8, |m, (i, v)| if v.is_some() { m | 1 << i } else { m })
}

/// A figure's flags, one bit each.
fn flag_bits(f: &FleetFigure) -> u8 {
    [
        f.above_theoretical,
        f.noisy,
        f.throttled,
        f.in_cache,
        f.bandwidth_eligible,
    ]
    .iter()
    .enumerate()
    .fold(0u8, |m, (i, &b)| if b { m | 1 << i } else { m })
}

/// A figure from its packed fields (its `run_id` empty).
#[allow(clippy::too_many_arguments)]
fn figure(
    idx: i64,
    operation: String,
    precision: String,
    size: i64,
    status: String,
    reason: Option<String>,
    rates: [Option<f64>; 6],
    trials: u32,
    flags: u8,
) -> FleetFigure {
    let [best_gops, median_gops, best_gbps, median_gbps, efficiency, cv_pct] = rates;
    FleetFigure {
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
    }
}

/// One packed figure, fields in turn (the `…1` forms; its `run_id` empty).
fn read_figure(r: &mut Unpacker<'_>) -> Result<FleetFigure, CodecError> {
    let idx = unzigzag(r.r.varint()?);
    let operation = r.r.str("operation")?;
    let precision = r.r.str("precision")?;
    let size = unzigzag(r.r.varint()?);
    let status = r.r.str("status")?;
    let reason = match r.r.byte()? {
        0 => None,
        1 => Some(r.r.str("reason")?),
        b => return Err(CodecError::Damaged(format!("presence byte {b}"))),
    };
    let present = r.r.byte()?;
    let rates = read_rates(r, present)?;
    let trials = u32::try_from(r.r.varint()?)
        .map_err(|_| CodecError::Damaged("trials out of range".into()))?;
    let flags = r.r.byte()?;
    Ok(figure(
        idx, operation, precision, size, status, reason, rates, trials, flags,
    ))
}

/// One packed figure, fields in turn (the `…1` forms; its `run_id` left out).
fn put_figure(out: &mut Packer, f: &FleetFigure) {
    let body = &mut out.body;
    put_varint(body, zigzag(f.idx));
    put_str(body, &f.operation);
    put_str(body, &f.precision);
    put_varint(body, zigzag(f.size));
    put_str(body, &f.status);
    match &f.reason {
        Some(reason) => {
            body.push(1);
            put_str(body, reason);
        }
        None => body.push(0),
    }
    let rates = rates_of(f);
    body.push(present(&rates));
    for v in rates.into_iter().flatten() {
        out.f64(v);
    }
    put_varint(&mut out.body, u64::from(f.trials));
    out.body.push(flag_bits(f));
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
/// form), its magic first, and whether it has a lane: its magic is `inline` (the `…1` form)
/// or `lane` (the `…2` form, for the values that have one).
fn unzip(
    bytes: &[u8],
    inline: &[u8; 4],
    lane: Option<&[u8; 4]>,
) -> Result<(Vec<u8>, bool), CodecError> {
    let raw = match bytes.strip_prefix(&DICTIONARY_MARK) {
        Some(rest) => {
            let (&id, frame) = rest
                .split_first()
                .ok_or_else(|| CodecError::Damaged("packed value: no dictionary id".into()))?;
            super::codec::decompress(frame, id)?
        }
        None => zstd::bulk::decompress(bytes, MAX_UNPACKED)?,
    };
    let has_lane = match raw.get(..4) {
        Some(m) if m == inline => false,
        Some(m) if lane.is_some_and(|l| m == l) => true,
        _ => {
            return Err(CodecError::Damaged(format!(
                "packed {}: unknown form",
                String::from_utf8_lossy(inline)
            )))
        }
    };
    Ok((raw, has_lane))
}

/// A run summary back from its stored form; an error (never a panic) for damaged bytes.
pub(crate) fn unpack(bytes: &[u8]) -> Result<RunSummary, CodecError> {
    let (raw, lane) = unzip(bytes, MAGIC, None)?;
    let mut r = Unpacker::new(&raw[4..], lane)?;
    let mut s = RunSummary::default();
    for _ in 0..r.r.len("peak count")? {
        s.peaks.push(PeakRow {
            precision: r.r.str("peak precision")?,
            gops: r.f64()?,
            operation: r.r.str("peak operation")?,
            size: unzigzag(r.r.varint()?),
            efficiency: r.opt_f64()?,
        });
    }
    for _ in 0..r.r.len("anomaly count")? {
        s.anomalies.push(r.r.str("anomaly")?);
    }
    s.figures = read_figures(&mut r, "figure count")?;
    r.end("run summary")?;
    Ok(s)
}

/// Figure flags back from their stored form.
pub(crate) fn unpack_flags(bytes: &[u8]) -> Result<Vec<FigureFlag>, CodecError> {
    let (raw, lane) = unzip(bytes, FLAGS_MAGIC, None)?;
    let mut r = Unpacker::new(&raw[4..], lane)?;
    let mut flags = Vec::new();
    for _ in 0..r.r.len("flag count")? {
        let kind = r.r.str("flag kind")?;
        let kind = AnomalyKind::from_name(&kind)
            .ok_or_else(|| CodecError::Damaged(format!("flag kind {kind:?}")))?;
        let mut figures = Vec::new();
        for _ in 0..r.r.len("flagged figure count")? {
            figures.push(r.r.str("flagged figure")?);
        }
        flags.push(FigureFlag {
            kind,
            figures,
            value: r.opt_f64()?,
            detail: r.r.str("flag detail")?,
        });
    }
    r.end("figure flags")?;
    Ok(flags)
}

/// Roofline points back from their stored form (their `run_id` empty).
pub(crate) fn unpack_points(bytes: &[u8]) -> Result<Vec<FleetFigure>, CodecError> {
    unpack_figures(bytes, POINTS_MAGIC, POINTS_MAGIC_2, "roofline points")
}

/// Pair rates back from their stored form (their `run_id` empty).
pub(crate) fn unpack_rates(bytes: &[u8]) -> Result<Vec<FleetFigure>, CodecError> {
    unpack_figures(bytes, RATES_MAGIC, RATES_MAGIC_2, "pair rates")
}

/// Figures back from their stored form, whose magic is `inline` (`…1`) or `lane` (`…2`).
fn unpack_figures(
    bytes: &[u8],
    inline: &[u8; 4],
    lane: &[u8; 4],
    what: &str,
) -> Result<Vec<FleetFigure>, CodecError> {
    let (raw, lane) = unzip(bytes, inline, Some(lane))?;
    let mut r = Unpacker::new(&raw[4..], lane)?;
    let figures = read_figures(&mut r, what)?;
    r.end(what)?;
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
        assert!(unpack(b"not zstd").is_err());
        let packed = pack(&s).unwrap();
        for cut in [0, 1, 4, packed.len() / 2, packed.len() - 1] {
            assert!(unpack(&packed[..cut]).is_err(), "cut at {cut}");
        }
        let (raw, lane) = unzip(&packed, MAGIC, None).unwrap();
        assert!(!lane);
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
    fn damaged_lanes_and_columns_are_errors() {
        let (_, all, _) = summary_of_template();
        let rates = crate::store::sql::rates_of(&all, &[]);
        let packed = pack_rates(&rates).unwrap();
        let (raw, lane) = unzip(&packed, RATES_MAGIC, Some(RATES_MAGIC_2)).unwrap();
        assert!(lane);
        for cut in [4, 5, 6, 100, raw.len() / 2, raw.len() - 1] {
            let err = unpack_rates(&zip(&raw[..cut]).unwrap()).unwrap_err();
            assert!(err.to_string().contains("damaged"), "cut at {cut}: {err}");
        }
        // A lane with a double more, or one fewer, than the columns name.
        let mut more = Packer::new(true);
        let mut fewer = Packer::new(true);
        put_figures(&mut more, &rates[..2]);
        put_figures(&mut fewer, &rates[..2]);
        more.f64(1.5);
        fewer.lane.as_mut().map(Vec::pop);
        let more = unpack_rates(&more.finish(RATES_MAGIC_2).unwrap()).unwrap_err();
        assert!(more.to_string().contains("doubles after the end"), "{more}");
        let fewer = unpack_rates(&fewer.finish(RATES_MAGIC_2).unwrap()).unwrap_err();
        assert!(
            fewer.to_string().contains("lane of doubles ends early"),
            "{fewer}"
        );
        // A count larger than the columns.
        let mut longer = Packer::new(true);
        put_figures(&mut longer, &rates[..2]);
        longer.body[0] = 3;
        assert!(unpack_rates(&longer.finish(RATES_MAGIC_2).unwrap()).is_err());
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
        // (With every field: the store keeps two rates of each, below.)
        let packed_rates = pack_rates(&rates).unwrap();
        assert!(packed_rates.len() < 6144, "{} B", packed_rates.len());
        assert_eq!(unpack_rates(&packed_rates).unwrap(), rates);
        // As the store keeps them, two rates each, in the lane: under the 1,964 bytes that
        // keep a `fleet_rates` row (with a 36-character run id) within PostgreSQL's 2,032
        // bytes and SQLite's quarter page, where inline they were ~2.2 KB.
        let kept: Vec<i64> = headline_records(&all)
            .iter()
            .chain(&points)
            .map(|f| f.idx)
            .collect();
        let stored = crate::store::sql::rates_of(&all, &kept);
        let lane = pack_rates(&stored).unwrap();
        let inline = pack_figures(RATES_MAGIC, &stored, false).unwrap();
        assert!(lane.len() <= 1964, "{} B", lane.len());
        assert!(
            lane.len() < inline.len(),
            "{} B, inline {} B",
            lane.len(),
            inline.len()
        );
        // Each form reads back bit for bit; the first form still reads.
        for packed in [&lane, &inline] {
            let back = unpack_rates(packed).unwrap();
            assert_eq!(back, stored);
            let bits = |v: &[FleetFigure]| -> Vec<Option<u64>> {
                v.iter().map(|f| f.median_gops.map(f64::to_bits)).collect()
            };
            assert_eq!(bits(&back), bits(&stored));
        }
        let inline_points = pack_figures(POINTS_MAGIC, &points, false).unwrap();
        assert_eq!(unpack_points(&inline_points).unwrap(), points);
        assert!(unpack_points(&packed_rates).is_err() && unpack_rates(&packed).is_err());
        assert!(unpack_points(&inline).is_err() && unpack_rates(&inline_points).is_err());
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
            // The forms with a lane: any lane count, any planes.
            for magic in [POINTS_MAGIC_2, RATES_MAGIC_2] {
                raw[..4].copy_from_slice(magic);
                let _ = unpack(&zip(&raw).unwrap());
                let _ = unpack_points(&zip(&raw).unwrap());
                let _ = unpack_rates(&zip(&raw).unwrap());
            }
        }

        #[test]
        fn any_figures_round_trip_bit_for_bit_in_a_lane(
            rates in proptest::collection::vec(
                (any::<u64>(), any::<u64>(), any::<bool>(), any::<u32>()), 0..40),
        ) {
            let figures: Vec<FleetFigure> = rates
                .iter()
                .enumerate()
                .map(|(i, &(best, median, stream, trials))| {
                    let (best, median) = (f64::from_bits(best), Some(f64::from_bits(median)));
                    FleetFigure {
                        idx: i64::try_from(i).unwrap_or(0),
                        operation: if stream { "stream_copy" } else { "gemm" }.into(),
                        precision: "fp32".into(),
                        size: 1 << (i % 20),
                        status: "measured".into(),
                        reason: None,
                        best_gops: (!stream).then_some(best),
                        median_gops: median.filter(|_| !stream),
                        best_gbps: stream.then_some(best),
                        median_gbps: median.filter(|_| stream),
                        efficiency: None,
                        trials,
                        cv_pct: None,
                        run_id: String::new(),
                        above_theoretical: false,
                        noisy: stream,
                        throttled: false,
                        in_cache: false,
                        bandwidth_eligible: stream,
                    }
                })
                .collect();
            let bits = |v: &[FleetFigure]| -> Vec<[Option<u64>; 6]> {
                v.iter().map(|f| rates_of(f).map(|r| r.map(f64::to_bits))).collect()
            };
            let back = unpack_rates(&pack_rates(&figures).unwrap()).unwrap();
            prop_assert_eq!(bits(&back), bits(&figures));
            let back = unpack_points(&pack_points(&figures).unwrap()).unwrap();
            prop_assert_eq!(bits(&back), bits(&figures));
        }

        #[test]
        fn signed_sizes_round_trip(v in any::<i64>()) {
            prop_assert_eq!(unzigzag(zigzag(v)), v);
        }
    }
}
