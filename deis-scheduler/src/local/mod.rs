//! The local scheduler, the embedded default: every instance is a supervised OS process on
//! this host, started in the release's unpacked slug directory.
//!
//! - Each instance runs `sh -c '<Procfile command>'` in its own process group with a clean
//!   environment: `PATH`, `HOME`, the release's env (`DEIS_APP`, `DEIS_RELEASE`, config) and,
//!   for routable types (`web`, `cmd`), `PORT`, a free port on 127.0.0.1 that is also its
//!   endpoint. Other types get no port.
//! - Output goes line by line to a [`LogSink`] tagged `<app>[<type>.<num>]`.
//! - A crashed instance shows as `crashed` and is restarted: at once the first time, then
//!   after a delay doubling up to a cap; the count resets once a run lasted `stable_after`.
//! - Stop is graceful: `down` is emitted first (the publisher withdraws it), then after the
//!   drain delay SIGTERM goes to the group, then SIGKILL after the grace period.
//! - Health: a port that accepts connections, or `GET <HEALTHCHECK_URL>` answering 200; a
//!   type without a port is healthy once it stayed alive for `settle` (1 s by default).
//! - Rollouts are health-gated: every replacement and addition starts and must become
//!   healthy before any old or surplus instance stops. So each old instance stops only after
//!   its replacement is healthy, and when any new instance misses its deadline, all new ones
//!   are stopped, the old ones never stopped, and `apply` fails naming the instance and why.
//! - Memory and CPU limits go through cgroup v2 when the host allows it; otherwise every
//!   instance with limits is reported as not enforced (log sink warning,
//!   [`LocalScheduler::limits_enforced`], [`LocalScheduler::limit_enforcement`]).
//! - Placement tags (`AppSpec::tags`) mean nothing on one host and are ignored.
//! - Processes die with the scheduler: [`LocalScheduler::shutdown`] stops everything
//!   gracefully, and dropping the last handle kills every process group.

mod artifact;
mod cgroup;
mod process;
mod run;
mod supervisor;

pub use artifact::SlugFetcher;
pub use cgroup::LimitEnforcement;

use crate::log_sink::{LogSink, TracingLogSink};
use crate::plan::{check_name, check_spec as check_spec_common, plan, Slot};
use cgroup::Cgroups;
use deis_core::error::{Error, Result};
use deis_core::model::{is_routable_type, Instance, InstanceState};
use deis_core::scheduler::{
    AppSpec, InstanceEvent, InstanceSelector, RunOutcome, RunRequest, Scheduler,
};
use futures::stream::BoxStream;
use nix::sys::signal::Signal;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use supervisor::{Command, InstanceCtx, InstanceSpec};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;

/// Settings of the local scheduler.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// Where unpacked slugs go (`<data_dir>/slugs/<app>/v<N>`).
    pub data_dir: PathBuf,
    /// Time between SIGTERM and SIGKILL when stopping an instance.
    pub stop_grace: Duration,
    /// Time between withdrawing an instance (`down`) and sending it SIGTERM.
    pub drain_delay: Duration,
    /// How long an instance without a port must stay alive to count as healthy.
    pub settle: Duration,
    /// Added to a health check's initial delay and timeout to give a new instance's
    /// deadline; without a health check the deadline is `settle` plus this.
    pub health_grace: Duration,
    /// The longest pause between two health probes.
    pub health_poll_max: Duration,
    /// The delay before the second restart after consecutive crashes (the first is at once).
    pub backoff_initial: Duration,
    /// The longest restart delay.
    pub backoff_max: Duration,
    /// A run that lasted this long resets the crash count.
    pub stable_after: Duration,
    /// How long a one-off run may take.
    pub run_timeout: Duration,
    /// The most output a one-off run returns; the rest is cut.
    pub run_output_limit: usize,
    /// Where the cgroup v2 hierarchy is mounted.
    pub cgroup_root: PathBuf,
    /// Fetches slugs that are not host paths (e.g. from a blob store); `None` runs only
    /// slugs given as host paths.
    pub slug_fetcher: Option<Arc<dyn SlugFetcher>>,
}

