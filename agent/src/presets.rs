//! Where presets come from: a directory (`--presets DIR`), else the set built into the binary.

use std::path::{Path, PathBuf};

use fleetcal_proto::{preset, ContractError, Preset};

use crate::AgentError;

mod builtin {
    include!(concat!(env!("OUT_DIR"), "/builtin_presets.rs"));
}

/// Every built-in preset, parsed and validated (the build embeds `presets/*.toml`).
pub fn builtin() -> Result<Vec<Preset>, AgentError> {
    builtin::BUILTIN
        .iter()
        .map(|(name, text)| {
            Preset::from_toml(text, &PathBuf::from("presets").join(name)).map_err(AgentError::from)
        })
        .collect()
}

/// All presets of a directory, or the built-in ones.
pub fn list(dir: Option<&Path>) -> Result<Vec<Preset>, AgentError> {
    match dir {
        Some(d) => Ok(preset::load_dir(d)?),
        None => builtin(),
    }
}

/// One preset by id from a directory, or from the built-in ones.
pub fn find(dir: Option<&Path>, id: &str) -> Result<Preset, AgentError> {
    if let Some(d) = dir {
        return Ok(preset::find(d, id)?);
    }
    let file = format!("{id}.toml");
    match builtin::BUILTIN.iter().find(|(name, _)| *name == file) {
        Some((name, text)) => Ok(Preset::from_toml(
            text,
            &PathBuf::from("presets").join(name),
        )?),
        None => Err(ContractError::UnknownPreset {
            id: fleetcal_proto::quote::bounded(id),
            known: builtin::BUILTIN
                .iter()
                .map(|(n, _)| n.trim_end_matches(".toml"))
                .chain(["auto"])
                .collect::<Vec<_>>()
                .join(", "),
        }
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_preset_is_valid_and_cuda_ones_default_to_pytorch() {
        let all = builtin().unwrap();
        for p in &all {
            if p.device == fleetcal_proto::DeviceKind::Cuda {
                assert_eq!(
                    p.default_framework,
                    fleetcal_proto::Framework::Pytorch,
                    "{}",
                    p.id
                );
            }
        }
        if let Some(p) = all.first() {
            assert_eq!(find(None, &p.id).unwrap(), *p);
        }
        let err = find(None, "no-such-board").unwrap_err().to_string();
        assert!(
            err.contains("'no-such-board'") && err.contains("auto"),
            "{err}"
        );
    }
}
