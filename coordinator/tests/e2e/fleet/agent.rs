//! Real `fleetcal-agent run` processes, each with its own temporary state dir; killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// The `fleetcal-agent` executable of this build, built once per test binary.
///
/// It belongs to another crate, so cargo gives no `CARGO_BIN_EXE_` for it: build it with the
/// cargo that runs the tests, into the same target dir and profile, and take it from beside
/// the test executable's `deps/` folder.
pub fn agent_exe() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let test_exe = std::env::current_exe().unwrap();
        let profile_dir = test_exe.parent().unwrap().parent().unwrap().to_path_buf();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "-p", "fleetcal-agent", "--bin", "fleetcal-agent"]);
        // cargo sets the test's package variables (CARGO_MANIFEST_DIR, CARGO_PKG_NAME, ...) for
        // this process; build scripts such as ring's rerun when those change, so passing them on
        // would rebuild half the tree here and again on the next plain cargo command.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            let per_package = [
                "CARGO_PKG_",
                "CARGO_MANIFEST_",
                "CARGO_BIN_",
                "CARGO_CRATE_",
            ]
            .iter()
            .any(|p| key.starts_with(p))
                || ["CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "OUT_DIR"].contains(&&*key);
            if per_package {
                build.env_remove(&*key);
            }
        }
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build for fleetcal-agent");
        assert!(status.success(), "building fleetcal-agent failed");
        let exe = profile_dir.join("fleetcal-agent");
        assert!(exe.is_file(), "{} missing after the build", exe.display());
        exe
    })
}

/// How a board's agent is launched: which executable (default [`agent_exe`]), under which
/// host name (set in a UTS namespace of its own, as a separate machine has its own; needs
/// root), pinned to which CPUs (`taskset -c`).
#[derive(Debug, Clone, Default)]
pub struct Board {
    /// The `fleetcal-agent` executable; `None` = this build's.
    pub exe: Option<PathBuf>,
    /// Its host name; `None` = this host's.
    pub hostname: Option<String>,
    /// Its CPU list (`0`, `2-3`); `None` = unpinned.
    pub cpus: Option<String>,
    /// Its niceness (`nice -n`; negative needs root); `None` = inherited. A board's agent
    /// ahead of whatever else the test machine runs measures like a dedicated board.
    pub nice: Option<i32>,
}

impl Board {
    /// The command line that starts the agent with `args`.
    fn command_line(&self, args: &[String]) -> Vec<String> {
        let exe = self.exe.as_deref().unwrap_or_else(|| agent_exe());
        let mut line = vec![exe.display().to_string()];
        line.extend(args.iter().cloned());
        if let Some(cpus) = &self.cpus {
            line.splice(0..0, ["taskset".to_string(), "-c".into(), cpus.clone()]);
        }
        if let Some(n) = self.nice {
            line.splice(0..0, ["nice".to_string(), "-n".into(), n.to_string()]);
        }
        if let Some(name) = &self.hostname {
            let prefix = [
                "unshare",
                "--uts",
                "sh",
                "-c",
                r#"hostname "$1" && shift && exec "$@""#,
                "sh",
                name,
            ];
            line.splice(0..0, prefix.map(str::to_string));
        }
        line
    }
}

/// One running agent.
pub struct Agent {
    child: Option<Child>,
    dir: tempfile::TempDir,
    args: Vec<String>,
    board: Board,
}

impl Agent {
    /// Starts `fleetcal-agent run --coordinator URL` with `extra` flags, a fresh state dir,
    /// a 1 s backoff cap and one engine thread; its log goes to `agent.log` in the temp dir.
    /// With an `https://` URL and no TLS settings of its own (`--ca-cert`, `--cert`,
    /// `--join-token`, a `--config` with a `[tls]` table) it trusts the run's fleet CA and
    /// enrolls with a join token made by the real `fleetctl token create` (a restart or clone
    /// uses the enrolled key).
    pub fn start(coordinator: &str, extra: &[&str]) -> Agent {
        Agent::start_board(Board::default(), coordinator, extra)
    }

