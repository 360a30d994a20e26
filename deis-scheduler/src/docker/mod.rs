//! The Docker scheduler (feature `docker`): every instance is a container on one Docker
//! Engine, reached through its unix socket with bollard.
//!
//! - Containers are named `<app>_v<N>.<type>.<num>` as Deis named them and labelled
//!   `io.deis.{owner,app,release,type,num}`; the engine holds the state, so a restarted
//!   platform finds its containers again and `apply` of the current release changes nothing.
//! - Routable types (`web`, `cmd`) get `PORT` (5000 by default; the lowest TCP port the
//!   image `EXPOSE`s when it has one, as Deis v1 routed Dockerfile apps) published on
//!   127.0.0.1 at a port the engine picks, which is the instance's endpoint.
//! - A type with a Procfile entry runs `/bin/sh -c '<command>'`; one without runs the image's
//!   own command (as Deis did for `cmd`).
//! - Memory and CPU shares are container limits; the restart policy is `on-failure`.
//! - Rollouts are health-gated exactly as in the local scheduler: new containers must become
//!   healthy (published port accepts connections, or `GET <HEALTHCHECK_URL>` answers 200;
//!   other types: still running after `settle`) before old and surplus ones are withdrawn
//!   (`down`), stopped (SIGTERM, SIGKILL after the grace) and removed. A failed rollout
//!   removes the new containers and leaves the old ones running.
//! - A monitor follows the engine's events: a container that dies shows `crashed` at once
//!   (the publisher withdraws it); when the restart policy brings it back it is `up` again
//!   once healthy.
//! - Output of every container goes to the [`LogSink`] tagged `<app>[<type>.<num>]`.
//! - Images are never pulled: an image missing on the engine is a clear error. Slugs run
//!   when [`DockerConfig::slug_runner`] names a stack image: the slug is added to it as
//!   `/app` (module [`slug_image`]), once per build.
//! - One engine is one host: placement tags (`AppSpec::tags`) are ignored.

pub(crate) mod engine;
pub(crate) mod run;
mod shared;
pub mod slug_image;

use crate::log_sink::{LogSink, TracingLogSink};
use crate::plan::{check_name, check_spec, plan, Slot};
use bollard::query_parameters::RestartContainerOptionsBuilder;
use bollard::Docker;
use deis_core::error::{Error, Result};
use deis_core::model::{is_routable_type, Instance, InstanceState};
use deis_core::scheduler::{
    AppSpec, InstanceEvent, InstanceSelector, RunOutcome, RunRequest, Scheduler,
};
use engine::{map_err, Listed, NewContainer};
use futures::stream::BoxStream;
use shared::{lock, monitor, Shared, Target};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

/// The process type of one-off run containers.
pub(crate) const RUN_TYPE: &str = "run";

/// Settings of the Docker scheduler.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    /// The engine's unix socket.
    pub socket: String,
    /// The value of the `io.deis.owner` label: this scheduler only sees and touches
    /// containers carrying it.
    pub owner: String,
    /// Time between SIGTERM and SIGKILL when stopping a container.
    pub stop_grace: Duration,
    /// Time between withdrawing a container (`down`) and stopping it.
    pub drain_delay: Duration,
    /// How long a container without a port must keep running to count as healthy.
    pub settle: Duration,
    /// Added to a health check's initial delay and timeout to give a new container's
    /// deadline; without a health check the deadline is this (plus `settle` for workers).
    pub health_grace: Duration,
    /// How long a one-off run may take.
    pub run_timeout: Duration,
    /// The most output a one-off run returns.
    pub run_output_limit: usize,
    /// Put before every container name (`<prefix><app>_v<N>.<type>.<num>`), so several
    /// schedulers can share one engine; empty by default, as Deis named containers.
    pub name_prefix: String,
    /// The port routable containers listen on (`PORT`).
    pub container_port: u16,
    /// The host address container ports are published on.
    pub bind_ip: String,
    /// Run Docker's init as PID 1, so SIGTERM reaches the app (a shell or server as PID 1
    /// ignores it, and every stop would wait the whole grace).
    pub init: bool,
    /// The stack image slugs are run on (`/bin/sh` and what the apps need): a slug release
    /// runs as this image with the slug unpacked in `/app`. `None` refuses slugs.
    pub slug_runner: Option<String>,
    /// Reads slugs stored elsewhere (the builder's blob store); other locations are paths
    /// on this host.
    pub slug_fetcher: Option<Arc<dyn crate::local::SlugFetcher>>,
}

