//! A report as JSON: the model itself (every number, every run id), pretty-printed, tagged
//! with `"report": "compare"` etc.

use crate::fleet::Report;

/// The report as pretty JSON.
pub fn report(r: &Report) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(r)
}

#[cfg(test)]
mod tests {
    use crate::fleet::boards::BoardsReport;
    use crate::fleet::Report;

    #[test]
    fn a_report_round_trips_with_its_tag() {
        let r = Report::Boards(BoardsReport {
            generated_at: 5,
            groups: Vec::new(),
            rows: Vec::new(),
        });
        let text = super::report(&r).unwrap();
        assert!(text.contains("\"report\": \"boards\""), "{text}");
        assert_eq!(serde_json::from_str::<Report>(&text).unwrap(), r);
    }
}
