use super::*;
use crate::result::Status;
use proptest::prelude::*;

/// One real quick result (the coordinator's fixture; numpy engine, 164 records).
const TEMPLATE: &str = include_str!("../../coordinator/testdata/quick-result.json");

/// What [`decode_records`] reads of a record: no telemetry, STREAM array size or intensity,
/// and a confidence interval only as stored (not derived again).
fn lean(records: &[Record]) -> Vec<Record> {
    records
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.telemetry = None;
            r.array_mib = None;
            r.arithmetic_intensity = 0.0;
            if let Some(s) = r.sampling.as_mut() {
                s.ci_pct = None;
            }
            r
        })
        .collect()
}

fn template() -> CalibrationResult {
    CalibrationResult::from_json(TEMPLATE, "template").unwrap()
}

/// The template as another board or night measured it: every trial scaled by `f` (and
/// jittered by `seed`), every figure derived again from the new trials, as the agent would.
fn varied(f: f64, seed: u64) -> CalibrationResult {
    let mut r = template();
    let peaks = Peaks::of(&r);
    let mut x = seed | 1;
    for rec in &mut r.records {
        let Some(s) = rec.sampling.as_mut() else {
            continue;
        };
        for ns in &mut s.samples_ns {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let jitter = 1.0 + ((x % 1000) as f64 - 500.0) / 50_000.0;
            *ns = ((*ns as f64) * f * jitter).round().max(1.0) as u64;
        }
        let d = stats::derive(rec.flops, rec.bytes, &trials(rec)).unwrap();
        rec.latency_ms = Some(d.latency_ms);
        rec.gops = d.gops;
        rec.bandwidth_gbps = Some(d.bandwidth_gbps);
        if let Some(s) = rec.sampling.as_mut() {
            s.ci_pct = d.ci_pct;
        }
        if rec.efficiency.is_some() {
            rec.efficiency = derived_efficiency(rec, Some(&d), &peaks);
        }
    }
    r.metadata.run_id = format!("run-{seed}");
    r
}

#[test]
fn the_real_quick_result_is_stored_derived_and_reads_back_byte_for_byte() {
    let stored = encode(TEMPLATE).unwrap();
    assert!(stored.starts_with(MAGIC), "derived form chosen");
    let plain = zstd::bulk::compress(TEMPLATE.as_bytes(), PLAIN_LEVEL).unwrap();
    assert!(
        stored.len() * 2 < plain.len(),
        "derived {} B, plain {} B",
        stored.len(),
        plain.len()
    );
    assert_eq!(decode(&stored).unwrap(), TEMPLATE);
}

#[test]
fn every_measured_record_of_the_real_result_is_fully_derived() {
    let mut r = template();
    let peaks = Peaks::of(&r);
    let measured = r
        .records
        .iter()
        .filter(|rec| rec.status == Status::Measured)
        .count();
    let full = r
        .records
        .iter_mut()
        .filter(|rec| rec.status == Status::Measured)
        .map(|rec| strip(rec, &peaks))
        .filter(|&m| m == LATENCY | GOPS | BANDWIDTH | CI | INTENSITY | EFFICIENCY)
        .count();
    assert!(measured > 100);
    assert_eq!(full, measured);
}

#[test]
fn a_figure_that_is_not_its_derivation_is_kept_as_it_is() {
    // What the benches did before: rates scaled without their latencies.
    let mut r = template();
    for rec in &mut r.records {
        if let Some(g) = rec.gops.as_mut() {
            g.best *= 1.07;
        }
    }
    r.records[3].arithmetic_intensity += 1.0;
    if let Some(s) = r.records[5].sampling.as_mut() {
        s.ci_pct = Some(12.5);
    }
    let text = r.to_json();
    let stored = encode(&text).unwrap();
    assert!(stored.starts_with(MAGIC));
    assert_eq!(decode(&stored).unwrap(), text);
    let mut rec = r.records[0].clone();
    let mask = strip(&mut rec, &Peaks::of(&r));
    assert_eq!(mask & GOPS, 0, "a scaled rate is not derived");
    assert!(rec.gops.is_some());
    assert_ne!(mask & LATENCY, 0);
}

#[test]
fn text_that_is_not_the_canonical_json_is_stored_plain() {
    let compact = serde_json::to_string(&template()).unwrap();
    let unknown = TEMPLATE.replacen("{", "{\"extra\": 1,", 1);
    let reordered = TEMPLATE.replacen("\"schema_version\": 1", "\"schema_version\":1", 1);
    for text in [
        compact.as_str(),
        unknown.as_str(),
        reordered.as_str(),
        "{}",
        "not json",
        "",
    ] {
        let stored = encode(text).unwrap();
        assert!(
            stored.starts_with(&ZSTD_MAGIC),
            "{:?}",
            &text[..text.len().min(20)]
        );
        assert_eq!(decode(&stored).unwrap(), text);
    }
}