impl Default for DockerConfig {
    /// `/var/run/docker.sock`, owner `deis`, 10 s stop grace, 100 ms drain, 1 s settle, 10 s
    /// health grace (images start slower than processes), 20 min runs, port 5000 on
    /// 127.0.0.1, Docker's init as PID 1.
    fn default() -> Self {
        DockerConfig {
            socket: "/var/run/docker.sock".into(),
            owner: "deis".into(),
            stop_grace: Duration::from_secs(10),
            drain_delay: Duration::from_millis(100),
            settle: Duration::from_secs(1),
            health_grace: Duration::from_secs(20),
            run_timeout: Duration::from_secs(1200),
            run_output_limit: 1 << 20,
            name_prefix: String::new(),
            container_port: 5000,
            bind_ip: "127.0.0.1".into(),
            init: true,
            slug_runner: None,
            slug_fetcher: None,
        }
    }
}

/// The Docker scheduler. Cheap to clone; every clone drives the same engine.
#[derive(Debug, Clone)]
pub struct DockerScheduler {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    app_locks: Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<()>>>>,
    monitor: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Containers outlive the scheduler by design (the engine keeps them running); the
        // background tasks do not.
        self.monitor.abort();
        for (_, follower) in lock(&self.shared.logs).drain() {
            follower.abort();
        }
    }
}

impl DockerScheduler {
    /// Connects to the engine in `config` and logs container output through `tracing`.
    pub async fn connect(config: DockerConfig) -> Result<Self> {
        Self::connect_with_sink(config, Arc::new(TracingLogSink)).await
    }

    /// Connects to the engine in `config`; container output goes to `sink`.
    pub async fn connect_with_sink(config: DockerConfig, sink: Arc<dyn LogSink>) -> Result<Self> {
        let docker = Docker::connect_with_unix(&config.socket, 120, bollard::API_DEFAULT_VERSION)
            .map_err(|e| Error::Unavailable {
                backend: "docker",
                message: format!("cannot reach the Docker Engine at {}: {e}", config.socket),
            })?
            .negotiate_version()
            .await
            .map_err(map_err)?;
        docker.ping().await.map_err(map_err)?;
        let (events, _) = broadcast::channel(4096);
        let shared = Arc::new(Shared {
            docker,
            config,
            sink,
            events,
            overrides: Mutex::new(HashMap::new()),
            logs: Mutex::new(HashMap::new()),
        });
        let monitor = tokio::spawn(monitor(shared.clone()));
        Ok(DockerScheduler {
            inner: Arc::new(Inner {
                shared,
                app_locks: Mutex::new(BTreeMap::new()),
                monitor,
            }),
        })
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    fn slug_images(&self) -> slug_image::SlugImages<'_> {
        let shared = self.shared();
        slug_image::SlugImages {
            docker: &shared.docker,
            runner: shared.config.slug_runner.as_deref(),
            owner: &shared.config.owner,
            name_prefix: &shared.config.name_prefix,
            backend: "docker",
            fetcher: shared.config.slug_fetcher.as_deref(),
            registry: None,
        }
    }

    fn app_lock(&self, app: &str) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.inner.app_locks)
            .entry(app.to_string())
            .or_default()
            .clone()
    }

    async fn listed(&self, app: &str) -> Result<Vec<Listed>> {
        engine::list(&self.shared().docker, &self.shared().config, Some(app)).await
    }

    /// Creates and starts one container, follows its logs and reports it `starting`.
    async fn start(&self, spec: &AppSpec, image: &str, target: &Target) -> Result<()> {
        let shared = self.shared();
        engine::create(
            &shared.docker,
            &shared.config,
            NewContainer {
                name: &target.name,
                app: &spec.app,
                process_type: &target.process_type,
                num: target.num,
                release: spec.release,
                image,
                command: spec.processes.get(&target.process_type).cloned(),
                env: &spec.env,
                limits: &spec
                    .limits
                    .get(&target.process_type)
                    .cloned()
                    .unwrap_or_default(),
                healthcheck: spec.healthcheck.as_ref(),
                publish: is_routable_type(&target.process_type),
                restart: true,
            },
        )
        .await?;
        shared.set_override(&target.name, InstanceState::Starting);
        shared
            .docker
            .start_container(&target.name, None)
            .await
            .map_err(map_err)?;
        shared.follow(target, true);
        shared.emit(target, InstanceState::Starting, None, None);
        Ok(())
    }

    /// Withdraws, stops and removes containers, all at once.
    async fn retire(&self, targets: &[(Target, InstanceState)]) {
        let shared = self.shared();
        let stops = targets.iter().map(|(target, state)| async move {
            shared.set_override(&target.name, InstanceState::Down);
            if target.process_type != RUN_TYPE {
                shared.emit(target, InstanceState::Down, Some(*state), None);
            }
            if !shared.config.drain_delay.is_zero() {
                tokio::time::sleep(shared.config.drain_delay).await;
            }
            if let Err(e) =
                engine::stop(&shared.docker, &target.name, shared.config.stop_grace).await
            {
                tracing::warn!("stopping {}: {e}", target.name);
            }
            if let Err(e) = engine::remove(&shared.docker, &target.name).await {
                tracing::warn!("removing {}: {e}", target.name);
            }
            if let Some(follower) = lock(&shared.logs).remove(&target.name) {
                follower.abort();
            }
            lock(&shared.overrides).remove(&target.name);
            if target.process_type != RUN_TYPE {
                shared.emit(
                    target,
                    InstanceState::Destroyed,
                    Some(InstanceState::Down),
                    None,
                );
            }
        });
        futures::future::join_all(stops).await;
    }

    async fn instances_of(&self, app: &str) -> Result<Vec<Instance>> {
        let shared = self.shared();
        let overrides = lock(&shared.overrides).clone();
        let mut instances: Vec<Instance> = self
            .listed(app)
            .await?
            .into_iter()
            .filter(|l| l.process_type != RUN_TYPE)
            .map(|l| Instance {
                app: app.to_string(),
                process_type: l.process_type.clone(),
                num: l.num,
                release: l.release,
                state: overrides.get(&l.name).copied().unwrap_or(l.state),
                endpoint: l
                    .host_port
                    .map(|p| format!("{}:{p}", shared.config.bind_ip)),
            })
            .collect();
        instances.sort_by(|a, b| {
            (&a.process_type, a.num, a.release).cmp(&(&b.process_type, b.num, b.release))
        });
        Ok(instances)
    }
}

