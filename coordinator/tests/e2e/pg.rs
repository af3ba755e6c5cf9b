//! A throw-away PostgreSQL cluster for the storage suite: `initdb` into a temporary
//! directory, `postgres` listening only on a Unix socket in that directory (no TCP port at
//! all), stopped (SIGINT, then SIGKILL) on drop. As root, both run as the `postgres` user.
//!
//! Binaries: `$FLEETCAL_PG_BIN`, else the newest `/usr/lib/postgresql/*/bin` with `initdb`
//! (Debian's `postgresql` package). When none is found the PostgreSQL half of the suite prints
//! a loud SKIP, unless `FLEETCAL_REQUIRE_PG=1` (set in CI), which makes it fail instead.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running throw-away cluster.
pub struct PgCluster {
    child: Child,
    /// Connection URL (Unix socket).
    pub url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

fn bin_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("FLEETCAL_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn id_of(flag: &str, user: Option<&str>) -> Option<u32> {
    let out = Command::new("id").arg(flag).args(user).output().ok()?;
    String::from_utf8(out.stdout).ok()?.trim().parse().ok()
}

/// The uid/gid to run PostgreSQL as: `postgres` when we are root, nobody else otherwise.
fn run_as() -> Option<(u32, u32)> {
    if id_of("-u", None).is_some_and(|uid| uid != 0) {
        return None;
    }
    Some((
        id_of("-u", Some("postgres"))?,
        id_of("-g", Some("postgres"))?,
    ))
}

fn command(bin: &Path, name: &str, user: Option<(u32, u32)>) -> Command {
    let mut cmd = Command::new(bin.join(name));
    if let Some((uid, gid)) = user {
        cmd.uid(uid).gid(gid);
    }
    cmd.env("LC_ALL", "C");
    cmd
}

impl PgCluster {
    /// Starts a cluster, or returns `None` (after a loud SKIP line) when PostgreSQL is absent.
    /// Tests run it with `fsync=off` (nothing of it outlives the test).
    pub async fn start() -> Option<PgCluster> {
        Self::start_with(false).await
    }

    /// As [`PgCluster::start`], but durable (`fsync=on`, PostgreSQL's default): what a
    /// benchmark of commits measures against (`benches/fleet_reports.rs`).
    #[allow(dead_code)]
    pub async fn start_durable() -> Option<PgCluster> {
        Self::start_with(true).await
    }

    async fn start_with(fsync: bool) -> Option<PgCluster> {
        let Some(bin) = bin_dir() else {
            let msg = "SKIP: PostgreSQL server binaries not found (set FLEETCAL_PG_BIN or install \
                       the 'postgresql' package): the PostgreSQL storage suite did NOT run";
            if std::env::var("FLEETCAL_REQUIRE_PG").is_ok_and(|v| v == "1") {
                panic!("{msg} and FLEETCAL_REQUIRE_PG=1");
            }
            // Written to the stderr handle itself: the test harness does not capture it.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "\n==============================\n{msg}\n==============================\n"
            );
            return None;
        };
        let user = run_as();
        let dir = tempfile::tempdir().expect("temp dir");
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown temp dir");
        }
        let data = dir.path().join("data");
        let log = dir.path().join("postgres.log");
        let init = command(&bin, "initdb", user)
            .args(["-D"])
            .arg(&data)
            .args(["-U", "fleetcal", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .output()
            .expect("running initdb");
        assert!(
            init.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let logfile = std::fs::File::create(&log).expect("log file");
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&log, Some(uid), Some(gid)).expect("chown log");
        }
        let child = command(&bin, "postgres", user)
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(dir.path())
            .args(["-p", "5432", "-c", "listen_addresses=", "-c"])
            .arg(if fsync { "fsync=on" } else { "fsync=off" })
            .stdout(Stdio::null())
            .stderr(logfile)
            .spawn()
            .expect("spawning postgres");
        let url = format!(
            "postgres://fleetcal@localhost/postgres?host={}&port=5432",
            dir.path().display()
        );
        let cluster = PgCluster {
            child,
            url,
            log,
            _dir: dir,
        };
        let start = Instant::now();
        loop {
            use sqlx::Connection;
            match sqlx::PgConnection::connect(&cluster.url).await {
                Ok(conn) => {
                    let _ = conn.close().await;
                    return Some(cluster);
                }
                Err(e) if start.elapsed() > Duration::from_secs(30) => panic!(
                    "postgres did not accept connections within 30 s: {e}\n{}",
                    std::fs::read_to_string(&cluster.log).unwrap_or_default()
                ),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // Fast shutdown (SIGINT) so backends exit with the postmaster; SIGKILL as a last resort.
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
