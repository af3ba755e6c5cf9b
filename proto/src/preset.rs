//! The hardware preset file format: one TOML file per preset in `presets/`.
//!
//! See `docs/presets.md` for every key. Unknown keys are rejected, and every error names the
//! file and the field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::quote::{number, quoted};
use crate::{ContractError, DeviceKind, Framework, Precision};

/// The preset format version this build reads and writes.
pub const PRESET_SCHEMA_VERSION: u32 = 1;

/// The class of platform a preset describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Platform {
    /// A desktop CPU.
    Desktop,
    /// A server CPU.
    Server,
    /// An NVIDIA Jetson module (CPU or GPU side).
    Jetson,
    /// A data-centre GPU.
    DatacenterGpu,
    /// A workstation GPU.
    WorkstationGpu,
    /// Derived at run time from the detected host (`--preset auto`).
    Detected,
}

/// What a host must look like for a preset to match it (used for warnings and fleet matching).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PresetMatch {
    /// `/proc/cpuinfo` vendor id, e.g. `GenuineIntel` or `AuthenticAMD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_vendor: Option<String>,
    /// Substrings of the CPU model name, any of which must appear.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpu_model: Vec<String>,
    /// Substrings of the CUDA device name, any of which must appear.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpu_name: Vec<String>,
}

/// How the peaks of a preset derived at run time (`--preset auto`) were computed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Derivation {
    /// The formula, in words, e.g. `cores x fp32 lanes x FMA pipes x 2 x clock`.
    pub formula: String,
    /// The detected inputs of the formula, by name.
    pub inputs: BTreeMap<String, String>,
    /// Why the memory bandwidth is what it is (or why it is unknown).
    pub bandwidth: String,
}

/// One hardware preset: the theoretical figures a calibration is compared against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    /// Format version; must be [`PRESET_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The CLI name, equal to the file stem (`i7-12700k`).
    pub id: String,
    /// Display name (`Intel-i7-12700K`); the result file name is its slug.
    pub hardware_name: String,
    /// The device a calibration of this preset targets.
    pub device: DeviceKind,
    /// The host CPU architecture (`x86_64` or `aarch64`).
    pub architecture: String,
    /// The class of platform.
    pub platform: Platform,
    /// The framework used when none is given.
    pub default_framework: Framework,
    /// Theoretical memory bandwidth in GB/s; absent when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_gbps: Option<f64>,
    /// Where the figures come from.
    pub notes: String,
    /// What a matching host looks like.
    #[serde(default, rename = "match")]
    pub matches: PresetMatch,
    /// Theoretical peak per precision: GFLOPS for floats, GIOPS for integers.
    pub peaks: BTreeMap<Precision, f64>,
    /// Present when the preset was derived from the detected host rather than read from a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub derivation: Option<Derivation>,
}

