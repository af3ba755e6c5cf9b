//! How a result document is stored in `results.result_zstd`: the uploaded text, restored
//! byte for byte when read.
//!
//! Two forms, told apart by their first four bytes:
//! - **plain**: a zstd frame of the text (what every row before this codec holds, and the
//!   fallback);
//! - **derived** (`FCR1`): the result without the figures that are functions of its trials:
//!   a measured record's `latency_ms`, `gops`, `bandwidth_gbps`, `sampling.ci_pct` (of
//!   `samples_ns`, `flops` and `bytes`, by [`fleetcal_proto::stats::derive`], the agent's own
//!   derivation) and `arithmetic_intensity`. A record's field is left out only when the
//!   derivation gives exactly the value it holds; the decoder computes it again.
//!
//! [`encode`] chooses the derived form only when the text is the result's canonical JSON
//! (`CalibrationResult::to_json`, then any trailing text, kept as is) and decoding what it
//! would store gives the uploaded text byte for byte, and it is the smaller; otherwise plain.

use std::time::Duration;

use fleetcal_proto::result::Record;
use fleetcal_proto::stats;
use fleetcal_proto::CalibrationResult;

/// The first bytes of the derived form.
const MAGIC: &[u8; 4] = b"FCR1";
/// The first bytes of a zstd frame (the plain form).
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
/// The zstd level of the plain form: about 7× smaller in about a millisecond for a quick
/// result (higher levels gain ~15 % for 4× the time; see `benches/fleet_reports.rs`).
pub(crate) const PLAIN_LEVEL: i32 = 3;
/// The zstd level of the derived form's body (a third of the text, so a higher level costs
/// about what level 3 of the whole did).
const DERIVED_LEVEL: i32 = 9;

/// A record's `latency_ms` is derived.
const LATENCY: u8 = 1;
/// Its `gops` is derived.
const GOPS: u8 = 1 << 1;
/// Its `bandwidth_gbps` is derived.
const BANDWIDTH: u8 = 1 << 2;
/// Its `sampling.ci_pct` is derived.
const CI: u8 = 1 << 3;
/// Its `arithmetic_intensity` is derived.
const INTENSITY: u8 = 1 << 4;

