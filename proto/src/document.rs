//! How a result document is stored in `results.result_zstd`: the uploaded text, restored
//! byte for byte when read.
//!
//! Two forms, told apart by their first four bytes:
//! - **plain**: a zstd frame of the text (what every row before this codec holds, and the
//!   fallback);
//! - **derived** (`FCR2`; `FCR1` before `efficiency` was derived and the trials packed): the
//!   result without the figures that are functions of its trials: a measured record's `latency_ms`, `gops`,
//!   `bandwidth_gbps`, `sampling.ci_pct` (of `samples_ns`, `flops` and `bytes`, by
//!   [`crate::stats::derive`], the agent's own derivation), `arithmetic_intensity`
//!   and `efficiency` (the best rate over the peak the result's preset names, by
//!   [`crate::stats::efficiency`], the agent's own rule). A record's field is left
//!   out only when the derivation gives exactly (bit for bit) the value it holds; the decoder
//!   computes it again. The trials themselves (`samples_ns`, most of what is left) are
//!   packed beside the JSON body as varints of each one's difference from the one before
//!   (~3.1 KB for a quick result's 1,256 trials, where their JSON compressed to ~4.2 KB).
//!
//! The derived form: `FCR2`, the id of the built-in zstd dictionary its frame is compressed
//! with (0: none), the record count and one mask byte per record (which fields are left out),
//! the trailing text, then one zstd frame of the trials section (its length, then per record
//! whose mask says so: the count and the zigzag varint differences) and the JSON body.
//! `FCR1` has no dictionary id and no trials section.
//!
//! **The dictionary.** Most of what is left of a result is the same on every board: its
//! keys, the metadata's structure, the fixed texts of anomalies and telemetry. zstd compresses
//! a small document far better against a dictionary that holds such text. Dictionary 1
//! (`store/dict/result-1.json`) is the stripped body (as this codec stores it) of one quick
//! result measured on a development machine (`calibrate --quick`, numpy, 2026-11-30; made by
//! the ignored test `codec::tests::write_dictionary`). It is built into the binary and never
//! changes: a document names the dictionary it needs, and a new one gets a new id.
//!
//! [`encode_parsed`] chooses the derived form when the text is the result's canonical JSON
//! (`CalibrationResult::to_json`, then any trailing text, kept as is) and the stored body
//! parses back to exactly the result it was made of; otherwise plain. Decoding then gives the
//! uploaded text byte for byte: each field left out is recomputed from the same trials, flops,
//! bytes and preset by the same functions that matched it bit for bit. (Before, the encoder
//! decoded the whole document once more to check; the body's round trip is the part that
//! check could catch, at a tenth of the cost.)

use std::time::Duration;

use crate::result::Record;
use crate::stats::{self, Derived};
use crate::{CalibrationResult, Precision};

use crate::bytes::{put_len, put_varint, unzigzag, zigzag, Reader};

/// The first bytes of the derived form.
const MAGIC: &[u8; 4] = b"FCR2";
/// The first bytes of the derived form as stored before `efficiency` was derived (read
/// still: its masks never have [`EFFICIENCY`]).
const MAGIC_V1: &[u8; 4] = b"FCR1";
/// The first bytes of a zstd frame (the plain form).
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
/// The zstd level of the plain form: about 7× smaller in about a millisecond for a quick
/// result (higher levels gain ~15 % for 4× the time; see `benches/fleet_reports.rs`).
pub const PLAIN_LEVEL: i32 = 3;
/// The zstd level of the derived form's frame. Against the dictionary, level 3 makes a quick
/// result's frame 5.3 KB in 0.08 ms, level 9 4.1 KB in 0.53 ms (release build, this 2-vCPU
/// machine): the coordinator's CPU per upload is what limits ingest, so level 3.
const DERIVED_LEVEL: i32 = 3;

/// The built-in dictionaries by id (see the module's docs); never change one once shipped.
const DICTIONARIES: [(u8, &[u8]); 1] = [(1, include_bytes!("dict/result-1.json"))];
/// The dictionary new documents are compressed with.
const DICTIONARY: u8 = 1;

