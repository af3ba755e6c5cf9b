//! The result documents the store keeps: the packed form of [`fleetcal_proto::document`]
//! (the one codec, which agents upload in too), and the figures of one read without the rest
//! of it ([`decode_figures`]).

pub(crate) use fleetcal_proto::document::{
    compress, decode, decode_result, decompress, encode_parsed, CodecError,
};

use crate::fleet::FleetFigure;

/// Every figure of a stored result ([`FleetFigure::from_record`] of each record), read
/// without the rest of the document ([`fleetcal_proto::document::decode_records`]): what the
/// compare report reads of each pair.
pub(crate) fn decode_figures(bytes: &[u8], run_id: &str) -> Result<Vec<FleetFigure>, CodecError> {
    let records = fleetcal_proto::document::decode_records(bytes)?;
    Ok((0_i64..)
        .zip(&records)
        .map(|(idx, r)| FleetFigure::from_record(run_id, idx, r))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetcal_proto::CalibrationResult;

    #[test]
    fn the_figures_read_alone_are_the_documents_figures() {
        let text = include_str!("../../testdata/quick-result.json");
        let r = CalibrationResult::from_json(text, "template").unwrap();
        let canonical = r.to_json();
        let want = FleetFigure::from_result("run", &r);
        let stored = encode_parsed(&canonical, Some(&r)).unwrap();
        assert!(stored.starts_with(b"FCR2"));
        assert_eq!(decode_figures(&stored, "run").unwrap(), want);
        assert!(decode_figures(&stored[..40], "run").is_err());
        // A document stored plain (compact, not its canonical JSON) reads the same figures.
        let plain = encode_parsed(&serde_json::to_string(&r).unwrap(), Some(&r)).unwrap();
        assert!(!plain.starts_with(b"FCR"));
        assert_eq!(decode_figures(&plain, "run").unwrap(), want);
    }
}