impl Preset {
    /// Parses and validates a preset from TOML text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Preset, ContractError> {
        let err = |message: String| ContractError::Preset {
            path: origin.to_path_buf(),
            message,
        };
        let preset: Preset = toml::from_str(text).map_err(|e| err(toml_message(&e, text)))?;
        preset.validate().map_err(err)?;
        if let Some(stem) = origin.file_stem().and_then(|s| s.to_str()) {
            if origin.extension().is_some_and(|e| e == "toml") && stem != preset.id {
                return Err(err(format!(
                    "field 'id': '{}' does not match the file name '{stem}.toml'",
                    preset.id
                )));
            }
        }
        Ok(preset)
    }

    /// Reads and validates one preset file.
    pub fn load(path: &Path) -> Result<Preset, ContractError> {
        let text = std::fs::read_to_string(path).map_err(|source| ContractError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Preset::from_toml(&text, path)
    }

    /// Checks the invariants serde cannot: a returned message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.schema_version != PRESET_SCHEMA_VERSION {
            return Err(format!(
                "field 'schema_version': {} is not supported (this build reads {PRESET_SCHEMA_VERSION})",
                self.schema_version
            ));
        }
        validate_id(&self.id).map_err(|m| format!("field 'id': {m}"))?;
        if self.hardware_name.trim().is_empty() {
            return Err("field 'hardware_name': must not be empty".into());
        }
        if !matches!(self.architecture.as_str(), "x86_64" | "aarch64") {
            return Err(format!(
                "field 'architecture': {} is not one of x86_64, aarch64",
                quoted(&self.architecture)
            ));
        }
        crate::framework::check_device(self.default_framework, self.device)
            .map_err(|e| format!("field 'default_framework': {e}"))?;
        if !self.peaks.contains_key(&Precision::Fp32) {
            return Err("field 'peaks': an fp32 peak is required".into());
        }
        for (p, v) in &self.peaks {
            if !(v.is_finite() && *v > 0.0) {
                return Err(format!(
                    "field 'peaks.{p}': {} must be a positive number",
                    number(*v)
                ));
            }
        }
        if let Some(bw) = self.bandwidth_gbps {
            if !(bw.is_finite() && bw > 0.0) {
                return Err(format!(
                    "field 'bandwidth_gbps': {} must be a positive number",
                    number(bw)
                ));
            }
        }
        Ok(())
    }

    /// The theoretical peak for a precision, if the preset has one.
    pub fn peak(&self, precision: Precision) -> Option<f64> {
        self.peaks.get(&precision).copied()
    }

    /// The slug of the hardware name: lowercase, every run of non-alphanumerics one `_`.
    pub fn slug(&self) -> String {
        slug(&self.hardware_name)
    }
}

/// The longest preset id, in bytes.
pub const MAX_ID_LEN: usize = 64;

/// Checks a preset id (in a preset file, a result, or an agent's configuration): 1 to
/// [`MAX_ID_LEN`] lowercase letters, digits and `-`. The message quotes a bounded prefix.
pub fn validate_id(id: &str) -> Result<(), String> {
    let charset = id
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if id.is_empty() || id.len() > MAX_ID_LEN || !charset {
        return Err(format!(
            "{} must be 1 to {MAX_ID_LEN} lowercase letters, digits and '-'",
            quoted(id)
        ));
    }
    Ok(())
}

/// Lowercase slug of a display name (`Intel-i7-12700K` → `intel_i7_12700k`).
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}

/// A TOML parse error of `text` as one line that names the field and the line (toml's
/// Display spans several lines with a source excerpt): presets and both config files say
/// what is wrong this way.
pub fn toml_message(e: &toml::de::Error, text: &str) -> String {
    // Type errors only carry a span, so the key is read off the offending line.
    let msg = e.message().trim().to_string();
    let Some(span) = e.span() else { return msg };
    let mut start = span.start.min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_no = text[..line_start].matches('\n').count() + 1;
    let line = text[line_start..].lines().next().unwrap_or("");
    match line.split_once('=') {
        Some((key, _)) if !msg.contains(key.trim()) => {
            format!("field '{}': {msg} (line {line_no})", key.trim())
        }
        _ => format!("{msg} (line {line_no})"),
    }
}

/// Every preset in a directory, sorted by id; the first malformed file is an error naming it.
pub fn load_dir(dir: &Path) -> Result<Vec<Preset>, ContractError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ContractError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    let mut presets = paths
        .iter()
        .map(|p| Preset::load(p))
        .collect::<Result<Vec<_>, _>>()?;
    presets.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(presets)
}