#[async_trait::async_trait]
impl Scheduler for DockerScheduler {
    fn backend(&self) -> &'static str {
        "docker"
    }

    /// The engine behind the configured socket: images built there run here.
    fn image_engine(&self) -> Option<deis_core::scheduler::ImageEngine> {
        Some(deis_core::scheduler::ImageEngine::new(
            self.shared().config.socket.clone(),
        ))
    }

    async fn apply(&self, spec: &AppSpec) -> Result<Vec<Instance>> {
        check_spec(spec)?;
        let spec = &*self.slug_images().resolve(spec).await?;
        let app_lock = self.app_lock(&spec.app);
        let _guard = app_lock.lock().await;
        let shared = self.shared();
        let wants_processes = spec.formation.values().any(|n| *n > 0);
        let image = if wants_processes {
            let image = engine::image_of(spec, "docker")?;
            if let Err(e) = shared.docker.inspect_image(image).await {
                return Err(match map_err(e) {
                    Error::NotFound { .. } => Error::precondition(format!(
                        "image {image} is not on this Docker host (images are never pulled)"
                    )),
                    other => other,
                });
            }
            Some(image)
        } else {
            None
        };
        let current: Vec<Listed> = self
            .listed(&spec.app)
            .await?
            .into_iter()
            .filter(|l| l.process_type != RUN_TYPE)
            .collect();
        let slots: Vec<Slot> = current
            .iter()
            .map(|l| Slot {
                process_type: l.process_type.clone(),
                num: l.num,
                release: l.release,
            })
            .collect();
        let plan = plan(spec, &slots);
        let mut started: Vec<(Target, InstanceState)> = Vec::new();
        if let Some(image) = image {
            for (process_type, num) in &plan.start {
                let target = Target {
                    name: format!(
                        "{}{}_v{}.{process_type}.{num}",
                        shared.config.name_prefix, spec.app, spec.release
                    ),
                    app: spec.app.clone(),
                    process_type: process_type.clone(),
                    num: *num,
                    release: spec.release,
                    healthcheck: spec.healthcheck.clone(),
                };
                let result = self.start(spec, image, &target).await;
                started.push((target, InstanceState::Starting));
                if let Err(e) = result {
                    self.retire(&started).await;
                    return Err(e);
                }
            }
        }
        let waits = started
            .iter()
            .map(|(target, _)| shared.wait_healthy(target));
        let results = futures::future::join_all(waits).await;
        let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        if !failures.is_empty() {
            let message = format!(
                "release v{} of {} was rolled back, the previous instances keep running: {}",
                spec.release,
                spec.app,
                failures
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            );
            self.retire(&started).await;
            shared.sink.line(
                &spec.app,
                crate::log_sink::SCHEDULER_SOURCE,
                &format!("error: {message}"),
            );
            return Err(Error::precondition(message));
        }
        for ((target, _), port) in started.iter().zip(results) {
            lock(&shared.overrides).remove(&target.name);
            shared.emit(
                target,
                InstanceState::Up,
                Some(InstanceState::Starting),
                port.ok().flatten(),
            );
        }
        let retire: Vec<(Target, InstanceState)> = plan
            .retire
            .iter()
            .map(|i| (Target::of(&spec.app, &current[*i]), current[*i].state))
            .collect();
        self.retire(&retire).await;
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
        let selected: Vec<(Target, InstanceState)> = self
            .listed(app)
            .await?
            .iter()
            .filter(|l| l.process_type != RUN_TYPE)
            .map(|l| (Target::of(app, l), l.state))
            .filter(|(t, state)| {
                selector.matches(&Instance {
                    app: app.to_string(),
                    process_type: t.process_type.clone(),
                    num: t.num,
                    release: t.release,
                    state: *state,
                    endpoint: None,
                })
            })
            .collect();
        let restarts = selected.iter().map(|(target, state)| async move {
            shared.set_override(&target.name, InstanceState::Down);
            shared.emit(target, InstanceState::Down, Some(*state), None);
            let seconds = i32::try_from(shared.config.stop_grace.as_secs()).unwrap_or(i32::MAX);
            let options = RestartContainerOptionsBuilder::new().t(seconds).build();
            let restarted = shared
                .docker
                .restart_container(&target.name, Some(options))
                .await;
            shared.set_override(&target.name, InstanceState::Starting);
            shared.emit(
                target,
                InstanceState::Starting,
                Some(InstanceState::Down),
                None,
            );
            shared.follow(target, false);
            let healthy = match restarted {
                Ok(()) => shared.wait_healthy(target).await,
                Err(e) => Err(map_err(e).to_string()),
            };
            lock(&shared.overrides).remove(&target.name);
            match healthy {
                Ok(port) => shared.emit(
                    target,
                    InstanceState::Up,
                    Some(InstanceState::Starting),
                    port,
                ),
                // Best effort, as in Deis: the state tells what came of it.
                Err(why) => tracing::warn!(%app, "restart: {why}"),
            }
        });
        futures::future::join_all(restarts).await;
        let after = self.instances_of(app).await?;
        Ok(after
            .into_iter()
            .filter(|i| {
                selected
                    .iter()
                    .any(|(t, _)| t.process_type == i.process_type && t.num == i.num)
            })
            .collect())
    }

    async fn run(&self, request: &RunRequest) -> Result<RunOutcome> {
        check_name("app", &request.spec.app)?;
        let spec = &*self.slug_images().resolve(&request.spec).await?;
        let image = engine::image_of(spec, "docker")?.to_string();
        let shared = self.shared();
        let target = {
            let app_lock = self.app_lock(&spec.app);
            let _guard = app_lock.lock().await;
            let next = self
                .listed(&spec.app)
                .await?
                .iter()
                .filter(|l| l.process_type == RUN_TYPE)
                .map(|l| l.num)
                .max()
                .unwrap_or(0)
                + 1;
            let target = Target {
                name: format!(
                    "{}{}_v{}.{RUN_TYPE}.{next}",
                    shared.config.name_prefix, spec.app, spec.release
                ),
                app: spec.app.clone(),
                process_type: RUN_TYPE.into(),
                num: next,
                release: spec.release,
                healthcheck: None,
            };
            engine::create(
                &shared.docker,
                &shared.config,
                NewContainer {
                    name: &target.name,
                    app: &spec.app,
                    process_type: RUN_TYPE,
                    num: next,
                    release: spec.release,
                    image: &image,
                    command: Some(format!("exec 2>&1\n{}", request.command)),
                    env: &spec.env,
                    limits: &Default::default(),
                    healthcheck: None,
                    publish: false,
                    restart: false,
                },
            )
            .await?;
            target
        };
        let outcome = tokio::time::timeout(
            shared.config.run_timeout,
            run::run_to_end(&shared.docker, &target.name, shared.config.run_output_limit),
        )
        .await;
        if let Err(e) = engine::remove(&shared.docker, &target.name).await {
            tracing::warn!("removing run container {}: {e}", target.name);
        }
        match outcome {
            Ok(result) => result,
            Err(_) => Err(Error::Unavailable {
                backend: "docker",
                message: format!(
                    "the one-off run did not finish within {:?} and was killed",
                    shared.config.run_timeout
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
        let all: Vec<(Target, InstanceState)> = self
            .listed(app)
            .await?
            .iter()
            .map(|l| (Target::of(app, l), l.state))
            .collect();
        self.retire(&all).await;
        Ok(())
    }

    fn events(&self) -> BoxStream<'static, InstanceEvent> {
        crate::events::stream(&self.shared().events)
    }
}