/// Dictionary `id`, prepared for compressing at [`DERIVED_LEVEL`] (once per process).
fn encoder_dictionary() -> Option<&'static zstd::dict::EncoderDictionary<'static>> {
    static PREPARED: std::sync::OnceLock<Option<zstd::dict::EncoderDictionary<'static>>> =
        std::sync::OnceLock::new();
    PREPARED
        .get_or_init(|| {
            DICTIONARIES
                .iter()
                .find(|(id, _)| *id == DICTIONARY)
                .map(|(_, d)| zstd::dict::EncoderDictionary::copy(d, DERIVED_LEVEL))
        })
        .as_ref()
}

/// Dictionary `id`, prepared for decompressing (once per process each).
fn decoder_dictionary(id: u8) -> Option<&'static zstd::dict::DecoderDictionary<'static>> {
    static PREPARED: std::sync::OnceLock<Vec<(u8, zstd::dict::DecoderDictionary<'static>)>> =
        std::sync::OnceLock::new();
    PREPARED
        .get_or_init(|| {
            DICTIONARIES
                .iter()
                .map(|(id, d)| (*id, zstd::dict::DecoderDictionary::copy(d)))
                .collect()
        })
        .iter()
        .find(|(i, _)| *i == id)
        .map(|(_, d)| d)
}

/// The largest frame content [`decompress`] takes in one allocation from the size the
/// frame declares (a stored quick result's is ~120 KB).
const MAX_DECLARED: u64 = 64 * 1024 * 1024;

/// A zstd frame decompressed with dictionary `id` (0: none). Each thread keeps its
/// decompressor with the dictionary loaded (a report decodes thousands of documents; a fresh
/// context each cost ~2 % of that).
pub fn decompress(frame: &[u8], id: u8) -> Result<Vec<u8>, CodecError> {
    if id == 0 {
        return Ok(zstd::stream::decode_all(frame)?);
    }
    let dict = decoder_dictionary(id)
        .ok_or_else(|| CodecError::Damaged(format!("unknown dictionary {id}")))?;
    thread_local! {
        static DECOMPRESSOR: std::cell::RefCell<Option<(u8, zstd::bulk::Decompressor<'static>)>> =
            const { std::cell::RefCell::new(None) };
    }
    let declared = zstd::zstd_safe::get_frame_content_size(frame)
        .ok()
        .flatten()
        .filter(|n| *n <= MAX_DECLARED);
    if let Some(size) = declared {
        let done = DECOMPRESSOR.with(|cell| -> Option<Result<Vec<u8>, CodecError>> {
            let mut slot = cell.try_borrow_mut().ok()?;
            if slot.as_ref().is_none_or(|(have, _)| *have != id) {
                *slot = Some((
                    id,
                    zstd::bulk::Decompressor::with_prepared_dictionary(dict).ok()?,
                ));
            }
            let (_, decompressor) = slot.as_mut()?;
            let size = usize::try_from(size).ok()?;
            Some(
                decompressor
                    .decompress(frame, size)
                    .map_err(CodecError::from),
            )
        });
        if let Some(done) = done {
            return done;
        }
    }
    // No declared size (or no thread-local context): the streaming decoder.
    let mut decoder = zstd::stream::read::Decoder::with_prepared_dictionary(frame, dict)?;
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut decoder, &mut out)?;
    Ok(out)
}

/// `data` compressed with the current dictionary: (its id, the frame). Each thread keeps
/// its compressor (a zstd context is ~1 MB to set up).
pub fn compress(data: &[u8]) -> Result<(u8, Vec<u8>), CodecError> {
    thread_local! {
        static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    let Some(dict) = encoder_dictionary() else {
        return Ok((0, zstd::bulk::compress(data, DERIVED_LEVEL)?));
    };
    COMPRESSOR.with(|cell| {
        let mut slot = cell.try_borrow_mut().map_err(|_| {
            CodecError::Zstd(std::io::Error::other("compressor in use on this thread"))
        })?;
        let compressor = match slot.as_mut() {
            Some(c) => c,
            None => slot.insert(zstd::bulk::Compressor::with_prepared_dictionary(dict)?),
        };
        Ok((DICTIONARY, compressor.compress(data)?))
    })
}

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
/// Its `efficiency` is derived (`FCR2`).
const EFFICIENCY: u8 = 1 << 5;
/// Its `sampling.samples_ns` is in the trials section, not the body (`FCR2`).
const SAMPLES: u8 = 1 << 6;

/// Why stored bytes could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
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
    /// The plain text is not a result document.
    #[error("stored result document does not parse: {0}")]
    Parse(#[from] serde_json::Error),
}

/// The stored form of an uploaded result document (see the module's docs), parsing it
/// first.
#[cfg(test)]
pub fn encode(text: &str) -> Result<Vec<u8>, CodecError> {
    let parsed: Option<CalibrationResult> = serde_json::from_str(text).ok();
    encode_parsed(text, parsed.as_ref())
}

/// The stored form of `text`, whose parse is `result` (the caller parsed it already; `None`
/// when it is not a result document, which is stored plain).
pub fn encode_parsed(
    text: &str,
    result: Option<&CalibrationResult>,
) -> Result<Vec<u8>, CodecError> {
    match result.and_then(|r| encode_derived(text, r)) {
        Some(derived) => Ok(derived),
        None => Ok(zstd::bulk::compress(text.as_bytes(), PLAIN_LEVEL)?),
    }
}

/// The uploaded text back from its stored form.
pub fn decode(bytes: &[u8]) -> Result<String, CodecError> {
    if bytes.starts_with(&ZSTD_MAGIC) {
        return Ok(String::from_utf8(zstd::stream::decode_all(bytes)?)?);
    }
    let (result, tail) = decode_derived(bytes)?;
    Ok(result.to_json() + &tail)
}

/// The result a stored form holds, parsed (what the fleet reports read figures from; the
/// derived form is not turned into text and parsed again).
pub fn decode_result(bytes: &[u8]) -> Result<CalibrationResult, CodecError> {
    if bytes.starts_with(&ZSTD_MAGIC) {
        return Ok(parse_json(&zstd::stream::decode_all(bytes)?)?);
    }
    decode_derived(bytes).map(|(result, _)| result)
}

/// An agent's upload in the packed form: the result it decodes to. The bytes are
/// untrusted, so the form must be the current one (`FCR2`) with a built-in dictionary and
/// no trailing text, and its frame must declare its size, at most `max_bytes`: a frame that
/// does not, or says more, is refused before anything is decompressed.
pub fn decode_upload(bytes: &[u8], max_bytes: u64) -> Result<CalibrationResult, CodecError> {
    if !bytes.starts_with(MAGIC) {
        return Err(CodecError::Damaged(format!(
            "not the packed form: it does not start with {:?}",
            String::from_utf8_lossy(MAGIC)
        )));
    }
    let h = Header::parse(bytes)?;
    let dictionary = h.dictionary;
    if dictionary == 0 || decoder_dictionary(dictionary).is_none() {
        return Err(CodecError::Damaged(format!(
            "dictionary {dictionary} is not one this build knows"
        )));
    }
    if !h.tail.is_empty() {
        return Err(CodecError::Damaged(
            "an upload has no text after its JSON".into(),
        ));
    }
    match zstd::zstd_safe::get_frame_content_size(h.frame) {
        Ok(Some(n)) if n <= max_bytes => {}
        Ok(Some(n)) => {
            return Err(CodecError::Damaged(format!(
                "its frame holds {n} bytes, more than the {max_bytes} an upload may"
            )))
        }
        _ => {
            return Err(CodecError::Damaged(
                "its frame does not say how large it is".into(),
            ))
        }
    }
    decode_derived(bytes).map(|(result, _)| result)
}

/// The packed form of a result document's JSON `text` for an upload ([`decode_upload`]
/// reads it back as the result, and its canonical JSON is `text`, byte for byte); `None`
/// when `text` is not a result's canonical JSON with nothing after it (upload the JSON).
pub fn encode_upload(text: &str) -> Option<Vec<u8>> {
    let result: CalibrationResult = serde_json::from_str(text).ok()?;
    let packed = encode_derived(text, &result)?;
    // Trailing text (even a newline) stays out of an upload's packed form.
    let no_tail = Header::parse(&packed).ok()?.tail.is_empty();
    no_tail.then_some(packed)
}

/// The derived form's header, undecoded: the one reading of its layout (see the module's
/// docs), for decoding ([`DerivedForm::read`]) and for the checks of an upload
/// ([`decode_upload`], [`encode_upload`]).
struct Header<'b> {
    /// `FCR2` (`FCR1` has no dictionary id and no trials section).
    packed_trials: bool,
    /// The dictionary the frame is compressed with (0: none).
    dictionary: u8,
    /// One mask byte per record.
    masks: &'b [u8],
    /// The text after the JSON.
    tail: &'b [u8],
    /// The zstd frame.
    frame: &'b [u8],
}

impl<'b> Header<'b> {
    /// The header of `bytes` in the derived form.
    fn parse(bytes: &'b [u8]) -> Result<Header<'b>, CodecError> {
        let (rest, packed_trials) = match bytes.strip_prefix(MAGIC) {
            Some(rest) => (rest, true),
            None => (
                bytes.strip_prefix(MAGIC_V1).ok_or(CodecError::Unknown)?,
                false,
            ),
        };
        let mut r = Reader(rest);
        let dictionary = if packed_trials { r.byte()? } else { 0 };
        let records = r.len("record count")?;
        let masks = r.take(records)?;
        let tail_len = r.len("tail")?;
        let tail = r.take(tail_len)?;
        Ok(Header {
            packed_trials,
            dictionary,
            masks,
            tail,
            frame: r.0,
        })
    }
}

/// The derived form's parts: each record's mask, the trailing text, and the decompressed
/// frame (the packed trials, then the JSON body).
struct DerivedForm {
    masks: Vec<u8>,
    tail: String,
    frame: Vec<u8>,
    /// `FCR2`: the frame starts with the trials section.
    packed_trials: bool,
}

impl DerivedForm {
    /// The parts of `bytes` in the derived form.
    fn read(bytes: &[u8]) -> Result<DerivedForm, CodecError> {
        let h = Header::parse(bytes)?;
        let tail = std::str::from_utf8(h.tail)
            .map_err(|e| CodecError::Damaged(format!("tail: {e}")))?
            .to_string();
        Ok(DerivedForm {
            masks: h.masks.to_vec(),
            tail,
            frame: decompress(h.frame, h.dictionary)?,
            packed_trials: h.packed_trials,
        })
    }

    /// The trials section and the JSON body.
    fn split(&self) -> Result<(Reader<'_>, &[u8]), CodecError> {
        if !self.packed_trials {
            return Ok((Reader(&[]), self.frame.as_slice()));
        }
        let mut f = Reader(&self.frame);
        let n = f.len("trials section")?;
        let section = f.take(n)?;
        Ok((Reader(section), f.0))
    }
}

/// Puts back each record's packed trials and the fields its mask (with `keep` of its bits)
/// says were left out; `records` are the body's, `peaks` its preset's.
fn restore_all<'r>(
    records: impl ExactSizeIterator<Item = &'r mut Record>,
    masks: &[u8],
    keep: u8,
    mut section: Reader<'_>,
    peaks: &Peaks,
) -> Result<(), CodecError> {
    if records.len() != masks.len() {
        return Err(CodecError::Damaged(
            "record count differs from the body's".into(),
        ));
    }
    for (rec, &mask) in records.zip(masks) {
        if mask & SAMPLES != 0 {
            let s = rec.sampling.as_mut().ok_or_else(|| {
                CodecError::Damaged("packed trials of a record without sampling".into())
            })?;
            let n = section.len("trial count")?;
            let mut prev = 0u64;
            s.samples_ns = Vec::with_capacity(n);
            for _ in 0..n {
                // Two's complement differences: every u64 round-trips.
                prev = prev.wrapping_add(unzigzag(section.varint()?) as u64);
                s.samples_ns.push(prev);
            }
        }
        restore(rec, mask & keep, peaks);
    }
    if !section.0.is_empty() {
        return Err(CodecError::Damaged("trials left over".into()));
    }
    Ok(())
}

/// `bytes` parsed as JSON: checked as UTF-8 once, then parsed as text. (serde_json checks
/// each string of a byte slice on its own: ~25 % of a result body's parse.)
fn parse_json<'de, T: serde::Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, serde_json::Error> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| <serde_json::Error as serde::de::Error>::custom(format!("not UTF-8: {e}")))?;
    serde_json::from_str(text)
}

