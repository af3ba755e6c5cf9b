//! NVIDIA Jetson boards: the module from the device tree, the power mode from `nvpmodel -q`,
//! and the memory bandwidth of the known Orin modules.

use super::command::{output_within, TOOL_TIMEOUT};

/// The device-tree model files, newest location first.
pub(crate) const MODEL_FILES: [&str; 2] = [
    "/proc/device-tree/model",
    "/sys/firmware/devicetree/base/model",
];

/// The device-tree model string (`NVIDIA Jetson Orin Nano Developer Kit`): the file is
/// NUL-terminated; `None` when empty.
pub fn parse_device_tree_model(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let model = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!model.is_empty()).then(|| model.to_string())
}

/// The power mode from `nvpmodel -q` output (`NV Power Mode: 15W` → `15W`).
pub fn parse_nvpmodel(text: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.trim().strip_prefix("NV Power Mode:"))
        .map(str::trim)
        .filter(|mode| !mode.is_empty())
        .map(str::to_string)
}

/// What `Host.jetson` records: the module, and the power mode when known.
pub fn describe_jetson(model: &str, power_mode: Option<&str>) -> String {
    match power_mode {
        Some(mode) => format!("{model}, power mode {mode}"),
        None => model.to_string(),
    }
}

/// The Jetson this runs on, with its power mode (`nvpmodel -q`, given [`TOOL_TIMEOUT`]);
/// `None` when not a Jetson.
pub fn detect_jetson() -> Option<String> {
    let model = MODEL_FILES
        .iter()
        .find_map(|path| std::fs::read(super::root::host_path(path)).ok())
        .and_then(|bytes| parse_device_tree_model(&bytes))
        .filter(|model| model.contains("Jetson"))?;
    let power_mode = output_within("nvpmodel", &["-q"], TOOL_TIMEOUT)
        .ok()
        .and_then(|out| parse_nvpmodel(&out));
    Some(describe_jetson(&model, power_mode.as_deref()))
}

/// The theoretical DRAM bandwidth of a known Orin module from its `Host.jetson` description,
/// in GB/s, with its basis; `None` for modules not in the table.
pub fn jetson_bandwidth_gbps(jetson: &str) -> Option<(f64, &'static str)> {
    let j = jetson.to_ascii_lowercase();
    if j.contains("agx orin") {
        Some((204.8, "Jetson AGX Orin: 256-bit LPDDR5 at 6400 MT/s"))
    } else if j.contains("orin nx") {
        Some((102.4, "Jetson Orin NX: 128-bit LPDDR5 at 6400 MT/s"))
    } else if j.contains("orin nano") && j.contains("super") {
        Some((
            102.0,
            "Jetson Orin Nano Super (MAXN SUPER): 128-bit LPDDR5 at 6400 MT/s",
        ))
    } else if j.contains("orin nano") {
        Some((68.0,
            "Jetson Orin Nano 8 GB (the developer kit's module): 128-bit LPDDR5 at 4266 MT/s; a 4 GB module has half"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_tree_model_drops_the_nul() {
        let bytes = include_bytes!("fixtures/device-tree-model-orin-nano.bin");
        assert_eq!(
            parse_device_tree_model(bytes).as_deref(),
            Some("NVIDIA Jetson Orin Nano Developer Kit")
        );
        assert_eq!(parse_device_tree_model(b"\0\n"), None);
    }

    #[test]
    fn nvpmodel_power_mode() {
        let text = include_str!("fixtures/nvpmodel-q-orin-nano.txt");
        assert_eq!(parse_nvpmodel(text).as_deref(), Some("15W"));
        assert_eq!(parse_nvpmodel("NVPM ERROR: failed to read\n"), None);
        assert_eq!(parse_nvpmodel("NV Power Mode: \n"), None);
    }

    #[test]
    fn description_and_bandwidth() {
        let d = describe_jetson("NVIDIA Jetson Orin Nano Developer Kit", Some("15W"));
        assert_eq!(d, "NVIDIA Jetson Orin Nano Developer Kit, power mode 15W");
        assert_eq!(jetson_bandwidth_gbps(&d).map(|b| b.0), Some(68.0));
        let super_mode =
            describe_jetson("NVIDIA Jetson Orin Nano Developer Kit", Some("MAXN_SUPER"));
        assert_eq!(jetson_bandwidth_gbps(&super_mode).map(|b| b.0), Some(102.0));
        let agx = describe_jetson("NVIDIA Jetson AGX Orin Developer Kit", None);
        assert_eq!(jetson_bandwidth_gbps(&agx).map(|b| b.0), Some(204.8));
        assert_eq!(jetson_bandwidth_gbps("NVIDIA Jetson Xavier NX"), None);
    }
}
