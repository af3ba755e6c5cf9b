//! Running a host tool (`nvpmodel -q`) with a time limit: a tool that hangs (a Jetson whose
//! nvpmodel daemon is stuck) must not hang detection.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long `nvpmodel -q` may take.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(3);

/// Runs `program args` with stdin closed and returns its stdout; `Err` says why not (not
/// found, failed with its status and a bounded prefix of stderr, or killed after `timeout`).
pub fn output_within(program: &str, args: &[&str], timeout: Duration) -> Result<String, String> {
    let shown = std::iter::once(program)
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("`{shown}` could not run: {e}"))?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`{shown}` did not answer within {} s",
                    timeout.as_secs_f64()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("`{shown}` could not be waited for: {e}")),
        }
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut stdout);
    }
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    if status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "`{shown}` failed ({status}): {}",
            fleetcal_proto::quote::bounded(stderr.trim())
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_failure_absence_and_timeout_are_told_apart() {
        assert_eq!(
            output_within("sh", &["-c", "echo hi"], TOOL_TIMEOUT).as_deref(),
            Ok("hi\n")
        );
        let e = output_within("sh", &["-c", "echo bad >&2; exit 3"], TOOL_TIMEOUT).unwrap_err();
        assert!(e.contains("failed") && e.contains("bad"), "{e}");
        let e = output_within("fleetcal-no-such-tool", &[], TOOL_TIMEOUT).unwrap_err();
        assert!(e.contains("could not run"), "{e}");
        let started = Instant::now();
        let e = output_within("sleep", &["5"], Duration::from_millis(100)).unwrap_err();
        assert!(e.contains("did not answer within 0.1 s"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(4));
    }
}
