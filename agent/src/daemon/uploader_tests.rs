//! The uploader against a real spool (on a full tmpfs where the spool cannot store) and a
//! stand-in coordinator that records what it is sent.

use super::*;
use crate::daemon::fake_coordinator::{free_port, FakeCoordinator};
use crate::daemon::options::RunOptions;
use crate::testing::FullDisk;

fn uploader(url: &str, spool_dir: &std::path::Path) -> (Uploader, Spool) {
    let mut opts = RunOptions::new(url, "/nonexistent");
    opts.rpc_timeout = Duration::from_secs(5);
    let spool = Spool::open(spool_dir).unwrap();
    let up = Uploader::new(Rpc::new(&opts, "agent").unwrap(), spool.clone());
    (up, spool)
}

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn an_unreachable_coordinator_leaves_results_spooled() {
    let dir = tempfile::tempdir().unwrap();
    let (up, spool) = uploader(&format!("http://127.0.0.1:{}", free_port()), dir.path());
    assert!(matches!(up.result("r1", "{}".into()), Waiting::Spooled(_)));
    assert!(matches!(
        up.failure("r2", "no such preset".into()),
        Waiting::Spooled(_)
    ));
    assert_eq!(up.drain().await, Drained::Blocked);
    assert!(spool.contains("r1") && spool.contains("r2"));
    for e in spool.pending().unwrap() {
        spool.remove(&e).unwrap();
    }
    assert_eq!(up.drain().await, Drained::Empty);
}

#[tokio::test]
async fn a_result_the_spool_cannot_store_is_uploaded_directly_and_leaves_no_partial_file() {
    let Some(disk) = FullDisk::mount("uploader: spool full") else {
        return;
    };
    let coordinator = FakeCoordinator::start(0);
    let (up, _spool) = uploader(&coordinator.url(), disk.path());
    let result = format!("{{\"big\": \"{}\"}}", "x".repeat(20_000));
    let Waiting::Held(why) = up.result("r1", result) else {
        panic!("a full spool cannot store it")
    };
    assert!(why.contains("No space left on device"), "{why}");
    assert!(
        disk.names().is_empty(),
        "partial temp file left: {:?}",
        disk.names()
    );
    assert_eq!(up.held(), [("r1".to_string(), Kind::Result)]);
    assert_eq!(up.drain().await, Drained::Empty);
    assert_eq!(coordinator.uploads(), ["r1"]);
    assert!(up.held().is_empty());
    assert!(disk.names().is_empty(), "{:?}", disk.names());
    coordinator.stop().await;
}

#[tokio::test]
async fn with_neither_spool_nor_coordinator_the_result_waits_in_memory_until_the_coordinator_is_back(
) {
    let Some(disk) = FullDisk::mount("uploader: spool full, coordinator down") else {
        return;
    };
    let port = free_port();
    let (up, spool) = uploader(&format!("http://127.0.0.1:{port}"), disk.path());
    assert!(matches!(up.result("r1", "{}".into()), Waiting::Held(_)));
    assert!(matches!(
        up.failure("r0", "preset unknown".into()),
        Waiting::Held(_)
    ));
    assert_eq!(up.drain().await, Drained::Blocked);
    assert_eq!(up.held().len(), 2, "kept in memory, not thrown away");
    assert!(disk.names().is_empty(), "{:?}", disk.names());

    let coordinator = FakeCoordinator::start(port);
    assert_eq!(up.drain().await, Drained::Empty);
    assert_eq!(coordinator.uploads(), ["r1"]);
    assert_eq!(
        coordinator.failures(),
        [("r0".to_string(), "preset unknown".to_string())]
    );
    assert!(up.held().is_empty() && spool.pending().unwrap().is_empty());
    coordinator.stop().await;
}

#[tokio::test]
async fn held_outcomes_move_into_the_spool_once_it_has_room() {
    let Some(disk) = FullDisk::mount("uploader: spool freed") else {
        return;
    };
    let (up, spool) = uploader(&format!("http://127.0.0.1:{}", free_port()), disk.path());
    assert!(matches!(up.result("r1", "{}".into()), Waiting::Held(_)));
    disk.free();
    assert_eq!(
        up.drain().await,
        Drained::Blocked,
        "the coordinator is down"
    );
    assert!(up.held().is_empty(), "now durable on disk");
    assert!(spool.contains("r1"));
}

#[tokio::test]
async fn held_outcomes_are_bounded_and_a_dropped_result_becomes_a_failure_report() {
    let Some(disk) = FullDisk::mount("uploader: held bound") else {
        return;
    };
    let port = free_port();
    let (up, _spool) = uploader(&format!("http://127.0.0.1:{port}"), disk.path());
    for i in 0..=MAX_HELD {
        assert!(matches!(
            up.result(&format!("r{i}"), "{}".into()),
            Waiting::Held(_)
        ));
    }
    let held = up.held();
    assert_eq!(held.len(), MAX_HELD + 1);
    assert_eq!(held[0], ("r0".to_string(), Kind::Failure), "{held:?}");
    assert!(held[1..].iter().all(|(_, k)| *k == Kind::Result));
    let coordinator = FakeCoordinator::start(port);
    assert_eq!(up.drain().await, Drained::Empty);
    let failures = coordinator.failures();
    assert_eq!(failures.len(), 1);
    assert!(
        failures[0].0 == "r0" && failures[0].1.contains("result dropped by the agent"),
        "{failures:?}"
    );
    assert_eq!(coordinator.uploads().len(), MAX_HELD);
    coordinator.stop().await;
}

#[tokio::test]
async fn a_refused_result_is_kept_aside_and_its_run_reported_failed() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = FakeCoordinator::start(0);
    coordinator.refuse_uploads(true);
    let (up, spool) = uploader(&coordinator.url(), dir.path());
    up.result("r1", "{}".into());
    assert_eq!(up.drain().await, Drained::Empty);
    assert!(dir.path().join("rejected/r1.json").is_file());
    // The failure report was spooled by the first drain and is sent by the next.
    assert_eq!(up.drain().await, Drained::Empty);
    let failures = coordinator.failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0]
            .1
            .starts_with("result refused by the coordinator: InvalidArgument: "),
        "{failures:?}"
    );
    assert!(spool.pending().unwrap().is_empty());
    coordinator.stop().await;
}

#[tokio::test]
async fn a_corrupt_spool_file_is_set_aside_once_and_its_run_reported_failed() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = FakeCoordinator::start(0);
    let (up, spool) = uploader(&coordinator.url(), dir.path());
    std::fs::write(dir.path().join("bad.failed"), [0xff, 0xfe]).unwrap();
    up.result("good", "{}".into());
    assert_eq!(up.drain().await, Drained::Empty);
    assert_eq!(
        coordinator.uploads(),
        ["good"],
        "the rest of the spool is not blocked"
    );
    assert!(names(dir.path()).contains(&"bad.failed.corrupt".to_string()));
    assert_eq!(up.drain().await, Drained::Empty);
    let failures = coordinator.failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0].0 == "bad" && failures[0].1.contains("unreadable"),
        "{failures:?}"
    );
    // Later drains neither read nor report it again.
    assert_eq!(up.drain().await, Drained::Empty);
    assert_eq!(coordinator.failures().len(), 1);
    assert!(spool.pending().unwrap().is_empty());
    assert_eq!(names(dir.path()), ["bad.failed.corrupt"]);
    coordinator.stop().await;
}