impl LocalConfig {
    /// Defaults with `data_dir` as the data directory: 10 s stop grace (as Deis's
    /// `TimeoutStopSec`), 100 ms drain, 1 s settle, 10 s health grace, restarts backing off
    /// from 500 ms to 30 s, reset after 10 s of uptime, 20 min one-off runs (as Deis).
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        LocalConfig {
            data_dir: data_dir.into(),
            stop_grace: Duration::from_secs(10),
            drain_delay: Duration::from_millis(100),
            settle: Duration::from_secs(1),
            health_grace: Duration::from_secs(10),
            health_poll_max: Duration::from_millis(250),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            stable_after: Duration::from_secs(10),
            run_timeout: Duration::from_secs(1200),
            run_output_limit: 1 << 20,
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
            slug_fetcher: None,
        }
    }
}

/// The local process scheduler. Cheap to clone; every clone drives the same processes.
#[derive(Debug, Clone)]
pub struct LocalScheduler {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Arc<LocalConfig>,
    sink: Arc<dyn LogSink>,
    events: broadcast::Sender<InstanceEvent>,
    cgroups: Arc<Cgroups>,
    /// Live instances per app; during a rollout an app holds old and new ones.
    apps: Mutex<BTreeMap<String, Vec<Arc<Handle>>>>,
    /// One lock per app so applies, restarts and removals of one app never interleave.
    app_locks: Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Ports handed to live instances.
    ports: Mutex<BTreeSet<u16>>,
    /// Process groups of one-off runs in progress.
    runs: Mutex<BTreeSet<u32>>,
}

