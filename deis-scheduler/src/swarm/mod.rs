//! The Docker Swarm scheduler (feature `swarm`): one Swarm service per app and process type,
//! driven through a manager's Engine API with bollard.
//!
//! - **Services** are named `<app>_<type>` (after an optional prefix) and labelled
//!   `io.deis.{owner,app,type,release}`; their containers carry the same labels, so every
//!   task tells its release. The formation is the service's replica count; an instance is a
//!   task, numbered by its slot (`web.2` is slot 2). Swarm scales down from the highest slot
//!   on a node, so on one node the newest numbers go first; across nodes Swarm balances
//!   nodes first.
//! - **Rollouts** are Swarm rolling updates in `start-first` order with failure action
//!   `rollback`, a monitor period and no tolerated failures: a new task starts next to the
//!   old one and the old one is stopped only once the new one is `running`, which Swarm
//!   reports only after the container's HEALTHCHECK passed. The HEALTHCHECK is built from
//!   `HEALTHCHECK_URL`/`TIMEOUT`/`INITIAL_DELAY` (`wget` or `curl` in the image), or is a TCP
//!   connect to `$PORT` (`nc` or bash in the image) for routable types without a URL.
//!   `apply` waits for the update to complete; when Swarm rolls it back (a new task failed or
//!   turned unhealthy) `apply` waits for the rollback to finish and fails with Swarm's reason,
//!   the old tasks having served throughout. A rollout that stalls (no node fits, or the
//!   deadline passes) is rolled back by the scheduler itself. When one type of an app fails,
//!   the types that did update in the same `apply` are rolled back too, and services it
//!   created are removed, so the app stays on one release.
//! - **Endpoints**: routable types publish `PORT` (5000) in Swarm's `host` mode on a port
//!   the engine picks per task, and a task's endpoint is `<its node's address>:<that port>`
//!   (or [`SwarmConfig::endpoint_host`]). Host processes such as the Deis router cannot
//!   reach overlay addresses, and the ingress mesh would hide the tasks behind one
//!   balanced port, so per-task host ports are what a router can health-route to. Every task
//!   is also attached to an attachable overlay network ([`SwarmConfig::network`], created
//!   when missing) under the alias `<type>.<app>`, for routers and one-off runs that live
//!   in containers: the alias and the service name resolve to the task addresses there by
//!   DNS round robin (no virtual IP: that needs IPVS in the kernel, which hosts like this
//!   project's CI machine lack).
//! - **Placement** constraints come from the app's tags (`deis tags:set environ=prod` is
//!   `node.labels.environ==prod`); limits: memory is the memory limit, CPU shares become
//!   NanoCPUs at 1024 shares per CPU (Swarm has no shares). Restart policy `any`, after
//!   [`SwarmConfig::restart_delay`].
//! - **Events and state**: the scheduler polls the tasks of its services (every
//!   [`SwarmConfig::poll_interval`], and at once around its own changes) and reports every
//!   change as an instance event; a task that crashes shows `crashed`, its replacement
//!   `starting`, then `up`. Output of tasks on this engine's node goes to the [`LogSink`].
//! - **Restart** of a type or app is a forced rolling update (health-gated, start-first);
//!   restarting one instance stops its container, and Swarm starts a new task in its slot
//!   (the container must be on this engine's node).
//! - **One-off runs** are plain containers on this engine, attached to the same network.
//! - **Overlay endpoints** ([`SwarmEndpoints::Overlay`]): for routers that run as containers
//!   on the overlay network (as `deisctl --engine swarm` runs them), routable types publish
//!   no host port and a task's endpoint is its address on [`SwarmConfig::network`] with
//!   `PORT` (read from the network's verbose inspect, which lists every task of every
//!   node); the overlay spans the nodes, so this is the multi-host setting.
//! - Images are never pulled by the scheduler: the image must be on the engine (on every
//!   node of a larger swarm, or in a registry the nodes can reach). Slugs run when
//!   [`SwarmConfig::slug_runner`] names a stack image (see `docker::slug_image`); the
//!   slug image is built on this engine; with [`SwarmConfig::registry`] it is pushed to
//!   that registry and the services name the registry reference, which every node can
//!   fetch.

mod spec;
mod tasks;

use crate::docker::engine::{self as docker_engine, map_err, LABEL_APP, LABEL_OWNER, LABEL_TYPE};
use crate::log_sink::{LogSink, TracingLogSink};
use crate::plan::{check_name, check_spec};
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, LocalNodeState, NetworkCreateRequest,
    NetworkingConfig, Service, ServiceUpdateStatusStateEnum, Task, TaskState,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectServiceOptions, ListContainersOptionsBuilder,
    StopContainerOptionsBuilder, UpdateServiceOptionsBuilder,
};
use bollard::Docker;
use deis_core::error::{Error, Result};
use deis_core::model::{is_routable_type, Instance, InstanceState};
use deis_core::scheduler::{
    AppSpec, InstanceEvent, InstanceSelector, RunOutcome, RunRequest, Scheduler,
};
use futures::stream::BoxStream;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The process type of one-off run containers.
const RUN_TYPE: &str = "run";

