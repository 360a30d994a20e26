//! One-off runs: a shell command in the release's directory with its environment.

use super::process::{exit_code, shell, signal_group};
use super::LocalConfig;
use deis_core::error::{Error, Result};
use deis_core::scheduler::RunOutcome;
use nix::sys::signal::Signal;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;
use std::sync::Mutex;
use tokio::io::AsyncReadExt;

/// Removes a run's process group from the live set and kills what is left of it, however
/// the run ends (including when its future is dropped).
struct RunGuard<'a> {
    runs: &'a Mutex<BTreeSet<u32>>,
    pgid: u32,
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        signal_group(self.pgid, Signal::SIGKILL);
        self.runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.pgid);
    }
}

/// Runs `command` with `sh -c` in `dir` with `env`, capturing stdout and stderr interleaved
/// in order (stderr is joined to stdout before the command runs), and returns its exit code.
pub(crate) async fn one_off(
    config: &LocalConfig,
    runs: &Mutex<BTreeSet<u32>>,
    dir: &Path,
    env: &BTreeMap<String, String>,
    command: &str,
) -> Result<RunOutcome> {
    let script = format!("exec 2>&1\n{command}");
    let mut child = shell(&script, dir, env, None)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Error::backend("local", format!("starting a one-off run: {e}")))?;
    let pgid = child.id().unwrap_or_default();
    runs.lock().unwrap_or_else(|e| e.into_inner()).insert(pgid);
    let _guard = RunGuard { runs, pgid };
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| Error::backend("local", "the run's output pipe is missing"))?;
    let limit = config.run_output_limit;
    let reading = async {
        let mut output = Vec::new();
        let mut buf = [0u8; 8192];
        let mut cut = false;
        loop {
            let n = stdout.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            let room = limit.saturating_sub(output.len());
            output.extend_from_slice(&buf[..n.min(room)]);
            cut |= n > room;
        }
        Ok::<_, std::io::Error>((output, cut))
    };
    let waiting = async {
        let status = child.wait().await;
        // Background processes the command left behind would hold the pipe open.
        signal_group(pgid, Signal::SIGKILL);
        status
    };
    let work = async {
        let (status, read) = tokio::join!(waiting, reading);
        let (output, cut) = read?;
        Ok::<_, std::io::Error>((status?, output, cut))
    };
    match tokio::time::timeout(config.run_timeout, work).await {
        Ok(Ok((status, output, cut))) => {
            let mut output = String::from_utf8_lossy(&output).into_owned();
            if cut {
                output.push_str(&format!("\n[output cut at {limit} bytes]\n"));
            }
            Ok(RunOutcome {
                exit_code: exit_code(status),
                output,
            })
        }
        Ok(Err(e)) => Err(Error::backend("local", format!("one-off run: {e}"))),
        Err(_) => Err(Error::Unavailable {
            backend: "local",
            message: format!(
                "the one-off run did not finish within {:?} and was killed",
                config.run_timeout
            ),
        }),
    }
}
