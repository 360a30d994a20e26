//! One-off runs in a container: start, wait for the exit, collect the output.

use super::engine::map_err;
use bollard::query_parameters::LogsOptionsBuilder;
use bollard::Docker;
use deis_core::error::{Error, Result};
use deis_core::scheduler::RunOutcome;
use futures::StreamExt;

/// Starts a created run container, waits for its exit and collects at most `limit` bytes
/// of its output (stdout and stderr as the container wrote them).
pub(crate) async fn run_to_end(docker: &Docker, name: &str, limit: usize) -> Result<RunOutcome> {
    docker.start_container(name, None).await.map_err(map_err)?;
    let exit = match docker.wait_container(name, None).next().await {
        Some(Ok(response)) => response.status_code,
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
        Some(Err(e)) => return Err(map_err(e)),
        None => return Err(Error::backend("docker", "the wait for the run ended early")),
    };
    let options = LogsOptionsBuilder::new().stdout(true).stderr(true).build();
    let mut logs = docker.logs(name, Some(options));
    let mut output = Vec::new();
    let mut cut = false;
    while let Some(chunk) = logs.next().await {
        let chunk = chunk.map_err(map_err)?;
        let bytes = chunk.as_ref();
        let room = limit.saturating_sub(output.len());
        output.extend_from_slice(&bytes[..bytes.len().min(room)]);
        cut |= bytes.len() > room;
    }
    let mut output = String::from_utf8_lossy(&output).into_owned();
    if cut {
        output.push_str(&format!("\n[output cut at {limit} bytes]\n"));
    }
    Ok(RunOutcome {
        exit_code: i32::try_from(exit).unwrap_or(-1),
        output,
    })
}