/// The result and the text after its JSON, from the derived form.
fn decode_derived(bytes: &[u8]) -> Result<(CalibrationResult, String), CodecError> {
    let derived = DerivedForm::read(bytes)?;
    let (section, body) = derived.split()?;
    let mut result: CalibrationResult =
        parse_json(body).map_err(|e| CodecError::Damaged(format!("body: {e}")))?;
    let peaks = Peaks::of(&result);
    restore_all(
        result.records.iter_mut(),
        &derived.masks,
        u8::MAX,
        section,
        &peaks,
    )?;
    Ok((result, derived.tail))
}

/// Every record of a document, read without the rest of it: the body is parsed for its
/// preset's peaks and its records alone (their telemetry, the metadata and the summary are
/// skipped, not built; a record's `array_mib` and `arithmetic_intensity` are not read), and
/// a left-out confidence interval is not computed again. What the coordinator's compare
/// report reads each pair's figures from: about half the time of [`decode_result`].
pub fn decode_records(bytes: &[u8]) -> Result<Vec<Record>, CodecError> {
    if bytes.starts_with(&ZSTD_MAGIC) {
        let text = zstd::stream::decode_all(bytes)?;
        let lean: LeanResult = parse_json(&text)?;
        return Ok(lean
            .records
            .into_iter()
            .map(LeanRecord::into_record)
            .collect());
    }
    let derived = DerivedForm::read(bytes)?;
    let (section, body) = derived.split()?;
    let lean: LeanResult =
        parse_json(body).map_err(|e| CodecError::Damaged(format!("body: {e}")))?;
    let peaks = Peaks {
        by_precision: lean.metadata.preset.peaks.into_iter().collect(),
        bandwidth: lean.metadata.preset.bandwidth_gbps,
    };
    let mut records: Vec<Record> = lean
        .records
        .into_iter()
        .map(LeanRecord::into_record)
        .collect();
    restore_all(records.iter_mut(), &derived.masks, !CI, section, &peaks)?;
    Ok(records)
}