#[derive(Debug)]
struct Handle {
    ctx: Arc<InstanceCtx>,
    commands: mpsc::UnboundedSender<Command>,
    task: JoinHandle<()>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl LocalScheduler {
    /// A scheduler with `config` whose instances log through `tracing`.
    pub fn new(config: LocalConfig) -> Self {
        Self::with_sink(config, Arc::new(TracingLogSink))
    }

    /// A scheduler with `config` whose instances log into `sink`.
    pub fn with_sink(config: LocalConfig, sink: Arc<dyn LogSink>) -> Self {
        let (events, _) = broadcast::channel(4096);
        let cgroups = Cgroups::detect(&config.cgroup_root);
        if !cgroups.available() {
            tracing::warn!(
                "memory and cpu limits will not be enforced: {}",
                cgroups.reason()
            );
        }
        LocalScheduler {
            inner: Arc::new(Inner {
                config: Arc::new(config),
                sink,
                events,
                cgroups: Arc::new(cgroups),
                apps: Mutex::new(BTreeMap::new()),
                app_locks: Mutex::new(BTreeMap::new()),
                ports: Mutex::new(BTreeSet::new()),
                runs: Mutex::new(BTreeSet::new()),
            }),
        }
    }

    /// Whether this host enforces memory and CPU limits (a writable cgroup v2 hierarchy
    /// with the `memory` and `cpu` controllers).
    pub fn limits_enforced(&self) -> bool {
        self.inner.cgroups.available()
    }

    /// Why limits are not enforced on this host (empty when they are).
    pub fn limits_reason(&self) -> &str {
        self.inner.cgroups.reason()
    }

    /// Whether the limits of each of `app`'s live instances are enforced, by job name.
    pub fn limit_enforcement(&self, app: &str) -> BTreeMap<String, LimitEnforcement> {
        self.handles(app)
            .iter()
            .map(|h| {
                (
                    h.ctx.instance().job_name(),
                    h.ctx.status.borrow().limits.clone(),
                )
            })
            .collect()
    }

    /// The pid of the process (its group's leader) of one live instance, if it is running.
    pub fn pid(&self, app: &str, process_type: &str, num: u32) -> Option<u32> {
        self.handles(app)
            .iter()
            .rev()
            .find(|h| h.ctx.spec.process_type == process_type && h.ctx.spec.num == num)
            .and_then(|h| h.ctx.status.borrow().pid)
    }

    /// How many times an instance was restarted after crashing.
    pub fn restarts(&self, app: &str, process_type: &str, num: u32) -> Option<u32> {
        self.handles(app)
            .iter()
            .rev()
            .find(|h| h.ctx.spec.process_type == process_type && h.ctx.spec.num == num)
            .map(|h| h.ctx.status.borrow().restarts)
    }

    /// Stops every instance of every app gracefully and kills one-off runs; the scheduler
    /// stays usable afterwards.
    pub async fn shutdown(&self) {
        let apps: Vec<String> = lock(&self.inner.apps).keys().cloned().collect();
        let removals = apps.iter().map(|app| self.remove(app));
        for result in futures::future::join_all(removals).await {
            if let Err(e) = result {
                tracing::warn!("shutting down: {e}");
            }
        }
        for pgid in std::mem::take(&mut *lock(&self.inner.runs)) {
            process::signal_group(pgid, Signal::SIGKILL);
        }
    }

    fn handles(&self, app: &str) -> Vec<Arc<Handle>> {
        lock(&self.inner.apps).get(app).cloned().unwrap_or_default()
    }

    fn app_lock(&self, app: &str) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.inner.app_locks)
            .entry(app.to_string())
            .or_default()
            .clone()
    }

    fn allocate_port(&self) -> Result<u16> {
        let mut ports = lock(&self.inner.ports);
        for _ in 0..64 {
            let port = process::free_port()
                .map_err(|e| Error::backend("local", format!("finding a free port: {e}")))?;
            if ports.insert(port) {
                return Ok(port);
            }
        }
        Err(Error::Unavailable {
            backend: "local",
            message: "no free port on 127.0.0.1".into(),
        })
    }

    /// Starts one instance's supervisor and records it.
    fn start(&self, spec: InstanceSpec) -> Arc<Handle> {
        let app = spec.app.clone();
        let ctx = InstanceCtx::new(
            spec,
            self.inner.config.clone(),
            self.inner.sink.clone(),
            self.inner.events.clone(),
            self.inner.cgroups.clone(),
        );
        let (commands, receiver) = mpsc::unbounded_channel();
        let task = tokio::spawn(supervisor::supervise(ctx.clone(), receiver));
        let handle = Arc::new(Handle {
            ctx,
            commands,
            task,
        });
        lock(&self.inner.apps)
            .entry(app)
            .or_default()
            .push(handle.clone());
        handle
    }

    /// Stops instances gracefully (all at once) and forgets them.
    async fn stop_all(&self, handles: &[Arc<Handle>]) {
        let stops = handles.iter().map(|handle| async move {
            let (done, acked) = oneshot::channel();
            if handle.commands.send(Command::Stop(done)).is_ok() {
                let _ = acked.await;
            }
        });
        futures::future::join_all(stops).await;
        self.forget(handles);
    }

    /// Drops instances from the table and frees their ports.
    fn forget(&self, handles: &[Arc<Handle>]) {
        let mut apps = lock(&self.inner.apps);
        let mut ports = lock(&self.inner.ports);
        for handle in handles {
            if let Some(port) = handle.ctx.spec.port {
                ports.remove(&port);
            }
            if let Some(list) = apps.get_mut(&handle.ctx.spec.app) {
                list.retain(|h| !Arc::ptr_eq(h, handle));
                if list.is_empty() {
                    apps.remove(&handle.ctx.spec.app);
                }
            }
        }
    }

    /// The deadline within which a new instance must become healthy.
    fn health_deadline(&self, spec: &InstanceSpec) -> Duration {
        let config = &self.inner.config;
        match (&spec.port, &spec.healthcheck) {
            (Some(_), Some(check)) => {
                Duration::from_secs(check.initial_delay_secs + check.timeout_secs.max(1))
                    + config.health_grace
            }
            (Some(_), None) => config.health_grace,
            (None, _) => config.settle + config.health_grace,
        }
    }

    /// Waits until `handle` is up; the reason for people when it misses its deadline.
    async fn wait_up(&self, handle: &Handle) -> std::result::Result<(), String> {
        let deadline = self.health_deadline(&handle.ctx.spec);
        let mut status = handle.ctx.status.subscribe();
        let up =
            tokio::time::timeout(deadline, status.wait_for(|s| s.state == InstanceState::Up)).await;
        match up {
            Ok(Ok(_)) => Ok(()),
            _ => {
                let status = handle.ctx.status.borrow().clone();
                let why = status
                    .problem
                    .unwrap_or_else(|| format!("it stayed {}", status.state));
                Err(format!(
                    "{} did not become healthy within {deadline:?}: {why}",
                    handle.ctx.spec.short_name()
                ))
            }
        }
    }

    fn sorted_instances(&self, app: &str) -> Vec<Instance> {
        let mut instances: Vec<Instance> =
            self.handles(app).iter().map(|h| h.ctx.instance()).collect();
        instances.sort_by(|a, b| {
            (&a.process_type, a.num, a.release).cmp(&(&b.process_type, b.num, b.release))
        });
        instances
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone: no process outlives the scheduler.
        for handles in lock(&self.apps).values() {
            for handle in handles {
                if let Some(pid) = handle.ctx.status.borrow().pid {
                    process::signal_group(pid, Signal::SIGKILL);
                }
                handle.task.abort();
            }
        }
        for pgid in lock(&self.runs).iter() {
            process::signal_group(*pgid, Signal::SIGKILL);
        }
    }
}

