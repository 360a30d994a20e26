//! Thin helpers over the Docker Engine API (bollard): container bodies, listing, stopping,
//! logs, and the mapping of bollard errors into `deis_core::Error`.

use super::DockerConfig;
use crate::log_sink::LogSink;
use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, ContainerSummary, ContainerSummaryStateEnum, HostConfig, PortBinding,
    RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use bollard::Docker;
use deis_core::error::{Error, Kind};
use deis_core::model::{Healthcheck, InstanceState};
use deis_core::scheduler::ProcessLimits;
use futures::StreamExt;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Labels every managed container carries.
pub(crate) const LABEL_OWNER: &str = "io.deis.owner";
pub(crate) const LABEL_APP: &str = "io.deis.app";
pub(crate) const LABEL_RELEASE: &str = "io.deis.release";
pub(crate) const LABEL_TYPE: &str = "io.deis.type";
pub(crate) const LABEL_NUM: &str = "io.deis.num";
/// `<url> <initial delay secs> <timeout secs>`, so restarts are checked like rollouts.
/// The container port a routable container listens on (`PORT`) and publishes.
pub(crate) const LABEL_PORT: &str = "io.deis.port";
pub(crate) const LABEL_HEALTHCHECK: &str = "io.deis.healthcheck";

/// The health check a container's labels carry.
pub(crate) fn healthcheck_of(labels: &HashMap<String, String>) -> Option<Healthcheck> {
    let mut parts = labels.get(LABEL_HEALTHCHECK)?.split_whitespace();
    Some(Healthcheck {
        url: parts.next()?.to_string(),
        initial_delay_secs: parts.next()?.parse().ok()?,
        timeout_secs: parts.next()?.parse().ok()?,
    })
}

/// Maps a bollard error into the shared error type.
pub(crate) fn map_err(error: BollardError) -> Error {
    match error {
        BollardError::DockerResponseServerError {
            status_code: 404,
            message,
        } => Error::not_found(Kind::Instance, message),
        BollardError::DockerResponseServerError {
            status_code: 409,
            message,
        } => Error::precondition(message),
        BollardError::DockerResponseServerError {
            status_code,
            message,
        } if status_code >= 500 => Error::Unavailable {
            backend: "docker",
            message: format!("{status_code}: {message}"),
        },
        BollardError::IOError { err } => Error::Unavailable {
            backend: "docker",
            message: err.to_string(),
        },
        BollardError::HyperResponseError { err } => Error::Unavailable {
            backend: "docker",
            message: err.to_string(),
        },
        BollardError::RequestTimeoutError => Error::Unavailable {
            backend: "docker",
            message: "the Docker Engine did not answer in time".into(),
        },
        other => Error::backend("docker", other.to_string()),
    }
}

/// One managed container, as listed.
#[derive(Debug, Clone)]
pub(crate) struct Listed {
    pub(crate) name: String,
    pub(crate) process_type: String,
    pub(crate) num: u32,
    pub(crate) release: u64,
    pub(crate) state: InstanceState,
    pub(crate) host_port: Option<u16>,
    pub(crate) healthcheck: Option<Healthcheck>,
}

/// Every container of `app` (or of every app) that `config.owner` manages.
pub(crate) async fn list(
    docker: &Docker,
    config: &DockerConfig,
    app: Option<&str>,
) -> Result<Vec<Listed>, Error> {
    let mut labels = vec![format!("{LABEL_OWNER}={}", config.owner)];
    if let Some(app) = app {
        labels.push(format!("{LABEL_APP}={app}"));
    }
    let filters = HashMap::from([("label".to_string(), labels)]);
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let containers = docker
        .list_containers(Some(options))
        .await
        .map_err(map_err)?;
    Ok(containers
        .into_iter()
        .filter_map(|c| listed(c, config.container_port))
        .collect())
}

fn listed(container: ContainerSummary, container_port: u16) -> Option<Listed> {
    let labels = container.labels.unwrap_or_default();
    let name = container
        .names
        .unwrap_or_default()
        .into_iter()
        .next()?
        .trim_start_matches('/')
        .to_string();
    let state = match container.state {
        Some(ContainerSummaryStateEnum::RUNNING) => InstanceState::Up,
        Some(ContainerSummaryStateEnum::CREATED) => InstanceState::Created,
        Some(ContainerSummaryStateEnum::RESTARTING)
        | Some(ContainerSummaryStateEnum::EXITED)
        | Some(ContainerSummaryStateEnum::DEAD) => InstanceState::Crashed,
        Some(_) => InstanceState::Down,
        None => InstanceState::Error,
    };
    let container_port = port_of(&labels, container_port);
    let host_port = container
        .ports
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.private_port == container_port && p.public_port.is_some())
        .and_then(|p| p.public_port);
    Some(Listed {
        healthcheck: healthcheck_of(&labels),
        name,
        process_type: labels.get(LABEL_TYPE)?.clone(),
        num: labels.get(LABEL_NUM)?.parse().ok()?,
        release: labels.get(LABEL_RELEASE)?.parse().ok()?,
        state,
        host_port,
    })
}

