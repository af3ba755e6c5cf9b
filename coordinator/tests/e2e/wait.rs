//! `fleetctl campaign status --wait` rides out a coordinator restart: the coordinator is
//! killed and started again (same database, same port) while fleetctl follows a campaign,
//! and fleetctl still exits 0 once the campaign succeeds.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use fleetcal_proto::pb;
use fleetcal_proto::{DeviceKind, Framework};

use crate::support::*;

/// A child process killed on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The lines of a pipe, read on a thread.
fn lines(pipe: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Waits (up to `limit`) for a line containing `want`; every line read is kept in `seen`.
fn expect_line(rx: &Receiver<String>, want: &str, limit: Duration, seen: &mut Vec<String>) {
    let start = Instant::now();
    while let Some(left) = limit.checked_sub(start.elapsed()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                let found = line.contains(want);
                seen.push(line);
                if found {
                    return;
                }
            }
            Err(_) => break,
        }
    }
    panic!("no line with {want:?} within {limit:?}; got {seen:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_rides_out_a_coordinator_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("coordinator.db").display());
    let args = |listen: &str| {
        vec![
            "serve".to_string(),
            "--listen".into(),
            listen.into(),
            "--db".into(),
            db.clone(),
            "--tick-ms".into(),
            "100".into(),
        ]
    };
    let spawn = |listen: &str| {
        let a = args(listen);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        CoordinatorProcess::spawn(dir.path(), &a)
    };
    let coord = spawn("127.0.0.1:0");
    let addr = coord.addr.clone();
    let url = coord.url();
    let (mut client, agent) = register_new(&url, "steady", &[], cpu_caps(&["numpy"])).await;
    let out = fleetctl(&url, &["campaign", "start", "--all"]);
    assert!(out.status.success());
    let campaign = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let (stream, plan) = subscribe_plan(&mut client, &agent).await;

    let mut wait = with_admin_tls(&mut Command::new(FLEETCTL), &url, &[])
        .args([
            "--coordinator",
            &url,
            "campaign",
            "status",
            &campaign,
            "--wait",
        ])
        .args(["--poll-ms", "100", "--reconnect-timeout", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning fleetctl");
    let stdout = lines(wait.stdout.take().unwrap());
    let stderr = lines(wait.stderr.take().unwrap());
    let mut wait = Killed(wait);
    let (mut out_seen, mut err_seen) = (Vec::new(), Vec::new());
    expect_line(
        &stdout,
        "0/1 done: running 1",
        Duration::from_secs(10),
        &mut out_seen,
    );

    // Kill the coordinator: fleetctl says it retries instead of exiting.
    drop(stream);
    drop(coord);
    expect_line(
        &stderr,
        "retrying in",
        Duration::from_secs(10),
        &mut err_seen,
    );
    assert!(
        matches!(wait.0.try_wait(), Ok(None)),
        "fleetctl is still waiting"
    );

    // The same database on the same port; the agent comes back and uploads its result.
    let coord = spawn(&addr);
    let mut client = agent_client_as(&coord.url(), &agent).await;
    let (_stream, again) = subscribe_plan(&mut client, &agent).await;
    assert_eq!(again.run_id, plan.run_id);
    client
        .upload_result(pb::UploadRequest {
            agent_id: agent.clone(),
            run_id: plan.run_id.clone(),
            result_packed: Default::default(),
            result_json: sample_result(&plan.run_id, Framework::Numpy, DeviceKind::Cpu)
                .to_json()
                .into_bytes()
                .into(),
        })
        .await
        .expect("upload after the restart");

    expect_line(
        &stdout,
        "succeeded 1",
        Duration::from_secs(30),
        &mut out_seen,
    );
    let start = Instant::now();
    let status = loop {
        if let Ok(Some(status)) = wait.0.try_wait() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "fleetctl did not exit"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    err_seen.extend(stderr.try_iter());
    assert!(status.success(), "{status:?}\n{out_seen:#?}\n{err_seen:#?}");
    assert!(
        err_seen.iter().any(|l| l.contains("answers again")),
        "{err_seen:#?}"
    );
}