/// What [`decode_records`] parses of a result document: the rest is skipped.
#[derive(serde::Deserialize)]
struct LeanResult {
    metadata: LeanMetadata,
    records: Vec<LeanRecord>,
}

/// Of the metadata, the preset.
#[derive(serde::Deserialize)]
struct LeanMetadata {
    preset: LeanPreset,
}

/// Of the preset, the peaks efficiencies are of.
#[derive(serde::Deserialize)]
struct LeanPreset {
    #[serde(default)]
    bandwidth_gbps: Option<f64>,
    #[serde(default)]
    peaks: std::collections::BTreeMap<Precision, f64>,
}

/// A record without its telemetry (and its STREAM array size and intensity, which no figure
/// row holds).
#[derive(serde::Deserialize)]
struct LeanRecord {
    operation: crate::Operation,
    precision: Precision,
    size: u64,
    status: crate::result::Status,
    #[serde(default)]
    reason: Option<String>,
    flops: f64,
    bytes: f64,
    trials: u32,
    #[serde(default)]
    latency_ms: Option<crate::result::LatencyStats>,
    #[serde(default)]
    gops: Option<crate::result::Rate>,
    #[serde(default)]
    bandwidth_gbps: Option<crate::result::Rate>,
    #[serde(default)]
    efficiency: Option<f64>,
    flags: crate::result::Flags,
    #[serde(default)]
    sampling: Option<crate::result::Sampling>,
}