#[test]
fn trailing_text_after_the_json_is_kept() {
    let text = template().to_json() + "\n\n";
    let stored = encode(&text).unwrap();
    assert!(stored.starts_with(MAGIC));
    assert_eq!(decode(&stored).unwrap(), text);
}

#[test]
fn rows_stored_before_the_codec_read_as_they_are() {
    let old = zstd::bulk::compress(TEMPLATE.as_bytes(), 3).unwrap();
    assert_eq!(decode(&old).unwrap(), TEMPLATE);
}

#[test]
fn damaged_bytes_are_an_error_not_a_panic() {
    let stored = encode(TEMPLATE).unwrap();
    assert!(matches!(decode(b"nope"), Err(CodecError::Unknown)));
    for cut in [4, 5, 40, 200, stored.len() - 1] {
        assert!(decode(&stored[..cut]).is_err(), "cut at {cut}");
    }
    let mut long = MAGIC.to_vec();
    long.extend([0xff; 11]);
    assert!(decode(&long).is_err());
}

#[test]
fn a_negative_zero_is_not_taken_for_its_derivation() {
    // `-0.0 == 0.0`, but the text differs: a field is left out only when its bits match.
    let mut r = template();
    let i = r
        .records
        .iter()
        .position(|rec| rec.status == Status::Measured && rec.efficiency.is_some())
        .unwrap();
    r.records[i].arithmetic_intensity = -0.0;
    r.records[i].flops = 0.0;
    r.records[i].gops = None;
    let text = r.to_json();
    let stored = encode(&text).unwrap();
    assert_eq!(decode(&stored).unwrap(), text);
}

#[test]
fn an_efficiency_of_another_peak_is_kept() {
    let mut r = template();
    let i = r
        .records
        .iter()
        .position(|rec| rec.efficiency.is_some())
        .unwrap();
    r.records[i].efficiency = r.records[i].efficiency.map(|e| e * 1.5);
    let text = r.to_json();
    let stored = encode(&text).unwrap();
    assert!(stored.starts_with(MAGIC));
    assert_eq!(decode(&stored).unwrap(), text);
    let mut rec = r.records[i].clone();
    assert_eq!(strip(&mut rec, &Peaks::of(&r)) & EFFICIENCY, 0);
    assert!(rec.efficiency.is_some());
}

#[test]
fn the_result_decodes_parsed_as_it_was_uploaded() {
    let r = varied(0.8, 3);
    let text = r.to_json();
    for stored in [
        encode(&text).unwrap(),
        zstd::bulk::compress(text.as_bytes(), PLAIN_LEVEL).unwrap(),
    ] {
        assert_eq!(decode_result(&stored).unwrap(), r);
    }
    assert!(decode_result(&zstd::bulk::compress(b"{}", 3).unwrap()).is_err());
}

#[test]
fn the_first_derived_form_still_reads() {
    // FCR1: the same layout, masks without EFFICIENCY (efficiency kept in the body).
    let r = varied(1.1, 5);
    let text = r.to_json();
    let mut stripped = r.clone();
    let peaks = Peaks::of(&r);
    let masks: Vec<u8> = stripped
        .records
        .iter_mut()
        .map(|rec| {
            let e = rec.efficiency;
            let m = strip(rec, &peaks) & !EFFICIENCY;
            rec.efficiency = e;
            m
        })
        .collect();
    let mut old = MAGIC_V1.to_vec();
    crate::bytes::put_len(&mut old, masks.len());
    old.extend_from_slice(&masks);
    crate::bytes::put_len(&mut old, 0);
    old.extend(zstd::bulk::compress(&serde_json::to_vec(&stripped).unwrap(), 9).unwrap());
    assert_eq!(decode(&old).unwrap(), text);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn varied_real_results_round_trip_derived(f in 0.5f64..2.0, seed in any::<u64>()) {
        let text = varied(f, seed).to_json();
        let stored = encode(&text).unwrap();
        prop_assert!(stored.starts_with(MAGIC));
        prop_assert_eq!(decode(&stored).unwrap(), text);
    }

    #[test]
    fn results_with_figures_off_their_derivation_round_trip(
        f in 0.5f64..2.0,
        seed in any::<u64>(),
        g in 0.5f64..2.0,
        every in 1usize..20,
    ) {
        let mut r = varied(f, seed);
        for rec in r.records.iter_mut().step_by(every) {
            if let Some(l) = rec.latency_ms.as_mut() {
                l.mean *= g;
            }
            if let Some(b) = rec.bandwidth_gbps.as_mut() {
                b.median *= g;
            }
        }
        let text = r.to_json();
        let stored = encode(&text).unwrap();
        prop_assert_eq!(decode(&stored).unwrap(), text);
        prop_assert_eq!(lean(&decode_records(&stored).unwrap()), lean(&r.records));
    }

    #[test]
    fn any_bytes_decode_without_panicking(tail in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut bytes = MAGIC.to_vec();
        bytes.extend(tail);
        let _ = decode(&bytes);
    }
}

