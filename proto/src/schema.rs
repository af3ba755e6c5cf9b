//! JSON Schemas of the two result formats, generated from the serde types and committed as
//! `proto/schema/result.schema.json` and `proto/schema/origin-profile.schema.json`.
//!
//! The committed files are checked against the types by a unit test; after changing a type,
//! regenerate them with `FLEETCAL_BLESS=1 cargo test -p fleetcal-proto schema`.

use crate::origin::OriginProfile;
use crate::CalibrationResult;

/// The committed schema of fleetcal's result format.
pub const RESULT_SCHEMA: &str = include_str!("../schema/result.schema.json");

/// The committed schema of the origin profile format.
pub const ORIGIN_SCHEMA: &str = include_str!("../schema/origin-profile.schema.json");

/// The result schema as generated from [`CalibrationResult`].
pub fn generate_result_schema() -> String {
    let mut schema = schemars::schema_for!(CalibrationResult);
    schema.insert(
        "$id".into(),
        "https://fleetcal.dev/schema/result.schema.json".into(),
    );
    serde_json::to_string_pretty(&schema).expect("schema serialises") + "\n"
}

/// The origin profile schema as generated from [`OriginProfile`].
pub fn generate_origin_schema() -> String {
    let mut schema = schemars::schema_for!(OriginProfile);
    schema.insert(
        "$id".into(),
        "https://fleetcal.dev/schema/origin-profile.schema.json".into(),
    );
    serde_json::to_string_pretty(&schema).expect("schema serialises") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(path: &str, committed: &str, generated: String) {
        if std::env::var_os("FLEETCAL_BLESS").is_some() {
            std::fs::write(
                concat!(env!("CARGO_MANIFEST_DIR"), "/").to_string() + path,
                &generated,
            )
            .unwrap();
            return;
        }
        assert!(
            committed == generated,
            "{path} is stale: run FLEETCAL_BLESS=1 cargo test -p fleetcal-proto schema"
        );
    }

    #[test]
    fn committed_schemas_match_the_types() {
        check(
            "schema/result.schema.json",
            RESULT_SCHEMA,
            generate_result_schema(),
        );
        check(
            "schema/origin-profile.schema.json",
            ORIGIN_SCHEMA,
            generate_origin_schema(),
        );
    }

    #[test]
    fn schemas_are_valid_json_schema_and_reject_garbage() {
        for text in [RESULT_SCHEMA, ORIGIN_SCHEMA] {
            let schema: serde_json::Value = serde_json::from_str(text).unwrap();
            let validator = jsonschema::validator_for(&schema).unwrap();
            assert!(!validator.is_valid(&serde_json::json!({"schema_version": "one"})));
        }
    }
}