impl LeanRecord {
    fn into_record(self) -> Record {
        Record {
            operation: self.operation,
            precision: self.precision,
            size: self.size,
            array_mib: None,
            status: self.status,
            reason: self.reason,
            flops: self.flops,
            bytes: self.bytes,
            arithmetic_intensity: 0.0,
            trials: self.trials,
            latency_ms: self.latency_ms,
            gops: self.gops,
            bandwidth_gbps: self.bandwidth_gbps,
            efficiency: self.efficiency,
            flags: self.flags,
            sampling: self.sampling,
            telemetry: None,
        }
    }
}

/// The derived form of `text`, when it is `result`'s canonical JSON and the body reads back
/// as what was stored (see the module's docs).
fn encode_derived(text: &str, result: &CalibrationResult) -> Option<Vec<u8>> {
    let tail = canonical_tail(text, result)?;
    let mut stripped = result.clone();
    let peaks = Peaks::of(&stripped);
    let mut section = Vec::new();
    let masks: Vec<u8> = stripped
        .records
        .iter_mut()
        .map(|rec| {
            let mut mask = strip(rec, &peaks);
            if let Some(s) = rec.sampling.as_mut().filter(|s| !s.samples_ns.is_empty()) {
                put_len(&mut section, s.samples_ns.len());
                let mut prev = 0u64;
                for &ns in &s.samples_ns {
                    // Two's complement differences: every u64 round-trips.
                    put_varint(&mut section, zigzag(ns.wrapping_sub(prev) as i64));
                    prev = ns;
                }
                s.samples_ns = Vec::new();
                mask |= SAMPLES;
            }
            mask
        })
        .collect();
    // The body reads back as `stripped`: `text` is `result`'s canonical JSON and parsed
    // as `result`, so `result` round-trips; `stripped` differs from it only in options set to
    // `None`, an intensity set to `0.0` and emptied trial lists, each of which reads back as
    // itself (`codec_tests`: `stripped_fields_read_back`, and the round-trip properties).
    let body = serde_json::to_vec(&stripped).ok()?;
    let mut frame = Vec::with_capacity(section.len() + body.len() + 10);
    put_len(&mut frame, section.len());
    frame.extend_from_slice(&section);
    frame.extend_from_slice(&body);
    let (dictionary, compressed) = compress(&frame).ok()?;
    let mut out = MAGIC.to_vec();
    out.push(dictionary);
    put_len(&mut out, masks.len());
    out.extend_from_slice(&masks);
    put_len(&mut out, tail.len());
    out.extend_from_slice(tail.as_bytes());
    out.extend_from_slice(&compressed);
    Some(out)
}