/// Stops the instances a rollout started when its `apply` is dropped half-way (a caller's
/// timeout), so an abandoned rollout leaves only the old release running.
struct Rollout<'a> {
    scheduler: &'a LocalScheduler,
    started: Vec<Arc<Handle>>,
}

impl Rollout<'_> {
    /// The rollout is settled (kept or stopped): nothing to undo.
    fn settle(mut self) -> Vec<Arc<Handle>> {
        std::mem::take(&mut self.started)
    }
}

impl Drop for Rollout<'_> {
    fn drop(&mut self) {
        for handle in &self.started {
            // Stop without waiting: the supervisor withdraws and stops it on its own.
            let (done, _) = oneshot::channel();
            let _ = handle.commands.send(Command::Stop(done));
        }
        self.scheduler.forget(&self.started);
    }
}

/// The local scheduler runs Procfile entries only.
fn check_spec(spec: &AppSpec) -> Result<()> {
    check_spec_common(spec)?;
    for (process_type, count) in &spec.formation {
        if *count > 0 && !spec.processes.contains_key(process_type) {
            return Err(Error::precondition(format!(
                "{} has no command for process type {process_type}: the local scheduler \
                 runs Procfile entries, and the Procfile has none for it",
                spec.app
            )));
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl Scheduler for LocalScheduler {
    fn backend(&self) -> &'static str {
        "local"
    }

    /// Local processes run slugs only.
    fn runs_images(&self) -> bool {
        false
    }

    async fn apply(&self, spec: &AppSpec) -> Result<Vec<Instance>> {
        check_spec(spec)?;
        let app_lock = self.app_lock(&spec.app);
        let _guard = app_lock.lock().await;
        let wants_processes = spec.formation.values().any(|n| *n > 0);
        let dir = if wants_processes {
            Some(
                artifact::working_dir(
                    &self.inner.config.data_dir,
                    self.inner.config.slug_fetcher.as_deref(),
                    spec,
                )
                .await?,
            )
        } else {
            None
        };
        let current = self.handles(&spec.app);
        let slots: Vec<Slot> = current
            .iter()
            .map(|h| Slot {
                process_type: h.ctx.spec.process_type.clone(),
                num: h.ctx.spec.num,
                release: h.ctx.spec.release,
            })
            .collect();
        let plan = plan(spec, &slots);
        let retire: Vec<Arc<Handle>> = plan.retire.iter().map(|i| current[*i].clone()).collect();
        let mut rollout = Rollout {
            scheduler: self,
            started: Vec::new(),
        };
        if let Some(dir) = dir {
            for (process_type, num) in &plan.start {
                let port = if is_routable_type(process_type) {
                    match self.allocate_port() {
                        Ok(port) => Some(port),
                        Err(e) => {
                            let started = rollout.settle();
                            self.stop_all(&started).await;
                            return Err(e);
                        }
                    }
                } else {
                    None
                };
                rollout.started.push(
                    self.start(InstanceSpec {
                        app: spec.app.clone(),
                        process_type: process_type.clone(),
                        num: *num,
                        release: spec.release,
                        command: spec
                            .processes
                            .get(process_type)
                            .cloned()
                            .unwrap_or_default(),
                        env: spec.env.clone(),
                        dir: dir.clone(),
                        port,
                        healthcheck: spec.healthcheck.clone(),
                        limits: spec.limits.get(process_type).cloned().unwrap_or_default(),
                    }),
                );
            }
        }
        let waits = rollout.started.iter().map(|h| self.wait_up(h));
        let failures: Vec<String> = futures::future::join_all(waits)
            .await
            .into_iter()
            .filter_map(|r| r.err())
            .collect();
        let started = rollout.settle();
        if !failures.is_empty() {
            self.stop_all(&started).await;
            let message = format!(
                "release v{} of {} was rolled back, the previous instances keep running: {}",
                spec.release,
                spec.app,
                failures.join("; ")
            );
            self.inner.sink.line(
                &spec.app,
                crate::log_sink::SCHEDULER_SOURCE,
                &format!("error: {message}"),
            );
            return Err(Error::precondition(message));
        }
        self.stop_all(&retire).await;
        Ok(self.sorted_instances(&spec.app))
    }

    async fn instances(&self, app: &str) -> Result<Vec<Instance>> {
        Ok(self.sorted_instances(app))
    }

    async fn restart(&self, app: &str, selector: &InstanceSelector) -> Result<Vec<Instance>> {
        let app_lock = self.app_lock(app);
        let _guard = app_lock.lock().await;
        let selected: Vec<Arc<Handle>> = self
            .handles(app)
            .into_iter()
            .filter(|h| selector.matches(&h.ctx.instance()))
            .collect();
        let restarts = selected.iter().map(|handle| async move {
            let (done, acked) = oneshot::channel();
            if handle.commands.send(Command::Restart(done)).is_ok() {
                let _ = acked.await;
            }
            // Restarts are best effort, as in Deis: the state tells what came of it.
            if let Err(why) = self.wait_up(handle).await {
                tracing::warn!(%app, "restart: {why}");
            }
        });
        futures::future::join_all(restarts).await;
        let mut instances: Vec<Instance> = selected.iter().map(|h| h.ctx.instance()).collect();
        instances.sort_by(|a, b| (&a.process_type, a.num).cmp(&(&b.process_type, b.num)));
        Ok(instances)
    }

    async fn run(&self, request: &RunRequest) -> Result<RunOutcome> {
        check_name("app", &request.spec.app)?;
        let dir = artifact::working_dir(
            &self.inner.config.data_dir,
            self.inner.config.slug_fetcher.as_deref(),
            &request.spec,
        )
        .await?;
        run::one_off(
            &self.inner.config,
            &self.inner.runs,
            &dir,
            &request.spec.env,
            &request.command,
        )
        .await
    }

    async fn remove(&self, app: &str) -> Result<()> {
        let app_lock = self.app_lock(app);
        let _guard = app_lock.lock().await;
        let handles = self.handles(app);
        self.stop_all(&handles).await;
        if check_name("app", app).is_ok() {
            let slugs = self.inner.config.data_dir.join("slugs").join(app);
            let _ = tokio::fs::remove_dir_all(slugs).await;
        }
        Ok(())
    }

    fn events(&self) -> BoxStream<'static, InstanceEvent> {
        crate::events::stream(&self.inner.events)
    }
}
