//! OS processes: shell commands in their own process group, signals to the group, ports.

use crate::log_sink::LogSink;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::Command;

/// The `PATH` processes get when the scheduler's own has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Longest log line kept; the rest of a longer line is cut.
const MAX_LINE: usize = 16 * 1024;

/// `sh -c <script>` in `dir`, in a new process group, with a clean environment: `PATH`,
/// `HOME` (the working directory), `env` and `PORT` when given. Nothing of the scheduler's
/// own environment (which may hold platform secrets) leaks in except `PATH`.
pub(crate) fn shell(
    script: &str,
    dir: &Path,
    env: &BTreeMap<String, String>,
    port: Option<u16>,
) -> Command {
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into()),
        )
        .env("HOME", dir)
        .envs(env)
        .stdin(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(port) = port {
        command.env("PORT", port.to_string());
    }
    command
}

/// Sends `signal` to the process group led by `pid`; a group that is gone already is fine.
pub(crate) fn signal_group(pid: u32, signal: Signal) {
    let Ok(raw) = i32::try_from(pid) else {
        return;
    };
    if raw <= 1 {
        return;
    }
    let _ = killpg(Pid::from_raw(raw), signal);
}

/// The exit code, with a signal as 128 + its number as shells report it.
pub(crate) fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

/// Describes how a process ended, for people.
pub(crate) fn describe_exit(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => match Signal::try_from(signal) {
            Ok(s) => format!("was killed by {s}"),
            Err(_) => format!("was killed by signal {signal}"),
        },
        _ => "ended".to_string(),
    }
}

/// Copies `reader` line by line into `sink` as `app[source]` until it closes.
pub(crate) fn pump_lines(
    reader: impl AsyncRead + Unpin + Send + 'static,
    sink: Arc<dyn LogSink>,
    app: String,
    source: String,
) {
    tokio::spawn(async move {
        let mut reader = BufReader::new(reader);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match (&mut reader)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut buf)
                .await
            {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                        buf.pop();
                    }
                    sink.line(&app, &source, &String::from_utf8_lossy(&buf));
                }
            }
        }
    });
}

/// A free TCP port on 127.0.0.1, as the kernel hands them out.
pub(crate) fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_shell_gets_a_clean_environment_and_its_own_group() {
        let dir = tempfile::tempdir().unwrap();
        let env = BTreeMap::from([("DEIS_APP".to_string(), "go".to_string())]);
        let output = shell(
            "echo $DEIS_APP $PORT $HOME; ps -o pgid= -p $$; echo $$",
            dir.path(),
            &env,
            Some(5000),
        )
        .stdout(Stdio::piped())
        .output()
        .await
        .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            format!("go 5000 {}", dir.path().display()),
            "{text}"
        );
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[1].trim(), lines[2].trim(), "pgid is the shell's pid");
    }

    #[test]
    fn exits_are_described() {
        let status = ExitStatus::from_raw(3 << 8);
        assert_eq!(exit_code(status), 3);
        assert_eq!(describe_exit(status), "exited with status 3");
        let killed = ExitStatus::from_raw(9);
        assert_eq!(exit_code(killed), 137);
        assert_eq!(describe_exit(killed), "was killed by SIGKILL");
    }
}