/// The body this codec stores for `result` (its derived fields and trials left out): what a
/// dictionary is made of.
#[cfg(test)]
fn stored_body(result: &CalibrationResult) -> Vec<u8> {
    let mut stripped = result.clone();
    let peaks = Peaks::of(&stripped);
    for rec in &mut stripped.records {
        strip(rec, &peaks);
        if let Some(s) = rec.sampling.as_mut() {
            s.samples_ns = Vec::new();
        }
    }
    serde_json::to_vec(&stripped).unwrap_or_default()
}

/// The text after `result`'s canonical JSON (`CalibrationResult::to_json`) in `text`, when
/// `text` starts with it. The JSON is written into a buffer each thread keeps (a quick
/// result's is 266 KB), then compared: a third faster than comparing as it is written, whose
/// many small writes cost more than the copy.
fn canonical_tail<'t>(text: &'t str, result: &CalibrationResult) -> Option<&'t str> {
    /// The most a thread keeps between documents; a larger one's buffer is freed after it.
    const KEEP: usize = 1 << 20;
    thread_local! {
        static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUFFER.with(|cell| {
        let mut fresh = Vec::new();
        let mut kept = cell.try_borrow_mut().ok();
        let buf = kept.as_deref_mut().unwrap_or(&mut fresh);
        buf.clear();
        // `to_json` is `to_string_pretty`: the same formatter.
        let written = serde_json::to_writer_pretty(&mut *buf, result).is_ok();
        let len = buf.len();
        let same = written && text.as_bytes().get(..len) == Some(buf.as_slice());
        if buf.capacity() > KEEP {
            *buf = Vec::new();
        }
        if same {
            text.get(len..)
        } else {
            None
        }
    })
}