/// Settings of the Swarm scheduler.
#[derive(Debug, Clone)]
pub struct SwarmConfig {
    /// The manager's Engine API unix socket.
    pub socket: String,
    /// The value of the `io.deis.owner` label: this scheduler only sees and touches
    /// services and containers carrying it.
    pub owner: String,
    /// Put before every service name (`<prefix><app>_<type>`), so several schedulers can
    /// share one swarm; empty by default.
    pub name_prefix: String,
    /// The attachable overlay network every task joins (created when missing).
    pub network: String,
    /// The port routable tasks listen on (`PORT`).
    pub container_port: u16,
    /// The host put in endpoints; `None` takes each task's node address (what the node
    /// advertised to the swarm).
    pub endpoint_host: Option<String>,
    /// Time between SIGTERM and SIGKILL when Swarm stops a task.
    pub stop_grace: Duration,
    /// How long Swarm waits before replacing a task that exited.
    pub restart_delay: Duration,
    /// The HEALTHCHECK interval.
    pub health_interval: Duration,
    /// Failed checks in a row that make a task unhealthy (Swarm then replaces it; during a
    /// rollout that fails the rollout).
    pub health_retries: u32,
    /// Added to `HEALTHCHECK_INITIAL_DELAY` as the HEALTHCHECK start period: failures in it
    /// do not count, so slow starters get this long to open their port.
    pub start_grace: Duration,
    /// How long an updated task is watched for failure before the next one (and before the
    /// rollout counts as complete).
    pub update_monitor: Duration,
    /// How many tasks a rollout replaces at once.
    pub update_parallelism: u32,
    /// How long a new task of a type without a port must keep running to count as up.
    pub settle: Duration,
    /// Added to the computed rollout deadline (image start, scheduling, API latency).
    pub rollout_slack: Duration,
    /// Time between two reads of the swarm's tasks for instance events.
    pub poll_interval: Duration,
    /// Time between withdrawing the tasks of a removed service (`down`) and removing it.
    pub drain_delay: Duration,
    /// How long a one-off run may take.
    pub run_timeout: Duration,
    /// The most output a one-off run returns.
    pub run_output_limit: usize,
    /// Run Docker's init as PID 1 so SIGTERM reaches the app.
    pub init: bool,
    /// What endpoints routers get for routable tasks.
    pub endpoints: SwarmEndpoints,
    /// The stack image slugs are run on; `None` refuses slugs.
    pub slug_runner: Option<String>,
    /// Placement constraints every app service gets besides its tags' (Deis's data plane:
    /// `node.labels.deis.data==true`).
    pub placement: Vec<String>,
    /// Reads slugs stored elsewhere (the builder's blob store); other locations are paths
    /// on this host.
    pub slug_fetcher: Option<Arc<dyn crate::local::SlugFetcher>>,
    /// The registry (`host:port`) slug images are pushed to once built, named
    /// `<registry>/<prefix>deis-slug/<app>:<hash>`, so every node can fetch them; `None`
    /// keeps them on this engine.
    pub registry: Option<String>,
}

/// How routers reach the tasks of routable types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SwarmEndpoints {
    /// `PORT` is published in host mode on a port per task; the endpoint is the task's node
    /// address (or [`SwarmConfig::endpoint_host`]) and that port. For routers on the hosts.
    #[default]
    HostPort,
    /// No host port; the endpoint is the task's address on [`SwarmConfig::network`] and
    /// `PORT`. For routers that are containers on that overlay network.
    Overlay,
}

impl Default for SwarmConfig {
    /// `/var/run/docker.sock`, owner `deis`, network `deis`, port 5000, 10 s stop grace, 2 s
    /// restart delay, health checks every 2 s with 3 retries after a 20 s start grace, 5 s
    /// update monitor, one task at a time, 1 s settle, 30 s slack, a poll every second,
    /// 100 ms drain, 20 min runs, Docker's init as PID 1.
    fn default() -> Self {
        SwarmConfig {
            socket: "/var/run/docker.sock".into(),
            owner: "deis".into(),
            name_prefix: String::new(),
            network: "deis".into(),
            container_port: 5000,
            endpoint_host: None,
            stop_grace: Duration::from_secs(10),
            restart_delay: Duration::from_secs(2),
            health_interval: Duration::from_secs(2),
            health_retries: 3,
            start_grace: Duration::from_secs(20),
            update_monitor: Duration::from_secs(5),
            update_parallelism: 1,
            settle: Duration::from_secs(1),
            rollout_slack: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            drain_delay: Duration::from_millis(100),
            run_timeout: Duration::from_secs(1200),
            run_output_limit: 1 << 20,
            init: true,
            endpoints: SwarmEndpoints::HostPort,
            slug_runner: None,
            placement: Vec::new(),
            slug_fetcher: None,
            registry: None,
        }
    }
}

/// The Swarm scheduler. Cheap to clone; every clone drives the same swarm.
#[derive(Debug, Clone)]
pub struct SwarmScheduler {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    app_locks: Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<()>>>>,
    poller: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Services outlive the scheduler by design (the swarm keeps them running); the
        // background tasks do not.
        self.poller.abort();
        for (_, follower) in lock(&self.shared.logs).drain() {
            follower.abort();
        }
    }
}

