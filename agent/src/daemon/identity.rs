//! The agent's stable id: a UUID v4 kept in `<state-dir>/agent-id`.
//!
//! Created on first start through [`crate::atomic::write`] in [`Mode::CreateNew`]: a
//! temporary file, synced, hard-linked into place only if the name is free (so two agents
//! started at once on one state dir agree on one id, and a crash never leaves a half-written
//! id). Reused on every later start; a file that does not hold a UUID is an error, never
//! silently replaced (the coordinator knows the board by it).
//!
//! An agent given a client certificate that names an agent id (`urn:fleetcal:agent:<id>`,
//! [`fleetcal_proto::role`]) is that agent: [`for_certificate`] writes the id on first start
//! and refuses a state dir that holds another one (its spool belongs to that other agent).

use std::path::Path;

use crate::atomic::{self, Mode};
use crate::AgentError;

/// The id file's name inside the state dir.
pub const ID_FILE: &str = "agent-id";

/// Reads the agent id from `state_dir`, creating it (and the dir) on first use.
pub fn load_or_create(state_dir: &Path) -> Result<String, AgentError> {
    std::fs::create_dir_all(state_dir).map_err(|source| AgentError::Io {
        path: state_dir.to_path_buf(),
        source,
    })?;
    let path = state_dir.join(ID_FILE);
    if !path.exists() {
        let id = uuid::Uuid::new_v4().to_string();
        // false: another agent created it first; its id is the one read below.
        atomic::write(&path, format!("{id}\n").as_bytes(), Mode::CreateNew)?;
    }
    read(&path)
}

/// The agent id for a daemon presenting the client certificate `cert` (PEM): the id the
/// certificate names, kept in `state_dir` like [`load_or_create`]'s; without an agent role in
/// the certificate, [`load_or_create`]'s.
pub fn for_certificate(state_dir: &Path, cert: &Path) -> Result<String, AgentError> {
    let pem = std::fs::read(cert).map_err(|source| AgentError::Io {
        path: cert.to_path_buf(),
        source,
    })?;
    let roles = fleetcal_proto::role::of_pem(&pem).map_err(|e| {
        AgentError::Usage(format!("tls client certificate {}: {e}", cert.display()))
    })?;
    let Some(fleetcal_proto::role::Role::Agent(id)) = roles.single().cloned() else {
        return load_or_create(state_dir);
    };
    uuid::Uuid::parse_str(&id).map_err(|e| {
        AgentError::Usage(format!(
            "tls client certificate {} names agent '{}', not a UUID ({e})",
            cert.display(),
            fleetcal_proto::quote::bounded(&id)
        ))
    })?;
    std::fs::create_dir_all(state_dir).map_err(|source| AgentError::Io {
        path: state_dir.to_path_buf(),
        source,
    })?;
    let path = state_dir.join(ID_FILE);
    if !path.exists() {
        atomic::write(&path, format!("{id}\n").as_bytes(), Mode::CreateNew)?;
    }
    let held = read(&path)?;
    if held != id {
        return Err(AgentError::Usage(format!(
            "tls client certificate {} names agent '{id}' but state dir {} belongs to agent \
             '{held}': use that agent's certificate, or a fresh state dir for this one",
            cert.display(),
            state_dir.display()
        )));
    }
    Ok(id)
}

fn read(path: &Path) -> Result<String, AgentError> {
    let text = std::fs::read_to_string(path).map_err(|source| AgentError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let id = text.trim();
    uuid::Uuid::parse_str(id).map_err(|e| {
        AgentError::Usage(format!(
            "agent id file {} holds '{}', not a UUID ({e}); fix or delete it",
            path.display(),
            fleetcal_proto::quote::bounded(id)
        ))
    })?;
    Ok(id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("nested/state");
        let first = load_or_create(&state).unwrap();
        assert_eq!(uuid::Uuid::parse_str(&first).unwrap().get_version_num(), 4);
        let second = load_or_create(&state).unwrap();
        assert_eq!(first, second);
        let names: Vec<_> = std::fs::read_dir(&state)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(ID_FILE)]);
    }

    #[test]
    fn a_corrupt_id_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(ID_FILE), "not-a-uuid\n").unwrap();
        let e = load_or_create(dir.path()).unwrap_err().to_string();
        assert!(e.contains("not-a-uuid") && e.contains(ID_FILE), "{e}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join(ID_FILE)).unwrap(),
            "not-a-uuid\n"
        );
    }

    #[test]
    fn a_leftover_temp_file_does_not_matter() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".agent-id.1.0.fleetcal-tmp"), "half").unwrap();
        let id = load_or_create(dir.path()).unwrap();
        assert_eq!(load_or_create(dir.path()).unwrap(), id);
    }
}