    /// [`Agent::start_board`] launched as `board` says.
    pub fn start_board(board: Board, coordinator: &str, extra: &[&str]) -> Agent {
        Agent::start_in(tempfile::tempdir().unwrap(), board, coordinator, extra)
    }

    /// [`Agent::start`] on a copy of `state`'s files (its agent-id and keys, not its spool):
    /// a cloned board, as one flashed from another's disk image.
    pub fn start_cloned(state: &Path, coordinator: &str, extra: &[&str]) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("state");
        std::fs::create_dir_all(&copy).unwrap();
        for entry in std::fs::read_dir(state).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
            }
        }
        Agent::start_in(dir, Board::default(), coordinator, extra)
    }

    /// The agent's state directory.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn start_in(dir: tempfile::TempDir, board: Board, coordinator: &str, extra: &[&str]) -> Agent {
        let mut args: Vec<String> = vec![
            "run".into(),
            "--coordinator".into(),
            coordinator.into(),
            "--state-dir".into(),
            dir.path().join("state").display().to_string(),
            "--max-backoff".into(),
            "1".into(),
            "--threads".into(),
            "1".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let own_config = extra
            .windows(2)
            .filter(|w| w[0] == "--config")
            .any(|w| std::fs::read_to_string(w[1]).is_ok_and(|t| t.contains("[tls]")));
        let own = own_config
            || extra
                .iter()
                .any(|a| ["--ca-cert", "--cert", "--join-token"].contains(a));
        if crate::support::is_tls(coordinator) && !own {
            let pki = crate::support::fleet_pki();
            args.extend([
                "--ca-cert".into(),
                pki.file("ca.pem").display().to_string(),
                "--join-token".into(),
                pki.join_token(coordinator),
            ]);
        }
        let mut agent = Agent {
            child: None,
            dir,
            args,
            board,
        };
        agent.spawn();
        agent
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("agent.log"))
            .unwrap();
        let line = self.board.command_line(&self.args);
        let child = Command::new(&line[0])
            .args(&line[1..])
            .env_remove("FLEETCAL_AGENT_CONFIG")
            .env("FLEETCAL_LOG", "info,fleetcal_agent=debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn fleetcal-agent");
        self.child = Some(child);
    }

    /// The running agent's process id (the launch prefixes exec it, so it is the agent's).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("agent running").id()
    }

    /// The agent's spool directory.
    pub fn spool_dir(&self) -> PathBuf {
        self.dir.path().join("state/spool")
    }

    /// The run ids whose result (`.json`) or failure (`.failed`) waits in the spool.
    pub fn spooled(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.spool_dir()) else {
            return Vec::new();
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|n| {
                let id = n
                    .strip_suffix(".json")
                    .or_else(|| n.strip_suffix(".failed"));
                id.map(str::to_string)
            })
            .filter(|n| !n.starts_with('.'))
            .collect();
        ids.sort();
        ids
    }

    /// The agent id it created.
    pub fn agent_id(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.path().join("state/agent-id"))
            .ok()
            .map(|s| s.trim().to_string())
    }

    /// Everything it logged so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    /// Starts the same agent again (same flags, same state dir) after [`Agent::terminate`].
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "agent still running");
        self.spawn();
    }

    /// `kill -9`: the agent gets no chance to finish, spool or log anything; waits for the
    /// exit. [`Agent::restart`] starts it again on the same state dir.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("agent running");
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Sends SIGTERM and waits for the exit status (a stuck agent is killed and the test
    /// fails with its log).
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("agent running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let start = std::time::Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if start.elapsed() > std::time::Duration::from_secs(120) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("agent ignored SIGTERM\n{}", self.log());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Agent {
    /// Waits up to `limit` for the agent to exit by itself (a start-up refusal) and returns
    /// its status; one still running then is killed and the test fails with its log.
    pub fn terminate_when_exited(
        &mut self,
        limit: std::time::Duration,
    ) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("agent running");
        let start = std::time::Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!("agent did not exit within {limit:?}\n{}", self.log());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
