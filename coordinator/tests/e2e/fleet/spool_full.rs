//! A full spool disk loses no result: the real coordinator, a real agent whose spool directory
//! is a 64 KiB tmpfs filled to the last byte, and fleetctl.
//!
//! - with the coordinator up, the result the spool cannot store is uploaded directly, the
//!   agent's log says so, and no partial temp file is left in the spool;
//! - with the coordinator down as well, the result waits in the agent's memory and is uploaded
//!   once the coordinator is back (the run ends succeeded, stored once).
//!
//! Mounting needs root (CI runs the tests as root); without it these tests fail saying so,
//! unless `FLEETCAL_SKIP_ROOT_TESTS=1`, which skips them with a loud SKIP.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use fleetcal_proto::CalibrationResult;

use super::agent::Agent;
use super::common::{free_port, serve, wait_for, wait_online};
use super::proxy::Proxy;
use super::{all_logs, coordinator_logs, export, runs_of, start_campaign, wait_campaign};

/// A 64 KiB tmpfs mounted over a directory and filled; unmounted on drop.
pub(crate) struct FullSpool {
    dir: PathBuf,
}

impl FullSpool {
    /// Mounts one over `dir` (which must exist) and fills it. Without the right to mount, the
    /// test fails saying why, unless FLEETCAL_SKIP_ROOT_TESTS=1 (then `None` and a SKIP line).
    pub(crate) fn mount(dir: &Path, test: &str) -> Option<FullSpool> {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(dir)
            .output();
        let failed = match &out {
            Ok(o) if o.status.success() => None,
            Ok(o) => Some(String::from_utf8_lossy(&o.stderr).trim().to_string()),
            Err(e) => Some(e.to_string()),
        };
        if let Some(why) = failed {
            if std::env::var("FLEETCAL_SKIP_ROOT_TESTS").is_ok_and(|v| v == "1") {
                eprintln!(
                    "\n*** SKIP {test}: cannot mount a tmpfs ({why}); FLEETCAL_SKIP_ROOT_TESTS=1 ***\n"
                );
                return None;
            }
            panic!(
                "{test} mounts a 64 KiB tmpfs over the agent's spool and needs root: mount \
                 failed: {why} (run as root, or set FLEETCAL_SKIP_ROOT_TESTS=1 to skip it)"
            );
        }
        let spool = FullSpool {
            dir: dir.to_path_buf(),
        };
        let mut f = std::fs::File::create(dir.join("filler")).unwrap();
        loop {
            match f.write(&[0u8; 1024]) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
        assert!(
            std::fs::write(dir.join(".probe"), b"x").is_err(),
            "the spool should be full"
        );
        let _ = std::fs::remove_file(dir.join(".probe"));
        Some(spool)
    }

    /// Every name in the spool but the filler.
    pub(crate) fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "filler")
            .collect();
        v.sort();
        v
    }
}

impl Drop for FullSpool {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

#[test]
fn a_result_the_full_spool_cannot_store_is_uploaded_directly() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = serve(dir.path(), &format!("127.0.0.1:{}", free_port()));
    let url = coordinator.url();
    let agents = vec![Agent::start(&url, &["--preset", "auto"])];
    let logs = || all_logs(&agents, coordinator.log_text());
    wait_online(&url, 1, logs);
    // The agent made its spool at start; from now on it is a full disk.
    let Some(spool) = FullSpool::mount(&agents[0].spool_dir(), "spool full, coordinator up") else {
        return;
    };

    let id = start_campaign(&url);
    wait_campaign(&url, &id, 1, &logs);
    // The acknowledgement reaches the agent just after the coordinator stored the result.
    wait_for("the agent's log of the direct upload", logs, || {
        agents[0]
            .log()
            .contains("result sent directly")
            .then_some(())
    });
    let log = agents[0].log();
    assert!(
        log.contains("cannot spool the result") && log.contains("No space left on device"),
        "{log}"
    );
    assert!(
        spool.names().is_empty(),
        "partial files: {:?}",
        spool.names()
    );
    drop(spool);
}

#[test]
fn with_the_spool_full_and_the_coordinator_down_the_result_is_uploaded_when_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let coordinator = serve(dir.path(), &listen);
    let url = coordinator.url();
    let proxy = Proxy::start(coordinator.addr.parse().unwrap());
    let agents = vec![Agent::start(&proxy.url(), &["--preset", "auto"])];
    let log_path = dir.path().to_path_buf();
    let logs = || all_logs(&agents, coordinator_logs(&log_path));
    wait_online(&url, 1, logs);
    let Some(spool) = FullSpool::mount(&agents[0].spool_dir(), "spool full, coordinator down")
    else {
        return;
    };

    // The plan arrives; what the agent sends (RUNNING, the upload) is held in the proxy, so
    // the result is finished, not spoolable and not acknowledged when the coordinator goes.
    proxy.hold_upstream();
    let id = start_campaign(&url);
    let run_id = runs_of(&url, &id)[0]["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for("the result kept in memory", logs, || {
        agents[0]
            .log()
            .contains("keeping it in memory and sending it directly")
            .then_some(())
    });
    drop(coordinator);
    proxy.cut();
    proxy.release();
    wait_for("a failed send while the coordinator is down", logs, || {
        agents[0]
            .log()
            .contains("send failed, result stays in memory")
            .then_some(())
    });
    assert!(spool.names().is_empty(), "{:?}", spool.names());

    let coordinator = serve(dir.path(), &listen);
    wait_campaign(&url, &id, 1, &logs);
    let exported = export(&url, &id, dir.path(), "fleetcal");
    assert_eq!(exported.len(), 1, "stored exactly once");
    let result = CalibrationResult::from_json(exported.values().next().unwrap(), "export").unwrap();
    assert_eq!(result.metadata.run_id, run_id);
    wait_for("the agent's log of the direct upload", logs, || {
        agents[0]
            .log()
            .contains("result sent directly")
            .then_some(())
    });
    assert!(spool.names().is_empty(), "{:?}", spool.names());
    drop(spool);
    drop(coordinator);
}