/// The port a container listens on: its `io.deis.port` label, else `default`.
fn port_of(labels: &HashMap<String, String>, default: u16) -> u16 {
    labels
        .get(LABEL_PORT)
        .and_then(|p| p.parse().ok())
        .unwrap_or(default)
}

/// The port a routable container of `image` listens on: the lowest TCP port the image
/// `EXPOSE`s (as Deis v1 routed Dockerfile and image apps), else `default`.
pub(crate) async fn image_port(docker: &Docker, image: &str, default: u16) -> u16 {
    let exposed = match docker.inspect_image(image).await {
        Ok(inspect) => inspect
            .config
            .and_then(|c| c.exposed_ports)
            .unwrap_or_default(),
        Err(_) => return default,
    };
    exposed
        .iter()
        .filter_map(|p| {
            let (port, proto) = p.split_once('/').unwrap_or((p.as_str(), "tcp"));
            (proto == "tcp").then(|| port.parse::<u16>().ok()).flatten()
        })
        .min()
        .unwrap_or(default)
}

/// What a new container is made of.
pub(crate) struct NewContainer<'a> {
    pub(crate) name: &'a str,
    pub(crate) app: &'a str,
    pub(crate) process_type: &'a str,
    pub(crate) num: u32,
    pub(crate) release: u64,
    pub(crate) image: &'a str,
    /// The shell command, or `None` for the image's own command.
    pub(crate) command: Option<String>,
    pub(crate) env: &'a BTreeMap<String, String>,
    pub(crate) limits: &'a ProcessLimits,
    pub(crate) healthcheck: Option<&'a Healthcheck>,
    /// Publish the container port on the host (routable types).
    pub(crate) publish: bool,
    /// Restart on failure (instances) or never (one-off runs).
    pub(crate) restart: bool,
}

/// Creates a container (not started); one of ours left over under the same name is removed
/// first.
pub(crate) async fn create(
    docker: &Docker,
    config: &DockerConfig,
    new: NewContainer<'_>,
) -> Result<(), Error> {
    let mut env: Vec<String> = new.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let container_port = if new.publish {
        image_port(docker, new.image, config.container_port).await
    } else {
        config.container_port
    };
    let port_key = format!("{container_port}/tcp");
    let mut host_config = HostConfig {
        memory: new.limits.memory_bytes.and_then(|b| i64::try_from(b).ok()),
        cpu_shares: new.limits.cpu_shares.map(i64::from),
        init: config.init.then_some(true),
        restart_policy: Some(RestartPolicy {
            name: Some(if new.restart {
                RestartPolicyNameEnum::ON_FAILURE
            } else {
                RestartPolicyNameEnum::NO
            }),
            maximum_retry_count: None,
        }),
        ..Default::default()
    };
    let mut exposed = None;
    if new.publish {
        env.push(format!("PORT={container_port}"));
        exposed = Some(vec![port_key.clone()]);
        host_config.port_bindings = Some(HashMap::from([(
            port_key,
            Some(vec![PortBinding {
                host_ip: Some(config.bind_ip.clone()),
                host_port: Some(String::new()),
            }]),
        )]));
    }
    let mut labels = HashMap::from([
        (LABEL_OWNER.to_string(), config.owner.clone()),
        (LABEL_APP.to_string(), new.app.to_string()),
        (LABEL_RELEASE.to_string(), new.release.to_string()),
        (LABEL_TYPE.to_string(), new.process_type.to_string()),
        (LABEL_NUM.to_string(), new.num.to_string()),
    ]);
    if new.publish {
        labels.insert(LABEL_PORT.to_string(), container_port.to_string());
    }
    if let Some(check) = new.healthcheck {
        labels.insert(
            LABEL_HEALTHCHECK.to_string(),
            format!(
                "{} {} {}",
                check.url, check.initial_delay_secs, check.timeout_secs
            ),
        );
    }
    let body = ContainerCreateBody {
        image: Some(new.image.to_string()),
        cmd: new
            .command
            .map(|c| vec!["/bin/sh".to_string(), "-c".to_string(), c]),
        env: Some(env),
        labels: Some(labels),
        exposed_ports: exposed,
        host_config: Some(host_config),
        ..Default::default()
    };
    // A container left under this name by an earlier life of this scheduler goes; one
    // that another owner manages is not ours to remove.
    if let Ok(existing) = docker.inspect_container(new.name, None).await {
        let owner = existing
            .config
            .and_then(|c| c.labels)
            .and_then(|l| l.get(LABEL_OWNER).cloned());
        if owner.as_deref() != Some(config.owner.as_str()) {
            return Err(Error::already_exists(Kind::Instance, new.name));
        }
        remove(docker, new.name).await?;
    }
    let options = CreateContainerOptionsBuilder::new().name(new.name).build();
    docker
        .create_container(Some(options), body)
        .await
        .map_err(map_err)?;
    Ok(())
}