#[derive(Debug)]
struct Shared {
    docker: Docker,
    config: SwarmConfig,
    sink: Arc<dyn LogSink>,
    events: broadcast::Sender<InstanceEvent>,
    /// The last instances seen, by task id: what events are the difference to.
    last: tokio::sync::Mutex<HashMap<String, Instance>>,
    /// Log followers by task id (tasks on this engine's node).
    logs: Mutex<HashMap<String, JoinHandle<()>>>,
    network_ready: tokio::sync::Mutex<bool>,
    /// Whether the first read is done: output of tasks found by it is followed from now on
    /// (it was logged by an earlier life of the scheduler), of later tasks from their start.
    first_read_done: std::sync::atomic::AtomicBool,
    /// This engine's node in the swarm.
    node_id: String,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn emit(&self, instance: Instance, previous: Option<InstanceState>) {
        let _ = self.events.send(InstanceEvent { instance, previous });
    }

    /// Reads every managed task, reports what changed since the last read (gone tasks
    /// first, so a replacement's `up` follows its predecessor's `destroyed`), follows the
    /// output of new local tasks, and returns what it read.
    async fn refresh(&self) -> Result<Vec<tasks::Seen>> {
        let (_, _, seen) = tasks::read(&self.docker, &self.config, None).await?;
        let mut last = self.last.lock().await;
        let from_start = self.first_read_done.swap(true, Ordering::SeqCst);
        let now: HashMap<String, Instance> = seen
            .iter()
            .map(|s| (s.task_id.clone(), s.instance.clone()))
            .collect();
        for (task_id, old) in last.iter() {
            if !now.contains_key(task_id) {
                if let Some(follower) = lock(&self.logs).remove(task_id) {
                    follower.abort();
                }
                let mut gone = old.clone();
                gone.state = InstanceState::Destroyed;
                gone.endpoint = None;
                self.emit(gone, Some(old.state));
            }
        }
        for s in &seen {
            let previous = last.get(&s.task_id);
            if previous != Some(&s.instance) {
                self.emit(s.instance.clone(), previous.map(|p| p.state));
            }
            if s.node_id.as_deref() == Some(self.node_id.as_str()) {
                if let Some(container) = &s.container_id {
                    let mut logs = lock(&self.logs);
                    if !logs.contains_key(&s.task_id) {
                        logs.insert(
                            s.task_id.clone(),
                            docker_engine::follow_logs(
                                self.docker.clone(),
                                self.sink.clone(),
                                container.clone(),
                                s.instance.app.clone(),
                                s.instance.short_name(),
                                from_start,
                            ),
                        );
                    }
                }
            }
        }
        *last = now;
        Ok(seen)
    }

    /// The rollout deadline of `replicas` tasks of one type.
    fn deadline(&self, spec: &AppSpec, replicas: u32) -> Duration {
        let config = &self.config;
        let check_timeout = spec
            .healthcheck
            .as_ref()
            .map_or(3, |c| c.timeout_secs.max(1) + 1);
        let initial = spec
            .healthcheck
            .as_ref()
            .map_or(0, |c| c.initial_delay_secs);
        let per_task = config.start_grace
            + Duration::from_secs(initial)
            + (config.health_interval + Duration::from_secs(check_timeout))
                * (config.health_retries + 1)
            + config.restart_delay
            + config.update_monitor;
        let rounds = replicas.div_ceil(config.update_parallelism.max(1)).max(1);
        per_task * rounds + config.rollout_slack
    }
}

/// How one service's rollout stands.
#[derive(Debug)]
enum Progress {
    Done,
    Waiting(String),
    RollingBack(String),
    Failed(String),
}

/// What `apply` did to one service, so a failed `apply` can undo it.
#[derive(Debug, Clone)]
enum Change {
    /// The service of this name was created.
    Created(String),
    /// The service of this name was updated.
    Updated(String),
}

fn update_state(service: &Service) -> Option<(ServiceUpdateStatusStateEnum, String, String)> {
    let status = service.update_status.as_ref()?;
    Some((
        status.state?,
        status.started_at.clone().unwrap_or_default(),
        status.message.clone().unwrap_or_default(),
    ))
}

fn release_of(task: &Task) -> Option<u64> {
    task.spec
        .as_ref()?
        .container_spec
        .as_ref()?
        .labels
        .as_ref()?
        .get(docker_engine::LABEL_RELEASE)?
        .parse()
        .ok()
}

