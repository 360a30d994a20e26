//! Reading the Swarm: the managed services of an app, their tasks, and the instances those
//! tasks are (type from the service, number from the task's slot, release from the task's
//! container labels, endpoint from the task's published host port and its node's address).

use super::{SwarmConfig, SwarmEndpoints};
use crate::docker::engine::{map_err, LABEL_APP, LABEL_OWNER, LABEL_RELEASE, LABEL_TYPE};
use bollard::models::{Service, Task, TaskState};
use bollard::query_parameters::{
    ListNodesOptions, ListServicesOptionsBuilder, ListTasksOptionsBuilder,
};
use bollard::Docker;
use deis_core::error::Result;
use deis_core::model::{is_routable_type, Instance, InstanceState};
use std::collections::HashMap;

/// One live task of a managed service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    /// The instance it is.
    pub(crate) instance: Instance,
    pub(crate) task_id: String,
    pub(crate) service_id: String,
    pub(crate) node_id: Option<String>,
    pub(crate) container_id: Option<String>,
    /// The task's observed state.
    pub(crate) status: Option<TaskState>,
    /// Swarm's error for the task (e.g. `no suitable node ...`, `task: non-zero exit (137)`).
    pub(crate) error: Option<String>,
}

/// The managed services of `app`, or of every app.
pub(crate) async fn services(
    docker: &Docker,
    config: &SwarmConfig,
    app: Option<&str>,
) -> Result<Vec<Service>> {
    let mut labels = vec![format!("{LABEL_OWNER}={}", config.owner)];
    if let Some(app) = app {
        labels.push(format!("{LABEL_APP}={app}"));
    }
    let filters = HashMap::from([("label".to_string(), labels)]);
    let options = ListServicesOptionsBuilder::new().filters(&filters).build();
    docker.list_services(Some(options)).await.map_err(map_err)
}

/// A label of a service.
pub(crate) fn service_label<'a>(service: &'a Service, label: &str) -> Option<&'a str> {
    service
        .spec
        .as_ref()?
        .labels
        .as_ref()?
        .get(label)
        .map(String::as_str)
}

/// Every task of `services` (all states: history included).
pub(crate) async fn tasks_of(docker: &Docker, services: &[Service]) -> Result<Vec<Task>> {
    let ids: Vec<String> = services.iter().filter_map(|s| s.id.clone()).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let filters = HashMap::from([("service".to_string(), ids)]);
    let options = ListTasksOptionsBuilder::new().filters(&filters).build();
    docker.list_tasks(Some(options)).await.map_err(map_err)
}

/// The address of every node, by id, for endpoints.
pub(crate) async fn node_addresses(docker: &Docker) -> Result<HashMap<String, String>> {
    let nodes = docker
        .list_nodes(None::<ListNodesOptions>)
        .await
        .map_err(map_err)?;
    Ok(nodes
        .into_iter()
        .filter_map(|n| Some((n.id?, n.status?.addr?)))
        .collect())
}

/// The address of every task on the scheduler's overlay network, by task id, from the
/// network's verbose inspect (tasks are listed as `<service>.<slot>.<task id>`). A
/// missing network has no tasks yet.
pub(crate) async fn overlay_addresses(
    docker: &Docker,
    config: &SwarmConfig,
) -> Result<HashMap<String, String>> {
    let options = bollard::query_parameters::InspectNetworkOptionsBuilder::new()
        .verbose(true)
        .scope("swarm")
        .build();
    let network = match docker.inspect_network(&config.network, Some(options)).await {
        Ok(network) => network,
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => return Ok(HashMap::new()),
        Err(e) => return Err(map_err(e)),
    };
    Ok(network
        .services
        .unwrap_or_default()
        .into_values()
        .filter_map(|service| match service.get("Tasks") {
            Some(serde_json::Value::Array(tasks)) => Some(tasks.clone()),
            _ => None,
        })
        .flatten()
        .filter_map(|task| {
            let id = task.get("Name")?.as_str()?.rsplit('.').next()?.to_string();
            let ip = task.get("EndpointIP")?.as_str()?;
            (!ip.is_empty()).then(|| (id, ip.to_string()))
        })
        .collect())
}

/// Whether Swarm still wants the task to run (tasks being shut down or replaced are not
/// instances any more).
pub(crate) fn is_live(task: &Task) -> bool {
    matches!(
        task.desired_state,
        Some(TaskState::RUNNING) | Some(TaskState::READY)
    )
}

/// The instance state of a task's observed state.
pub(crate) fn state_of(status: Option<TaskState>) -> InstanceState {
    match status {
        Some(TaskState::RUNNING) => InstanceState::Up,
        Some(
            TaskState::NEW
            | TaskState::ALLOCATED
            | TaskState::PENDING
            | TaskState::ASSIGNED
            | TaskState::ACCEPTED
            | TaskState::PREPARING
            | TaskState::READY
            | TaskState::STARTING,
        ) => InstanceState::Starting,
        Some(
            TaskState::COMPLETE
            | TaskState::SHUTDOWN
            | TaskState::FAILED
            | TaskState::REJECTED
            | TaskState::REMOVE
            | TaskState::ORPHANED,
        ) => InstanceState::Crashed,
        None => InstanceState::Error,
    }
}