/// Why stored bytes could not be decoded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CodecError {
    /// Neither form's first bytes.
    #[error("not a stored result document (neither zstd nor derived form)")]
    Unknown,
    /// The derived form ends early or disagrees with itself.
    #[error("derived result document is damaged: {0}")]
    Damaged(String),
    /// zstd failed.
    #[error("zstd: {0}")]
    Zstd(#[from] std::io::Error),
    /// The text is not UTF-8.
    #[error("stored result document is not UTF-8: {0}")]
    Utf8(#[from] std::string::FromUtf8Error),
}

/// The stored form of an uploaded result document (see the module's docs).
pub(crate) fn encode(text: &str) -> Result<Vec<u8>, CodecError> {
    let plain = zstd::bulk::compress(text.as_bytes(), PLAIN_LEVEL)?;
    match encode_derived(text) {
        Some(derived)
            if derived.len() < plain.len() && decode(&derived).is_ok_and(|back| back == text) =>
        {
            Ok(derived)
        }
        _ => Ok(plain),
    }
}

/// The uploaded text back from its stored form.
pub(crate) fn decode(bytes: &[u8]) -> Result<String, CodecError> {
    if bytes.starts_with(&ZSTD_MAGIC) {
        return Ok(String::from_utf8(zstd::stream::decode_all(bytes)?)?);
    }
    let rest = bytes.strip_prefix(MAGIC).ok_or(CodecError::Unknown)?;
    let damaged = |what: &str| CodecError::Damaged(what.to_string());
    let mut r = Reader(rest);
    let records = usize::try_from(r.varint()?).map_err(|_| damaged("record count"))?;
    let masks = r.take(records)?.to_vec();
    let tail_len = usize::try_from(r.varint()?).map_err(|_| damaged("tail length"))?;
    let tail = std::str::from_utf8(r.take(tail_len)?)
        .map_err(|e| CodecError::Damaged(format!("tail: {e}")))?
        .to_string();
    let body = zstd::stream::decode_all(r.0)?;
    let mut result: CalibrationResult =
        serde_json::from_slice(&body).map_err(|e| CodecError::Damaged(format!("body: {e}")))?;
    if result.records.len() != records {
        return Err(damaged("record count differs from the body's"));
    }
    for (rec, mask) in result.records.iter_mut().zip(masks) {
        restore(rec, mask);
    }
    Ok(result.to_json() + &tail)
}

/// The derived form of `text`, when it is a result's canonical JSON (unchecked: [`encode`]
/// decodes it before choosing it).
fn encode_derived(text: &str) -> Option<Vec<u8>> {
    let mut result: CalibrationResult = serde_json::from_str(text).ok()?;
    let tail = text.strip_prefix(result.to_json().as_str())?;
    let masks: Vec<u8> = result.records.iter_mut().map(strip).collect();
    let body = serde_json::to_vec(&result).ok()?;
    let mut out = MAGIC.to_vec();
    put_varint(&mut out, u64::try_from(masks.len()).ok()?);
    out.extend_from_slice(&masks);
    put_varint(&mut out, u64::try_from(tail.len()).ok()?);
    out.extend_from_slice(tail.as_bytes());
    out.extend_from_slice(&zstd::bulk::compress(&body, DERIVED_LEVEL).ok()?);
    Some(out)
}

/// A record's timed trials, from its samples.
fn trials(rec: &Record) -> Vec<Duration> {
    rec.sampling
        .as_ref()
        .map(|s| {
            s.samples_ns
                .iter()
                .map(|&ns| Duration::from_nanos(ns))
                .collect()
        })
        .unwrap_or_default()
}

/// Leaves out of `rec` each field its derivation reproduces; returns which.
fn strip(rec: &mut Record) -> u8 {
    let d = stats::derive(rec.flops, rec.bytes, &trials(rec));
    let mut mask = 0;
    if rec.latency_ms == d.map(|d| d.latency_ms) {
        rec.latency_ms = None;
        mask |= LATENCY;
    }
    if rec.gops == d.and_then(|d| d.gops) {
        rec.gops = None;
        mask |= GOPS;
    }
    if rec.bandwidth_gbps == d.map(|d| d.bandwidth_gbps) {
        rec.bandwidth_gbps = None;
        mask |= BANDWIDTH;
    }
    if let Some(s) = rec.sampling.as_mut() {
        if s.ci_pct == d.and_then(|d| d.ci_pct) {
            s.ci_pct = None;
            mask |= CI;
        }
    }
    if rec.arithmetic_intensity.to_bits()
        == stats::arithmetic_intensity(rec.flops, rec.bytes).to_bits()
    {
        rec.arithmetic_intensity = 0.0;
        mask |= INTENSITY;
    }
    mask
}

/// Puts back into `rec` the fields `mask` says were left out.
fn restore(rec: &mut Record, mask: u8) {
    let d = stats::derive(rec.flops, rec.bytes, &trials(rec));
    if mask & LATENCY != 0 {
        rec.latency_ms = d.map(|d| d.latency_ms);
    }
    if mask & GOPS != 0 {
        rec.gops = d.and_then(|d| d.gops);
    }
    if mask & BANDWIDTH != 0 {
        rec.bandwidth_gbps = d.map(|d| d.bandwidth_gbps);
    }
    if mask & CI != 0 {
        if let Some(s) = rec.sampling.as_mut() {
            s.ci_pct = d.and_then(|d| d.ci_pct);
        }
    }
    if mask & INTENSITY != 0 {
        rec.arithmetic_intensity = stats::arithmetic_intensity(rec.flops, rec.bytes);
    }
}

/// Appends `v` as a LEB128 varint.
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let low = u8::try_from(v & 0x7f).unwrap_or(0); // 7 bits: always fits
        v >>= 7;
        if v == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

/// Reads the derived form's header.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    /// The next `n` bytes.
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.0.len() < n {
            return Err(CodecError::Damaged("header ends early".into()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    /// A LEB128 varint (at most 10 bytes).
    fn varint(&mut self) -> Result<u64, CodecError> {
        let mut v = 0u64;
        for shift in (0..70).step_by(7) {
            let &[b] = self.take(1)? else {
                return Err(CodecError::Damaged("header ends early".into()));
            };
            let bits = u64::from(b & 0x7f);
            v |= bits
                .checked_shl(shift)
                .filter(|x| x >> shift == bits)
                .ok_or_else(|| CodecError::Damaged("varint overflows".into()))?;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(CodecError::Damaged("varint too long".into()))
    }
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