/// Where one service's rollout stands. `before` are the task ids that existed before this
/// apply and `started` the update status it had then: only what is newer counts.
fn progress(
    service: &Service,
    all_tasks: &[Task],
    seen: &[tasks::Seen],
    release: u64,
    replicas: u32,
    before: &HashSet<String>,
    started: &Option<String>,
) -> Progress {
    let Some(id) = service.id.as_deref() else {
        return Progress::Failed("the service has no id".into());
    };
    let ours = update_state(service).filter(|(_, at, _)| Some(at) != started.as_ref());
    match &ours {
        Some((ServiceUpdateStatusStateEnum::ROLLBACK_STARTED, _, message)) => {
            return Progress::RollingBack(message.clone())
        }
        Some((
            ServiceUpdateStatusStateEnum::ROLLBACK_COMPLETED
            | ServiceUpdateStatusStateEnum::ROLLBACK_PAUSED
            | ServiceUpdateStatusStateEnum::PAUSED,
            _,
            message,
        )) => return Progress::Failed(message.clone()),
        _ => {}
    }
    let tasks: Vec<&Task> = all_tasks
        .iter()
        .filter(|t| t.service_id.as_deref() == Some(id))
        .collect();
    for task in &tasks {
        let new = task.id.as_ref().is_some_and(|t| !before.contains(t));
        let err = task
            .status
            .as_ref()
            .and_then(|s| s.err.clone())
            .unwrap_or_default();
        let state = task.status.as_ref().and_then(|s| s.state);
        if new && (err.contains("no suitable node") || err.contains("insufficient resources")) {
            return Progress::Failed(format!("Swarm cannot place it: {err}"));
        }
        // Swarm's own rollouts fail on the first failed new task; scaling and creating
        // (which Swarm does not roll back) fail the same way here.
        if new
            && release_of(task) == Some(release)
            && matches!(state, Some(TaskState::FAILED | TaskState::REJECTED))
            && ours.is_none()
        {
            let exit = if err.is_empty() {
                "it exited".to_string()
            } else {
                err
            };
            return Progress::Failed(format!(
                "task {}.{} failed: {exit}",
                service
                    .spec
                    .as_ref()
                    .and_then(|s| s.name.clone())
                    .unwrap_or_default(),
                task.slot.unwrap_or(0)
            ));
        }
    }
    let live: Vec<&tasks::Seen> = seen.iter().filter(|s| s.service_id == id).collect();
    let ready = live
        .iter()
        .filter(|s| s.instance.release == release && s.instance.state == InstanceState::Up)
        .count();
    let updating = matches!(&ours, Some((ServiceUpdateStatusStateEnum::UPDATING, _, _)));
    if live.len() == replicas as usize && ready == replicas as usize && !updating {
        return Progress::Done;
    }
    let pending: Vec<String> = live
        .iter()
        .filter(|s| s.instance.release != release || s.instance.state != InstanceState::Up)
        .map(|s| {
            format!(
                "{} v{} is {}{}",
                s.instance.short_name(),
                s.instance.release,
                s.instance.state,
                s.error
                    .as_ref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            )
        })
        .collect();
    Progress::Waiting(if pending.is_empty() {
        format!(
            "{ready} of {replicas} tasks are up{}",
            if updating {
                ", the update is running"
            } else {
                ""
            }
        )
    } else {
        pending.join(", ")
    })
}

static RUNS: AtomicU64 = AtomicU64::new(0);

impl SwarmScheduler {
    /// Connects to the manager in `config` and logs task output through `tracing`.
    pub async fn connect(config: SwarmConfig) -> Result<Self> {
        Self::connect_with_sink(config, Arc::new(TracingLogSink)).await
    }