#[test]
fn trials_of_any_value_round_trip_packed() {
    let mut r = varied(1.0, 9);
    let i = r
        .records
        .iter()
        .position(|rec| rec.sampling.is_some())
        .unwrap();
    if let Some(s) = r.records[i].sampling.as_mut() {
        s.samples_ns = vec![u64::MAX, 0, 1, u64::MAX - 1, 5, 5];
    }
    let text = r.to_json();
    let stored = encode(&text).unwrap();
    assert!(stored.starts_with(MAGIC));
    assert_eq!(decode(&stored).unwrap(), text);
}

#[test]
fn the_packed_trials_and_the_dictionary_make_a_quick_result_smaller() {
    // 15.2 KB with the trials in the JSON body and no dictionary (FCR1); the packed trials
    // save about a kilobyte, the dictionary (made from another board's result) ~5 KB more.
    let stored = encode(&varied(1.02, 11).to_json()).unwrap();
    assert!(stored.len() < 10_000, "{} B", stored.len());
}

/// Writes dictionary 1 from the result file `FLEETCAL_DICT_SOURCE` (how `dict/result-1.json`
/// was made; a shipped dictionary never changes, so this is for the next one).
#[test]
#[ignore]
fn write_dictionary() {
    let source = std::env::var("FLEETCAL_DICT_SOURCE").expect("FLEETCAL_DICT_SOURCE");
    let text = std::fs::read_to_string(&source).unwrap();
    let result = CalibrationResult::from_json(&text, "dictionary source").unwrap();
    let out = concat!(env!("CARGO_MANIFEST_DIR"), "/src/dict/result-1.json");
    std::fs::write(out, stored_body(&result)).unwrap();
}

#[test]
fn documents_name_their_dictionary_and_an_unknown_one_is_an_error() {
    let stored = encode(&varied(0.97, 21).to_json()).unwrap();
    assert_eq!(&stored[..4], MAGIC);
    assert_eq!(stored[4], DICTIONARY);
    let mut other = stored.clone();
    other[4] = 200;
    assert!(matches!(decode(&other), Err(CodecError::Damaged(m)) if m.contains("dictionary 200")));
}

#[test]
fn stripped_fields_read_back() {
    // What `encode_derived` relies on instead of parsing its body back: a result that
    // round-trips still does with any of the derivable fields left out, in any record.
    let r = varied(0.9, 11);
    let text = r.to_json();
    let parsed: CalibrationResult = serde_json::from_str(&text).unwrap();
    assert_eq!(parsed, r, "the full result round-trips");
    for which in 0u8..64 {
        let mut stripped = r.clone();
        for (i, rec) in stripped.records.iter_mut().enumerate() {
            let mask = which.rotate_left(i as u32 % 8);
            if mask & LATENCY != 0 {
                rec.latency_ms = None;
            }
            if mask & GOPS != 0 {
                rec.gops = None;
            }
            if mask & BANDWIDTH != 0 {
                rec.bandwidth_gbps = None;
            }
            if let Some(s) = rec.sampling.as_mut() {
                if mask & CI != 0 {
                    s.ci_pct = None;
                }
                if mask & SAMPLES != 0 {
                    s.samples_ns = Vec::new();
                }
            }
            if mask & INTENSITY != 0 {
                rec.arithmetic_intensity = 0.0;
            }
            if mask & EFFICIENCY != 0 {
                rec.efficiency = None;
            }
        }
        let body = serde_json::to_vec(&stripped).unwrap();
        let back: CalibrationResult = serde_json::from_slice(&body).unwrap();
        assert_eq!(back, stripped, "fields {which:#08b}");
    }
}