/// Finds one preset by id in a directory, reading only that file.
pub fn find(dir: &Path, id: &str) -> Result<Preset, ContractError> {
    let path = dir.join(format!("{id}.toml"));
    if path.is_file() {
        return Preset::load(&path);
    }
    let known = load_dir(dir)
        .map(|all| all.into_iter().map(|p| p.id).collect::<Vec<_>>().join(", "))
        .unwrap_or_default();
    Err(ContractError::UnknownPreset {
        id: crate::quote::bounded(id),
        known,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
schema_version = 1
id = "test-cpu"
hardware_name = "Test-CPU 9000"
device = "cpu"
architecture = "x86_64"
platform = "desktop"
default_framework = "numpy"
bandwidth_gbps = 50.0
notes = "unit test"
[match]
cpu_vendor = "AuthenticAMD"
cpu_model = ["9000"]
[peaks]
fp32 = 100.0
fp64 = 50.0
"#;

    fn parse(text: &str) -> Result<Preset, ContractError> {
        Preset::from_toml(text, Path::new("presets/test-cpu.toml"))
    }

    #[test]
    fn good_preset_parses() {
        let p = parse(GOOD).unwrap();
        assert_eq!(p.peak(Precision::Fp64), Some(50.0));
        assert_eq!(p.slug(), "test_cpu_9000");
        assert_eq!(p.matches.cpu_model, vec!["9000".to_string()]);
    }

    #[test]
    fn malformed_presets_name_file_and_field() {
        let cases = [
            (GOOD.replace("fp64 = 50.0", "fp65 = 50.0"), "fp65"),
            (GOOD.replace("notes", "note"), "note"),
            (GOOD.replace("fp32 = 100.0", "fp32 = -1.0"), "peaks.fp32"),
            (GOOD.replace("fp32 = 100.0\n", ""), "fp32 peak"),
            (GOOD.replace("\"x86_64\"", "\"riscv\""), "architecture"),
            (
                GOOD.replace("schema_version = 1", "schema_version = 7"),
                "schema_version",
            ),
            (GOOD.replace("\"test-cpu\"", "\"other\""), "file name"),
            (
                GOOD.replace("device = \"cpu\"", "device = \"cuda\""),
                "default_framework",
            ),
            (
                GOOD.replace("bandwidth_gbps = 50.0", "bandwidth_gbps = \"fast\""),
                "bandwidth_gbps",
            ),
        ];
        for (text, needle) in cases {
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.starts_with("preset presets/test-cpu.toml:"), "{err}");
            assert!(err.contains(needle), "expected '{needle}' in: {err}");
        }
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("Intel-i7-12700K"), "intel_i7_12700k");
        assert_eq!(
            slug("NVIDIA Jetson Orin Nano (GPU)"),
            "nvidia_jetson_orin_nano_gpu"
        );
    }

    #[test]
    fn dir_loading_reports_the_bad_file_and_find_lists_known_ids() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("test-cpu.toml"), GOOD).unwrap();
        assert_eq!(load_dir(dir.path()).unwrap().len(), 1);
        let err = find(dir.path(), "nope").unwrap_err().to_string();
        assert!(err.contains("'nope'") && err.contains("test-cpu"), "{err}");
        std::fs::write(dir.path().join("zz.toml"), "id = 3").unwrap();
        let err = load_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("zz.toml"), "{err}");
    }

    /// The preset parser on text: an error naming the file or a valid preset, never a panic.
    fn judged(text: &str) -> Result<(), proptest::test_runner::TestCaseError> {
        match Preset::from_toml(text, Path::new("fuzz.toml")) {
            Ok(p) => proptest::prop_assert!(p.validate().is_ok()),
            Err(e) => proptest::prop_assert!(e.to_string().contains("fuzz.toml"), "{e}"),
        }
        Ok(())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// A repository preset with a few edits.
        #[test]
        fn mutated_presets_never_panic(
            text in crate::fuzz_tests::mutated(include_str!("../../presets/jetson-orin-agx.toml").to_string())
        ) {
            judged(&text)?;
        }

        /// Arbitrary text.
        #[test]
        fn arbitrary_text_is_no_preset(text in crate::fuzz_tests::arbitrary_text()) {
            judged(&text)?;
        }
    }
}