/// The live tasks of `services` as instances, ordered by type, number and release.
pub(crate) fn seen(
    config: &SwarmConfig,
    services: &[Service],
    tasks: &[Task],
    nodes: &HashMap<String, String>,
    overlay: &HashMap<String, String>,
) -> Vec<Seen> {
    let by_id: HashMap<&str, &Service> = services
        .iter()
        .filter_map(|s| Some((s.id.as_deref()?, s)))
        .collect();
    // Newest first, so that of two live tasks in one slot with the same release (Swarm
    // retiring the task a restart replaced) only the replacement is kept; tasks of different
    // releases in one slot (a start-first rollout) are both instances.
    let mut live: Vec<&Task> = tasks.iter().filter(|t| is_live(t)).collect();
    live.sort_by(|a, b| b.created_at.cmp(&a.created_at));
    let mut slots = std::collections::HashSet::new();
    let mut seen: Vec<Seen> = live
        .into_iter()
        .filter_map(|task| {
            let service = by_id.get(task.service_id.as_deref()?)?;
            let app = service_label(service, LABEL_APP)?.to_string();
            let process_type = service_label(service, LABEL_TYPE)?.to_string();
            let release = task
                .spec
                .as_ref()?
                .container_spec
                .as_ref()?
                .labels
                .as_ref()?
                .get(LABEL_RELEASE)?
                .parse()
                .ok()?;
            let num = u32::try_from(task.slot?).ok()?;
            let status = task.status.as_ref();
            let observed = status.and_then(|s| s.state);
            let state = state_of(observed);
            let endpoint = if state == InstanceState::Up
                && is_routable_type(&process_type)
                && config.endpoints == SwarmEndpoints::Overlay
            {
                task.id
                    .as_ref()
                    .and_then(|id| overlay.get(id))
                    .map(|ip| format!("{ip}:{}", config.container_port))
            } else if state == InstanceState::Up && is_routable_type(&process_type) {
                let port = status
                    .and_then(|s| s.port_status.as_ref())
                    .and_then(|p| p.ports.as_ref())
                    .and_then(|ports| {
                        ports
                            .iter()
                            .find(|p| p.target_port == Some(i64::from(config.container_port)))
                    })
                    .and_then(|p| p.published_port);
                let host = config.endpoint_host.clone().or_else(|| {
                    task.node_id
                        .as_ref()
                        .and_then(|n| nodes.get(n))
                        .filter(|a| !a.is_empty() && a.as_str() != "0.0.0.0")
                        .cloned()
                });
                port.map(|p| format!("{}:{p}", host.unwrap_or_else(|| "127.0.0.1".into())))
            } else {
                None
            };
            if !slots.insert((task.service_id.clone()?, num, release)) {
                return None;
            }
            Some(Seen {
                instance: Instance {
                    app,
                    process_type,
                    num,
                    release,
                    state,
                    endpoint,
                },
                task_id: task.id.clone()?,
                service_id: task.service_id.clone()?,
                node_id: task.node_id.clone(),
                container_id: status
                    .and_then(|s| s.container_status.as_ref())
                    .and_then(|c| c.container_id.clone()),
                status: observed,
                error: status.and_then(|s| s.err.clone()).filter(|e| !e.is_empty()),
            })
        })
        .collect();
    seen.sort_by(|a, b| {
        let key = |s: &Seen| {
            (
                s.instance.process_type.clone(),
                s.instance.num,
                s.instance.release,
            )
        };
        key(a).cmp(&key(b))
    });
    seen
}

/// Everything live of `app` (or of every app), read in three calls.
pub(crate) async fn read(
    docker: &Docker,
    config: &SwarmConfig,
    app: Option<&str>,
) -> Result<(Vec<Service>, Vec<Task>, Vec<Seen>)> {
    let services = services(docker, config, app).await?;
    let tasks = tasks_of(docker, &services).await?;
    let (nodes, overlay) = match config.endpoints {
        SwarmEndpoints::Overlay => (HashMap::new(), overlay_addresses(docker, config).await?),
        SwarmEndpoints::HostPort if config.endpoint_host.is_some() => {
            (HashMap::new(), HashMap::new())
        }
        SwarmEndpoints::HostPort => (node_addresses(docker).await?, HashMap::new()),
    };
    let seen = seen(config, &services, &tasks, &nodes, &overlay);
    Ok((services, tasks, seen))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_states_map_to_instance_states() {
        assert_eq!(state_of(Some(TaskState::RUNNING)), InstanceState::Up);
        assert_eq!(state_of(Some(TaskState::PENDING)), InstanceState::Starting);
        assert_eq!(state_of(Some(TaskState::STARTING)), InstanceState::Starting);
        assert_eq!(state_of(Some(TaskState::FAILED)), InstanceState::Crashed);
        assert_eq!(state_of(None), InstanceState::Error);
    }
}