#[test]
fn the_records_read_alone_are_the_documents_records() {
    let mut off = template();
    for rec in off.records.iter_mut().step_by(3) {
        if let Some(g) = rec.gops.as_mut() {
            g.median *= 1.1;
        }
        rec.efficiency = rec.efficiency.map(|e| e * 0.5);
    }
    for r in [template(), varied(0.7, 2), varied(1.3, 8), off] {
        let text = r.to_json();
        let want = lean(&r.records);
        for stored in [
            encode(&text).unwrap(),
            zstd::bulk::compress(text.as_bytes(), PLAIN_LEVEL).unwrap(),
        ] {
            assert_eq!(lean(&decode_records(&stored).unwrap()), want);
        }
    }
    let stored = encode(TEMPLATE).unwrap();
    for cut in [4, 5, 40, 200, stored.len() - 1] {
        assert!(decode_records(&stored[..cut]).is_err(), "cut at {cut}");
    }
    assert!(decode_records(&zstd::bulk::compress(b"{}", 3).unwrap()).is_err());
}

/// An upload's packed form reads back as the result whose canonical JSON is the text, and is
/// the form the coordinator stores (the same bytes); text that is not canonical, or has
/// anything after it, is not packed.
#[test]
fn an_upload_packs_its_canonical_json_and_reads_back_as_it() {
    let text = varied(1.1, 7).to_json();
    let packed = encode_upload(&text).unwrap();
    assert_eq!(packed, encode(&text).unwrap(), "what the store keeps");
    let back = decode_upload(&packed, 16 << 20).unwrap();
    assert_eq!(back.to_json(), text);
    assert!(
        encode_upload(&format!("{text}\n")).is_none(),
        "trailing text"
    );
    assert!(
        encode_upload(&serde_json::to_string(&back).unwrap()).is_none(),
        "compact JSON"
    );
    assert!(encode_upload("{}").is_none());
}

/// Untrusted packed bytes: anything but the current form with a built-in dictionary, no
/// trailing text and a frame that declares a size within the limit is refused, naming why,
/// before it is decompressed; damaged bytes are an error, never a panic.
#[test]
fn an_upload_in_another_form_or_too_large_is_refused() {
    let text = template().to_json();
    let packed = encode_upload(&text).unwrap();
    let refused = |bytes: &[u8], limit: u64| decode_upload(bytes, limit).unwrap_err().to_string();
    assert!(
        refused(&packed, 1000).contains("more than the 1000"),
        "{}",
        refused(&packed, 1000)
    );
    let plain = zstd::bulk::compress(text.as_bytes(), 3).unwrap();
    assert!(refused(&plain, 16 << 20).contains("not the packed form"));
    let mut other_dictionary = packed.clone();
    other_dictionary[4] = 0;
    assert!(refused(&other_dictionary, 16 << 20).contains("dictionary 0"));
    other_dictionary[4] = 200;
    assert!(refused(&other_dictionary, 16 << 20).contains("dictionary 200"));
    let with_tail = encode(&format!("{text}\n")).unwrap();
    assert!(refused(&with_tail, 16 << 20).contains("no text after"));
    // A frame written without its size (a streaming encoder's) is refused unread.
    let header_len = packed.len() - Header::parse(&packed).unwrap().frame.len();
    let frame = decompress(&packed[header_len..], DICTIONARY).unwrap();
    let mut unsized_frame = Vec::new();
    {
        let dict = encoder_dictionary().unwrap();
        let mut enc =
            zstd::stream::write::Encoder::with_prepared_dictionary(&mut unsized_frame, dict)
                .unwrap();
        std::io::Write::write_all(&mut enc, &frame).unwrap();
        enc.finish().unwrap();
    }
    let mut streamed = packed[..header_len].to_vec();
    streamed.extend_from_slice(&unsized_frame);
    assert!(refused(&streamed, 16 << 20).contains("does not say how large"));
    // A body that is not UTF-8 is refused as such.
    let mut body = frame.clone();
    let at = body
        .windows(9)
        .position(|w| w == b"\"missing\"")
        .expect("a telemetry key")
        + 1;
    body[at] = 0xFF;
    let mut not_text = packed[..header_len].to_vec();
    not_text.extend_from_slice(&compress(&body).unwrap().1);
    assert!(
        refused(&not_text, 16 << 20).contains("body: not UTF-8"),
        "{}",
        refused(&not_text, 16 << 20)
    );
    for cut in [0, 3, 4, 5, 9, 60, packed.len() - 1] {
        assert!(
            decode_upload(&packed[..cut], 16 << 20).is_err(),
            "cut at {cut}"
        );
    }
}

proptest! {
    /// Any bytes after the packed form's magic are refused or read, never a panic.
    #[test]
    fn any_upload_bytes_decode_without_panicking(tail in proptest::collection::vec(any::<u8>(), 0..96)) {
        let mut bytes = MAGIC.to_vec();
        bytes.extend(tail);
        let _ = decode_upload(&bytes, 16 << 20);
    }
}