/// Stops a container gracefully (SIGTERM, then SIGKILL after `grace`); a gone one is fine.
pub(crate) async fn stop(
    docker: &Docker,
    name: &str,
    grace: std::time::Duration,
) -> Result<(), Error> {
    let seconds = i32::try_from(grace.as_secs()).unwrap_or(i32::MAX);
    let options = StopContainerOptionsBuilder::new().t(seconds).build();
    match docker.stop_container(name, Some(options)).await {
        Ok(()) => Ok(()),
        Err(BollardError::DockerResponseServerError {
            status_code: 304 | 404,
            ..
        }) => Ok(()),
        Err(e) => Err(map_err(e)),
    }
}

/// Removes a container at once (forced); a gone one is fine.
pub(crate) async fn remove(docker: &Docker, name: &str) -> Result<(), Error> {
    let options = RemoveContainerOptionsBuilder::new().force(true).build();
    match docker.remove_container(name, Some(options)).await {
        Ok(()) => Ok(()),
        Err(BollardError::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(()),
        // "removal already in progress"
        Err(BollardError::DockerResponseServerError {
            status_code: 409, ..
        }) => Ok(()),
        Err(e) => Err(map_err(e)),
    }
}

/// The host port a running container's port (its `io.deis.port` label, else
/// `container_port`) is published on.
pub(crate) async fn host_port(docker: &Docker, name: &str, container_port: u16) -> Option<u16> {
    let inspect = docker.inspect_container(name, None).await.ok()?;
    let labels = inspect.config.and_then(|c| c.labels).unwrap_or_default();
    let container_port = port_of(&labels, container_port);
    let ports = inspect.network_settings?.ports?;
    let bindings = ports.get(&format!("{container_port}/tcp"))?.as_ref()?;
    bindings
        .iter()
        .find_map(|b| b.host_port.as_ref()?.parse().ok())
}

/// Whether a container is running now.
pub(crate) async fn running(docker: &Docker, name: &str) -> bool {
    docker
        .inspect_container(name, None)
        .await
        .ok()
        .and_then(|i| i.state?.running)
        .unwrap_or(false)
}

/// Follows a container's output line by line into `sink` until it stops: all of it for a
/// new container, from now on for a restarted one.
pub(crate) fn follow_logs(
    docker: Docker,
    sink: Arc<dyn LogSink>,
    container: String,
    app: String,
    source: String,
    from_start: bool,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let since = if from_start {
            0
        } else {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| i32::try_from(d.as_secs()).unwrap_or(0))
                .unwrap_or(0)
        };
        let options = LogsOptionsBuilder::new()
            .follow(true)
            .stdout(true)
            .stderr(true)
            .since(since)
            .build();
        let mut stream = docker.logs(&container, Some(options));
        let mut partial: BTreeMap<bool, String> = BTreeMap::new();
        while let Some(Ok(chunk)) = stream.next().await {
            let is_err = matches!(chunk, bollard::container::LogOutput::StdErr { .. });
            let buffer = partial.entry(is_err).or_default();
            buffer.push_str(&String::from_utf8_lossy(chunk.as_ref()));
            while let Some(end) = buffer.find('\n') {
                let line: String = buffer.drain(..=end).collect();
                sink.line(&app, &source, line.trim_end_matches(['\n', '\r']));
            }
        }
        for rest in partial.values().filter(|r| !r.is_empty()) {
            sink.line(&app, &source, rest);
        }
    })
}

/// The image a container scheduler (`backend`: docker or swarm) runs for `spec`, or the
/// precondition error saying why there is none.
pub(crate) fn image_of<'a>(
    spec: &'a deis_core::scheduler::AppSpec,
    backend: &str,
) -> Result<&'a str, Error> {
    use deis_core::scheduler::Artifact;
    match &spec.artifact {
        Artifact::Image { name } => Ok(name),
        Artifact::None => Err(Error::precondition(format!(
            "{} has no build to run; push code or deploy an image first",
            spec.app
        ))),
        Artifact::Slug { location } => Err(Error::precondition(format!(
            "the {backend} scheduler runs images, not slugs ({location}); use the local \
             scheduler or build an image"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_checks_round_trip_through_labels() {
        let labels = HashMap::from([(LABEL_HEALTHCHECK.to_string(), "/health 3 2".to_string())]);
        assert_eq!(
            healthcheck_of(&labels),
            Some(Healthcheck {
                url: "/health".into(),
                initial_delay_secs: 3,
                timeout_secs: 2
            })
        );
        let broken = HashMap::from([(LABEL_HEALTHCHECK.to_string(), "/health x".to_string())]);
        assert_eq!(healthcheck_of(&broken), None);
        assert_eq!(healthcheck_of(&HashMap::new()), None);
    }

    #[test]
    fn engine_errors_map_to_semantic_variants() {
        let gone = map_err(BollardError::DockerResponseServerError {
            status_code: 404,
            message: "no such container".into(),
        });
        assert!(gone.is_not_found());
        let busy = map_err(BollardError::DockerResponseServerError {
            status_code: 503,
            message: "overloaded".into(),
        });
        assert!(busy.is_retryable());
        let conflict = map_err(BollardError::DockerResponseServerError {
            status_code: 409,
            message: "name in use".into(),
        });
        assert!(matches!(conflict, Error::Precondition { .. }));
    }
}
