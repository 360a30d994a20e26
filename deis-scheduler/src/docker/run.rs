//! One-off runs in a container: start, wait for the exit, collect the output.

use super::engine::map_err;
use super::shared::Shared;
use bollard::query_parameters::LogsOptionsBuilder;
use deis_core::error::{Error, Result};
use deis_core::scheduler::RunOutcome;
use futures::StreamExt;

/// Starts a created run container, waits for its exit and collects its output.
pub(super) async fn run_to_end(shared: &Shared, name: &str) -> Result<RunOutcome> {
    shared
        .docker
        .start_container(name, None)
        .await
        .map_err(map_err)?;
    let exit = match shared.docker.wait_container(name, None).next().await {
        Some(Ok(response)) => response.status_code,
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
        Some(Err(e)) => return Err(map_err(e)),
        None => return Err(Error::backend("docker", "the wait for the run ended early")),
    };
    let options = LogsOptionsBuilder::new().stdout(true).stderr(true).build();
    let mut logs = shared.docker.logs(name, Some(options));
    let limit = shared.config.run_output_limit;
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