/// The theoretical peaks a result's efficiencies are of: its preset's, per precision, and
/// its bandwidth.
struct Peaks {
    by_precision: Vec<(Precision, f64)>,
    bandwidth: Option<f64>,
}

impl Peaks {
    fn of(result: &CalibrationResult) -> Peaks {
        let preset = &result.metadata.preset;
        Peaks {
            by_precision: preset.peaks.iter().map(|(p, v)| (*p, *v)).collect(),
            bandwidth: preset.bandwidth_gbps,
        }
    }

    /// The peak a record's efficiency is of.
    fn of_record(&self, rec: &Record) -> Option<f64> {
        if rec.operation.is_stream() {
            self.bandwidth
        } else {
            self.by_precision
                .iter()
                .find(|(p, _)| *p == rec.precision)
                .map(|(_, v)| *v)
        }
    }
}

/// The efficiency the agent's rule gives a record with derived figures `d`.
fn derived_efficiency(rec: &Record, d: Option<&Derived>, peaks: &Peaks) -> Option<f64> {
    let best = stats::best_rate(rec.operation.is_stream(), d?);
    stats::efficiency(best, peaks.of_record(rec))
}

/// Whether two optional doubles are the same bits (so `-0.0` is not `0.0`).
fn same(a: Option<f64>, b: Option<f64>) -> bool {
    a.map(f64::to_bits) == b.map(f64::to_bits)
}

/// Whether two latency statistics are the same bits.
fn same_latency(
    a: Option<&crate::result::LatencyStats>,
    b: Option<&crate::result::LatencyStats>,
) -> bool {
    let bits = |l: &crate::result::LatencyStats| {
        [l.best, l.median, l.mean, l.std, l.max, l.cv].map(f64::to_bits)
    };
    a.map(bits) == b.map(bits)
}

/// Whether two rates are the same bits.
fn same_rate(a: Option<&crate::result::Rate>, b: Option<&crate::result::Rate>) -> bool {
    let bits = |r: &crate::result::Rate| [r.best, r.median, r.mean].map(f64::to_bits);
    a.map(bits) == b.map(bits)
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

/// Leaves out of `rec` each field its derivation reproduces bit for bit; returns which.
fn strip(rec: &mut Record, peaks: &Peaks) -> u8 {
    let d = stats::derive(rec.flops, rec.bytes, &trials(rec));
    let efficiency = derived_efficiency(rec, d.as_ref(), peaks);
    let mut mask = 0;
    if same_latency(rec.latency_ms.as_ref(), d.as_ref().map(|d| &d.latency_ms)) {
        rec.latency_ms = None;
        mask |= LATENCY;
    }
    if same_rate(rec.gops.as_ref(), d.as_ref().and_then(|d| d.gops.as_ref())) {
        rec.gops = None;
        mask |= GOPS;
    }
    if same_rate(
        rec.bandwidth_gbps.as_ref(),
        d.as_ref().map(|d| &d.bandwidth_gbps),
    ) {
        rec.bandwidth_gbps = None;
        mask |= BANDWIDTH;
    }
    if let Some(s) = rec.sampling.as_mut() {
        if same(s.ci_pct, d.and_then(|d| d.ci_pct)) {
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
    if same(rec.efficiency, efficiency) {
        rec.efficiency = None;
        mask |= EFFICIENCY;
    }
    mask
}

/// Puts back into `rec` the fields `mask` says were left out.
fn restore(rec: &mut Record, mask: u8, peaks: &Peaks) {
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
    if mask & EFFICIENCY != 0 {
        rec.efficiency = derived_efficiency(rec, d.as_ref(), peaks);
    }
}

#[cfg(test)]
#[path = "document_tests.rs"]
mod tests;