    /// Connects to the manager in `config`; task output goes to `sink`. Fails when the
    /// engine is not an active Swarm manager.
    pub async fn connect_with_sink(config: SwarmConfig, sink: Arc<dyn LogSink>) -> Result<Self> {
        let docker = Docker::connect_with_unix(&config.socket, 120, bollard::API_DEFAULT_VERSION)
            .map_err(|e| Error::Unavailable {
                backend: "swarm",
                message: format!("cannot reach the Docker Engine at {}: {e}", config.socket),
            })?
            .negotiate_version()
            .await
            .map_err(map_err)?;
        let info = docker.info().await.map_err(map_err)?;
        let swarm = info.swarm.unwrap_or_default();
        if swarm.local_node_state != Some(LocalNodeState::ACTIVE)
            || swarm.control_available != Some(true)
        {
            return Err(Error::Unavailable {
                backend: "swarm",
                message: format!(
                    "the Docker Engine at {} is not an active Swarm manager (state {}); run \
                     `docker swarm init` or point the scheduler at a manager",
                    config.socket,
                    swarm
                        .local_node_state
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "unknown".into())
                ),
            });
        }
        let (events, _) = broadcast::channel(4096);
        let shared = Arc::new(Shared {
            docker,
            config,
            sink,
            events,
            last: tokio::sync::Mutex::new(HashMap::new()),
            logs: Mutex::new(HashMap::new()),
            network_ready: tokio::sync::Mutex::new(false),
            first_read_done: std::sync::atomic::AtomicBool::new(false),
            node_id: swarm.node_id.unwrap_or_default(),
        });
        // The first read only records what is there: events are changes from now on.
        if let Err(e) = shared.refresh().await {
            tracing::warn!("reading the swarm's tasks: {e}");
        }
        let poller = tokio::spawn({
            let shared = shared.clone();
            async move {
                loop {
                    tokio::time::sleep(shared.config.poll_interval).await;
                    if let Err(e) = shared.refresh().await {
                        tracing::warn!("reading the swarm's tasks: {e}");
                    }
                }
            }
        });
        Ok(SwarmScheduler {
            inner: Arc::new(Inner {
                shared,
                app_locks: Mutex::new(BTreeMap::new()),
                poller,
            }),
        })
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    fn slug_images(&self) -> crate::docker::slug_image::SlugImages<'_> {
        let shared = self.shared();
        crate::docker::slug_image::SlugImages {
            docker: &shared.docker,
            runner: shared.config.slug_runner.as_deref(),
            owner: &shared.config.owner,
            name_prefix: &shared.config.name_prefix,
            backend: "swarm",
            fetcher: shared.config.slug_fetcher.as_deref(),
            registry: shared.config.registry.as_deref(),
        }
    }

    fn app_lock(&self, app: &str) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.inner.app_locks)
            .entry(app.to_string())
            .or_default()
            .clone()
    }

    /// The overlay network every task joins: created (attachable) when missing; an
    /// existing one must be an attachable overlay network.
    pub async fn ensure_network(&self) -> Result<()> {
        let shared = self.shared();
        let mut ready = shared.network_ready.lock().await;
        if *ready {
            return Ok(());
        }
        let name = &shared.config.network;
        match shared
            .docker
            .inspect_network(
                name,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await
        {
            Ok(network) => {
                if network.driver.as_deref() != Some("overlay") || network.attachable != Some(true)
                {
                    return Err(Error::precondition(format!(
                        "network {name} exists but is not an attachable overlay network \
                         (driver {}); remove it or configure another network",
                        network.driver.unwrap_or_default()
                    )));
                }
            }
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {
                shared
                    .docker
                    .create_network(NetworkCreateRequest {
                        name: name.clone(),
                        driver: Some("overlay".into()),
                        attachable: Some(true),
                        labels: Some(HashMap::from([(
                            LABEL_OWNER.to_string(),
                            shared.config.owner.clone(),
                        )])),
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| Error::Unavailable {
                        backend: "swarm",
                        message: format!(
                            "creating the overlay network {name} failed: {}",
                            map_err(e)
                        ),
                    })?;
            }
            Err(e) => return Err(map_err(e)),
        }
        *ready = true;
        Ok(())
    }

    async fn inspect(&self, name: &str) -> Result<Service> {
        self.shared()
            .docker
            .inspect_service(name, None::<InspectServiceOptions>)
            .await
            .map_err(map_err)
    }

    /// Waits until one service has rolled out `release` on `replicas` healthy tasks.
    async fn wait_rollout(
        &self,
        spec: &AppSpec,
        process_type: &str,
        name: &str,
        replicas: u32,
        before: &HashSet<String>,
        started: &Option<String>,
    ) -> std::result::Result<(), String> {
        let shared = self.shared();
        let deadline = shared.deadline(spec, replicas);
        let until = Instant::now() + deadline;
        let mut why = String::from("nothing was read yet");
        let mut rolling_back = None;
        // Types without a port have no HEALTHCHECK: they must keep running for `settle`.
        let mut settled = is_routable_type(process_type) || replicas == 0;
        loop {
            let service = self.inspect(name).await.map_err(|e| e.to_string())?;
            let seen = shared.refresh().await.map_err(|e| e.to_string())?;
            let all = tasks::tasks_of(&shared.docker, std::slice::from_ref(&service))
                .await
                .map_err(|e| e.to_string())?;
            match progress(
                &service,
                &all,
                &seen,
                spec.release,
                replicas,
                before,
                started,
            ) {
                Progress::Done if settled => return Ok(()),
                Progress::Done => {
                    // A worker must keep running a moment: wait, then look again.
                    tokio::time::sleep(shared.config.settle).await;
                    settled = true;
                    continue;
                }
                Progress::Waiting(now) => why = now,
                Progress::RollingBack(message) => rolling_back = Some(message),
                Progress::Failed(message) => {
                    return Err(match rolling_back {
                        Some(reason) if !reason.is_empty() => {
                            format!("{process_type}: {reason}; {message}")
                        }
                        _ => format!("{process_type}: {message}"),
                    })
                }
            }
            if Instant::now() >= until {
                return Err(match rolling_back {
                    Some(reason) => format!(
                        "{process_type}: Swarm's rollback did not finish within {deadline:?}: \
                         {reason}"
                    ),
                    None => {
                        format!("{process_type} did not become healthy within {deadline:?}: {why}")
                    }
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Asks Swarm to go back to the service's previous spec and waits (bounded) until it
    /// did, unless Swarm is already rolling back.
    async fn roll_back(&self, name: &str, spec: &AppSpec) {
        let shared = self.shared();
        let Ok(service) = self.inspect(name).await else {
            return;
        };
        let already = matches!(
            update_state(&service),
            Some((
                ServiceUpdateStatusStateEnum::ROLLBACK_STARTED
                    | ServiceUpdateStatusStateEnum::ROLLBACK_COMPLETED,
                _,
                _
            ))
        );
        if !already {
            let version = service.version.as_ref().and_then(|v| v.index).unwrap_or(0);
            let options = UpdateServiceOptionsBuilder::new()
                .version(i32::try_from(version).unwrap_or(i32::MAX))
                .build();
            let options = bollard::query_parameters::UpdateServiceOptions {
                rollback: Some("previous".into()),
                ..options
            };
            if let Err(e) = shared
                .docker
                .update_service(
                    name,
                    service.spec.clone().unwrap_or_default(),
                    options,
                    None,
                )
                .await
            {
                tracing::warn!("rolling back {name}: {}", map_err(e));
                return;
            }
        }
        let until = Instant::now() + shared.deadline(spec, 1);
        while Instant::now() < until {
            let _ = shared.refresh().await;
            match self
                .inspect(name)
                .await
                .ok()
                .as_ref()
                .and_then(update_state)
            {
                Some((
                    ServiceUpdateStatusStateEnum::ROLLBACK_COMPLETED
                    | ServiceUpdateStatusStateEnum::ROLLBACK_PAUSED,
                    _,
                    _,
                ))
                | None => break,
                _ => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
        let _ = shared.refresh().await;
    }

    /// Withdraws the tasks of services (`down`), waits the drain delay and removes the
    /// services.
    async fn retire(&self, services: &[Service]) {
        let shared = self.shared();
        if services.is_empty() {
            return;
        }
        let ids: HashSet<&str> = services.iter().filter_map(|s| s.id.as_deref()).collect();
        if let Ok(seen) = shared.refresh().await {
            for s in seen.iter().filter(|s| ids.contains(s.service_id.as_str())) {
                let mut down = s.instance.clone();
                down.state = InstanceState::Down;
                down.endpoint = None;
                shared.emit(down, Some(s.instance.state));
            }
        }
        if !shared.config.drain_delay.is_zero() {
            tokio::time::sleep(shared.config.drain_delay).await;
        }
        for service in services {
            if let Some(id) = &service.id {
                match shared.docker.delete_service(id).await {
                    Ok(())
                    | Err(bollard::errors::Error::DockerResponseServerError {
                        status_code: 404,
                        ..
                    }) => {}
                    Err(e) => tracing::warn!("removing service {id}: {}", map_err(e)),
                }
            }
        }
        let _ = shared.refresh().await;
    }

    async fn instances_of(&self, app: &str) -> Result<Vec<Instance>> {
        let (_, _, seen) =
            tasks::read(&self.shared().docker, &self.shared().config, Some(app)).await?;
        Ok(seen.into_iter().map(|s| s.instance).collect())
    }

    /// Creates or updates the service of one type and waits for its rollout.
    async fn converge(
        &self,
        spec: &AppSpec,
        image: &str,
        process_type: &str,
        replicas: u32,
        existing: Option<&Service>,
        before: &HashSet<String>,
    ) -> (Option<Change>, std::result::Result<(), String>) {
        let shared = self.shared();
        let config = &shared.config;
        let name = spec::service_name(config, &spec.app, process_type);
        let desired = match spec::service_spec(
            config,
            &spec::ServiceInput {
                spec,
                process_type,
                replicas,
                image,
            },
        ) {
            Ok(desired) => desired,
            Err(e) => return (None, Err(e.to_string())),
        };
        let (change, started) = match existing {
            None => match shared.docker.create_service(desired, None).await {
                Ok(_) => (Change::Created(name.clone()), None),
                Err(e) => return (None, Err(format!("{process_type}: {}", map_err(e)))),
            },
            Some(service) => {
                let version = service.version.as_ref().and_then(|v| v.index).unwrap_or(0);
                let started = update_state(service).map(|(_, at, _)| at);
                let options = UpdateServiceOptionsBuilder::new()
                    .version(i32::try_from(version).unwrap_or(i32::MAX))
                    .build();
                let id = service.id.clone().unwrap_or_else(|| name.clone());
                if let Err(e) = shared
                    .docker
                    .update_service(&id, desired, options, None)
                    .await
                {
                    return (None, Err(format!("{process_type}: {}", map_err(e))));
                }
                (Change::Updated(name.clone()), started)
            }
        };
        let result = self
            .wait_rollout(spec, process_type, &name, replicas, before, &started)
            .await;
        (Some(change), result)
    }

    /// Undoes what a failed `apply` did: created services go, updated ones go back.
    async fn undo(&self, spec: &AppSpec, changes: &[Change]) {
        let shared = self.shared();
        let undos = changes.iter().map(|change| async move {
            match change {
                Change::Created(name) => {
                    if let Ok(service) = self.inspect(name).await {
                        self.retire(std::slice::from_ref(&service)).await;
                    }
                }
                Change::Updated(name) => self.roll_back(name, spec).await,
            }
        });
        futures::future::join_all(undos).await;
        let _ = shared.refresh().await;
    }

    /// Stops the container of one task (on this engine's node), so Swarm starts a new task
    /// in its slot; waits until that one is up.
    async fn restart_task(&self, seen: &tasks::Seen) -> std::result::Result<(), String> {
        let shared = self.shared();
        let name = seen.instance.short_name();
        if seen.node_id.as_deref() != Some(shared.node_id.as_str()) {
            return Err(format!(
                "{name} runs on node {}, not on this engine's node; Swarm cannot restart a \
                 single task remotely (restart its whole type instead)",
                seen.node_id.clone().unwrap_or_default()
            ));
        }
        let Some(container) = &seen.container_id else {
            return Err(format!("{name} has no container yet"));
        };
        let mut down = seen.instance.clone();
        down.state = InstanceState::Down;
        down.endpoint = None;
        shared.emit(down, Some(seen.instance.state));
        let seconds = i32::try_from(shared.config.stop_grace.as_secs()).unwrap_or(i32::MAX);
        let options = StopContainerOptionsBuilder::new().t(seconds).build();
        match shared.docker.stop_container(container, Some(options)).await {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304 | 404,
                ..
            }) => {}
            Err(e) => return Err(format!("stopping {name}: {}", map_err(e))),
        }
        let until = Instant::now()
            + shared.config.restart_delay
            + shared.config.start_grace
            + shared.config.rollout_slack;
        loop {
            let now = shared.refresh().await.map_err(|e| e.to_string())?;
            let replaced = now.iter().any(|s| {
                s.service_id == seen.service_id
                    && s.instance.num == seen.instance.num
                    && s.task_id != seen.task_id
                    && s.instance.state == InstanceState::Up
            });
            if replaced {
                return Ok(());
            }
            if Instant::now() >= until {
                return Err(format!("{name} did not come back up after its restart"));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

#[async_trait::async_trait]
impl Scheduler for SwarmScheduler {
    fn backend(&self) -> &'static str {
        "swarm"
    }

    /// The engine behind the configured socket: images built there run here.
    fn image_engine(&self) -> Option<deis_core::scheduler::ImageEngine> {
        Some(deis_core::scheduler::ImageEngine::new(
            self.shared().config.socket.clone(),
        ))
    }

    async fn apply(&self, spec: &AppSpec) -> Result<Vec<Instance>> {
        check_spec(spec)?;
        spec::constraints(&spec.tags)?;
        let spec = &*self.slug_images().resolve(spec).await?;
        let app_lock = self.app_lock(&spec.app);
        let _guard = app_lock.lock().await;
        let shared = self.shared();
        let wants_processes = spec.formation.values().any(|n| *n > 0);
        let image = if wants_processes {
            let image = docker_engine::image_of(spec, "swarm")?;
            if let Err(e) = shared.docker.inspect_image(image).await {
                return Err(match map_err(e) {
                    Error::NotFound { .. } => Error::precondition(format!(
                        "image {image} is not on this Docker host (images are never pulled)"
                    )),
                    other => other,
                });
            }
            self.ensure_network().await?;
            Some(image)
        } else {
            None
        };
        let (services, all_tasks, _) =
            tasks::read(&shared.docker, &shared.config, Some(&spec.app)).await?;
        let by_type: BTreeMap<String, Service> = services
            .iter()
            .filter_map(|s| Some((tasks::service_label(s, LABEL_TYPE)?.to_string(), s.clone())))
            .collect();
        let before: HashSet<String> = all_tasks.iter().filter_map(|t| t.id.clone()).collect();
        let mut work = Vec::new();
        if let Some(image) = image {
            for (process_type, replicas) in spec.formation.iter().filter(|(_, n)| **n > 0) {
                let existing = by_type.get(process_type);
                let unchanged = existing.is_some_and(|s| {
                    tasks::service_label(s, docker_engine::LABEL_RELEASE)
                        == Some(spec.release.to_string().as_str())
                        && s.spec
                            .as_ref()
                            .and_then(|s| s.mode.as_ref())
                            .and_then(|m| m.replicated.as_ref())
                            .and_then(|r| r.replicas)
                            == Some(i64::from(*replicas))
                });
                if !unchanged {
                    work.push(self.converge(
                        spec,
                        image,
                        process_type,
                        *replicas,
                        existing,
                        &before,
                    ));
                }
            }
        }
        let results = futures::future::join_all(work).await;
        let changes: Vec<Change> = results.iter().filter_map(|(c, _)| c.clone()).collect();
        let failures: Vec<String> = results
            .iter()
            .filter_map(|(_, r)| r.as_ref().err().cloned())
            .collect();
        if !failures.is_empty() {
            // Swarm rolled the failed updates back (or is told to now); what else changed
            // goes back too, so the app stays on one release.
            self.undo(spec, &changes).await;
            let message = format!(
                "release v{} of {} was rolled back, the previous instances keep running: {}",
                spec.release,
                spec.app,
                failures.join("; ")
            );
            shared.sink.line(
                &spec.app,
                crate::log_sink::SCHEDULER_SOURCE,
                &format!("error: {message}"),
            );
            return Err(Error::precondition(message));
        }
        let retire: Vec<Service> = by_type
            .iter()
            .filter(|(t, _)| spec.formation.get(*t).copied().unwrap_or(0) == 0)
            .map(|(_, s)| s.clone())
            .collect();
        self.retire(&retire).await;
        shared.refresh().await?;
        self.instances_of(&spec.app).await
    }

    async fn instances(&self, app: &str) -> Result<Vec<Instance>> {
        if check_name("app", app).is_err() {
            return Ok(Vec::new());
        }
        self.instances_of(app).await
    }

    async fn restart(&self, app: &str, selector: &InstanceSelector) -> Result<Vec<Instance>> {
        if check_name("app", app).is_err() {
            return Ok(Vec::new());
        }
        let app_lock = self.app_lock(app);
        let _guard = app_lock.lock().await;
        let shared = self.shared();
        let (services, all_tasks, seen) =
            tasks::read(&shared.docker, &shared.config, Some(app)).await?;
        let selected: Vec<tasks::Seen> = seen
            .into_iter()
            .filter(|s| selector.matches(&s.instance))
            .collect();
        if selected.is_empty() {
            return Ok(Vec::new());
        }
        let mut problems = Vec::new();
        if selector.num.is_some() {
            for task in &selected {
                if let Err(why) = self.restart_task(task).await {
                    problems.push(why);
                }
            }
        } else {
            // A forced rolling update: every task replaced start-first, health-gated.
            let before: HashSet<String> = all_tasks.iter().filter_map(|t| t.id.clone()).collect();
            let types: HashSet<&str> = selected
                .iter()
                .map(|s| s.instance.process_type.as_str())
                .collect();
            let restarts = services
                .iter()
                .filter(|s| tasks::service_label(s, LABEL_TYPE).is_some_and(|t| types.contains(t)))
                .map(|service| {
                    let before = &before;
                    async move {
                        let process_type =
                            tasks::service_label(service, LABEL_TYPE).unwrap_or_default();
                        let name = service
                            .spec
                            .as_ref()
                            .and_then(|s| s.name.clone())
                            .unwrap_or_default();
                        let mut spec = service.spec.clone().unwrap_or_default();
                        let replicas = spec
                            .mode
                            .as_ref()
                            .and_then(|m| m.replicated.as_ref())
                            .and_then(|r| r.replicas)
                            .unwrap_or(0);
                        let release: u64 =
                            tasks::service_label(service, docker_engine::LABEL_RELEASE)
                                .and_then(|r| r.parse().ok())
                                .unwrap_or(0);
                        if let Some(template) = spec.task_template.as_mut() {
                            template.force_update = Some(template.force_update.unwrap_or(0) + 1);
                        }
                        let version = service.version.as_ref().and_then(|v| v.index).unwrap_or(0);
                        let started = update_state(service).map(|(_, at, _)| at);
                        let options = UpdateServiceOptionsBuilder::new()
                            .version(i32::try_from(version).unwrap_or(i32::MAX))
                            .build();
                        shared
                            .docker
                            .update_service(&name, spec, options, None)
                            .await
                            .map_err(|e| format!("restarting {process_type}: {}", map_err(e)))?;
                        self.wait_rollout(
                            &AppSpec::new(app, release),
                            process_type,
                            &name,
                            u32::try_from(replicas).unwrap_or(0),
                            before,
                            &started,
                        )
                        .await
                    }
                });
            for result in futures::future::join_all(restarts).await {
                if let Err(why) = result {
                    problems.push(why);
                }
            }
        }
        shared.refresh().await?;
        if !problems.is_empty() {
            // Best effort, as in Deis: the states tell what came of it.
            tracing::warn!(%app, "restart: {}", problems.join("; "));
        }
        let after = self.instances_of(app).await?;
        // While Swarm retires a replaced task, its slot can briefly show two live tasks; the
        // answer names each selected instance once, as it is now (up, newest release first).
        let mut restarted: Vec<Instance> = Vec::new();
        for instance in after.into_iter().filter(|i| {
            selected
                .iter()
                .any(|s| s.instance.process_type == i.process_type && s.instance.num == i.num)
        }) {
            let rank = |i: &Instance| (i.state == InstanceState::Up, i.release);
            match restarted
                .iter_mut()
                .find(|r| r.process_type == instance.process_type && r.num == instance.num)
            {
                Some(kept) if rank(&instance) > rank(kept) => *kept = instance,
                Some(_) => {}
                None => restarted.push(instance),
            }
        }
        Ok(restarted)
    }

    async fn run(&self, request: &RunRequest) -> Result<RunOutcome> {
        check_name("app", &request.spec.app)?;
        let spec = &*self.slug_images().resolve(&request.spec).await?;
        let image = docker_engine::image_of(spec, "swarm")?.to_string();
        self.ensure_network().await?;
        let shared = self.shared();
        let config = &shared.config;
        let num = RUNS.fetch_add(1, Ordering::Relaxed) + 1;
        let name = format!(
            "{}{}_v{}.{RUN_TYPE}.{}-{num}",
            config.name_prefix,
            spec.app,
            spec.release,
            std::process::id()
        );
        let mut labels = spec::labels(config, &spec.app, RUN_TYPE, spec.release);
        labels.insert(docker_engine::LABEL_NUM.to_string(), num.to_string());
        let body = ContainerCreateBody {
            image: Some(image),
            cmd: Some(vec![
                "/bin/sh".into(),
                "-c".into(),
                format!("exec 2>&1\n{}", request.command),
            ]),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(labels),
            host_config: Some(HostConfig {
                init: config.init.then_some(true),
                network_mode: Some(config.network.clone()),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    config.network.clone(),
                    EndpointSettings::default(),
                )])),
            }),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        shared
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(|e| match map_err(e) {
                Error::NotFound { .. } => Error::precondition(format!(
                    "image {} is not on this Docker host (images are never pulled)",
                    docker_engine::image_of(spec, "swarm").unwrap_or_default()
                )),
                other => other,
            })?;
        let outcome = tokio::time::timeout(
            config.run_timeout,
            crate::docker::run::run_to_end(&shared.docker, &name, config.run_output_limit),
        )
        .await;
        if let Err(e) = docker_engine::remove(&shared.docker, &name).await {
            tracing::warn!("removing run container {name}: {e}");
        }
        match outcome {
            Ok(result) => result,
            Err(_) => Err(Error::Unavailable {
                backend: "swarm",
                message: format!(
                    "the one-off run did not finish within {:?} and was killed",
                    config.run_timeout
                ),
            }),
        }
    }

    async fn remove(&self, app: &str) -> Result<()> {
        if check_name("app", app).is_err() {
            return Ok(());
        }
        let app_lock = self.app_lock(app);
        let _guard = app_lock.lock().await;
        let shared = self.shared();
        let services = tasks::services(&shared.docker, &shared.config, Some(app)).await?;
        self.retire(&services).await;
        // One-off run containers left by an interrupted run.
        let filters = HashMap::from([(
            "label".to_string(),
            vec![
                format!("{LABEL_OWNER}={}", shared.config.owner),
                format!("{LABEL_APP}={app}"),
                format!("{LABEL_TYPE}={RUN_TYPE}"),
            ],
        )]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        for container in shared
            .docker
            .list_containers(Some(options))
            .await
            .map_err(map_err)?
        {
            if let Some(id) = container.id {
                docker_engine::remove(&shared.docker, &id).await?;
            }
        }
        Ok(())
    }

    fn events(&self) -> BoxStream<'static, InstanceEvent> {
        crate::events::stream(&self.shared().events)
    }
}
