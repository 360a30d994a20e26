//! One task per instance: starts its process, checks its health, restarts it with
//! exponential backoff when it crashes, and stops it gracefully on request.

use super::cgroup::{Cgroups, LimitEnforcement};
use super::process::{describe_exit, pump_lines, shell, signal_group};
use super::LocalConfig;
use crate::health::{http_probe, tcp_probe, Probe};
use crate::log_sink::{LogSink, SCHEDULER_SOURCE};
use deis_core::model::{Healthcheck, Instance, InstanceState};
use deis_core::scheduler::{InstanceEvent, ProcessLimits};
use nix::sys::signal::Signal;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::process::Child;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// What an instance runs: fixed for its whole life.
#[derive(Clone)]
pub(crate) struct InstanceSpec {
    pub(crate) app: String,
    pub(crate) process_type: String,
    pub(crate) num: u32,
    pub(crate) release: u64,
    pub(crate) command: String,
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) dir: PathBuf,
    pub(crate) port: Option<u16>,
    pub(crate) healthcheck: Option<Healthcheck>,
    pub(crate) limits: ProcessLimits,
}

impl std::fmt::Debug for InstanceSpec {
    /// Config values may be secrets: only their names are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceSpec")
            .field("app", &self.app)
            .field("process_type", &self.process_type)
            .field("num", &self.num)
            .field("release", &self.release)
            .field("command", &self.command)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("dir", &self.dir)
            .field("port", &self.port)
            .field("healthcheck", &self.healthcheck)
            .field("limits", &self.limits)
            .finish()
    }
}

impl InstanceSpec {
    pub(crate) fn short_name(&self) -> String {
        format!("{}.{}", self.process_type, self.num)
    }

    fn job_name(&self) -> String {
        format!(
            "{}_v{}.{}.{}",
            self.app, self.release, self.process_type, self.num
        )
    }

    fn has_limits(&self) -> bool {
        self.limits.memory_bytes.is_some() || self.limits.cpu_shares.is_some()
    }
}

/// What changes while an instance lives.
#[derive(Debug, Clone)]
pub(crate) struct Status {
    pub(crate) state: InstanceState,
    /// The running process (the leader of its group).
    pub(crate) pid: Option<u32>,
    /// The latest reason it is not up, for people.
    pub(crate) problem: Option<String>,
    /// How many times it was restarted after a crash.
    pub(crate) restarts: u32,
    pub(crate) limits: LimitEnforcement,
}

/// Requests to a supervisor.
#[derive(Debug)]
pub(crate) enum Command {
    /// Withdraw (emit `down`), wait the drain delay, stop gracefully, end.
    Stop(oneshot::Sender<()>),
    /// Stop gracefully, then start again at once.
    Restart(oneshot::Sender<()>),
}

/// Everything a supervisor shares with the scheduler.
#[derive(Debug)]
pub(crate) struct InstanceCtx {
    pub(crate) spec: InstanceSpec,
    pub(crate) config: Arc<LocalConfig>,
    pub(crate) sink: Arc<dyn LogSink>,
    pub(crate) events: broadcast::Sender<InstanceEvent>,
    pub(crate) cgroups: Arc<Cgroups>,
    pub(crate) status: watch::Sender<Status>,
}

impl InstanceCtx {
    pub(crate) fn new(
        spec: InstanceSpec,
        config: Arc<LocalConfig>,
        sink: Arc<dyn LogSink>,
        events: broadcast::Sender<InstanceEvent>,
        cgroups: Arc<Cgroups>,
    ) -> Arc<Self> {
        let limits = if spec.has_limits() {
            LimitEnforcement::NotEnforced {
                reason: "not started yet".into(),
            }
        } else {
            LimitEnforcement::NoLimits
        };
        let (status, _) = watch::channel(Status {
            state: InstanceState::Created,
            pid: None,
            problem: None,
            restarts: 0,
            limits,
        });
        Arc::new(InstanceCtx {
            spec,
            config,
            sink,
            events,
            cgroups,
            status,
        })
    }

    /// The instance as the trait reports it.
    pub(crate) fn instance(&self) -> Instance {
        self.instance_in(self.status.borrow().state)
    }

    fn instance_in(&self, state: InstanceState) -> Instance {
        Instance {
            app: self.spec.app.clone(),
            process_type: self.spec.process_type.clone(),
            num: self.spec.num,
            release: self.spec.release,
            state,
            endpoint: self.spec.port.map(|p| format!("127.0.0.1:{p}")),
        }
    }

    /// Moves to `state` and emits the change (nothing when it is the same state).
    pub(crate) fn set_state(&self, state: InstanceState) {
        let mut previous = None;
        self.status.send_if_modified(|status| {
            if status.state == state {
                return false;
            }
            previous = Some(status.state);
            status.state = state;
            true
        });
        if let Some(previous) = previous {
            let previous = (previous != InstanceState::Created).then_some(previous);
            let _ = self.events.send(InstanceEvent {
                instance: self.instance_in(state),
                previous,
            });
        }
    }

    fn set_problem(&self, problem: impl Into<String>) {
        let problem = problem.into();
        self.status.send_modify(|s| s.problem = Some(problem));
    }

    fn log(&self, line: &str) {
        self.sink.line(&self.spec.app, SCHEDULER_SOURCE, line);
    }

    /// The restart delay after `failures` consecutive crashes: none for the first, then
    /// doubling from `backoff_initial` up to `backoff_max`.
    fn backoff(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(20));
        self.config
            .backoff_initial
            .saturating_mul(factor)
            .min(self.config.backoff_max)
    }
}

/// How one run of the process ended.
enum Ended {
    /// It exited (or could not start) on its own, after running this long.
    Exited(Duration),
    /// A stop request ended it.
    Stopped(Option<oneshot::Sender<()>>),
    /// A restart request ended it.
    Restarted(oneshot::Sender<()>),
}

/// Runs the instance until it is asked to stop (or the scheduler goes away).
pub(crate) async fn supervise(
    ctx: Arc<InstanceCtx>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let mut failures: u32 = 0;
    loop {
        let ended = run_once(&ctx, &mut commands).await;
        let next = match ended {
            Ended::Stopped(done) => {
                finish(&ctx, done);
                return;
            }
            Ended::Restarted(done) => {
                failures = 0;
                let _ = done.send(());
                continue;
            }
            Ended::Exited(ran_for) => {
                if ran_for >= ctx.config.stable_after {
                    failures = 0;
                }
                let delay = ctx.backoff(failures);
                failures = failures.saturating_add(1);
                ctx.status.send_modify(|s| s.restarts += 1);
                ctx.set_state(InstanceState::Crashed);
                let problem = ctx.status.borrow().problem.clone().unwrap_or_default();
                ctx.log(&format!(
                    "{} {problem}; restarting in {delay:?}",
                    ctx.spec.short_name()
                ));
                tokio::select! {
                    _ = tokio::time::sleep(delay) => None,
                    command = commands.recv() => Some(command),
                }
            }
        };
        match next {
            None => {}
            Some(None) => {
                finish(&ctx, None);
                return;
            }
            Some(Some(Command::Stop(done))) => {
                ctx.set_state(InstanceState::Down);
                finish(&ctx, Some(done));
                return;
            }
            Some(Some(Command::Restart(done))) => {
                failures = 0;
                let _ = done.send(());
            }
        }
    }
}

fn finish(ctx: &InstanceCtx, done: Option<oneshot::Sender<()>>) {
    ctx.status.send_modify(|s| s.pid = None);
    ctx.set_state(InstanceState::Destroyed);
    if let Some(done) = done {
        let _ = done.send(());
    }
}

/// Starts the process once and waits until it exits or a request ends it.
async fn run_once(
    ctx: &Arc<InstanceCtx>,
    commands: &mut mpsc::UnboundedReceiver<Command>,
) -> Ended {
    ctx.set_state(InstanceState::Starting);
    let started = Instant::now();
    let spec = &ctx.spec;
    let mut child = match shell(&spec.command, &spec.dir, &spec.env, spec.port)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            ctx.set_problem(format!(
                "could not start `sh -c` in {}: {e}",
                spec.dir.display()
            ));
            return Ended::Exited(started.elapsed());
        }
    };
    let pid = child.id().unwrap_or_default();
    ctx.status.send_modify(|s| s.pid = Some(pid));
    let source = spec.short_name();
    if let Some(out) = child.stdout.take() {
        pump_lines(out, ctx.sink.clone(), spec.app.clone(), source.clone());
    }
    if let Some(err) = child.stderr.take() {
        pump_lines(err, ctx.sink.clone(), spec.app.clone(), source);
    }
    // The process is moved into its cgroup right after it starts; anything it forks from
    // then on is limited too (a child forked in the first instant is not).
    let cgroup = apply_limits(ctx, pid);
    let health = async {
        wait_healthy(ctx).await;
        ctx.status.send_modify(|s| s.problem = None);
        ctx.set_state(InstanceState::Up);
        std::future::pending::<()>().await
    };
    let ended = tokio::select! {
        status = child.wait() => {
            // Whatever the leader left behind in its group goes with it.
            signal_group(pid, Signal::SIGKILL);
            let why = match status {
                Ok(status) => describe_exit(status),
                Err(e) => format!("could not be waited for: {e}"),
            };
            ctx.set_problem(why);
            Ended::Exited(started.elapsed())
        }
        command = commands.recv() => match command {
            Some(Command::Stop(done)) => {
                ctx.set_state(InstanceState::Down);
                if !ctx.config.drain_delay.is_zero() {
                    tokio::time::sleep(ctx.config.drain_delay).await;
                }
                terminate(ctx, &mut child, pid).await;
                Ended::Stopped(Some(done))
            }
            Some(Command::Restart(done)) => {
                ctx.set_state(InstanceState::Down);
                terminate(ctx, &mut child, pid).await;
                Ended::Restarted(done)
            }
            None => {
                signal_group(pid, Signal::SIGKILL);
                let _ = child.wait().await;
                Ended::Stopped(None)
            }
        },
        _ = health => unreachable!("the health future never completes"),
    };
    ctx.status.send_modify(|s| s.pid = None);
    if let Some(dir) = cgroup {
        Cgroups::release(&dir);
    }
    ended
}

/// SIGTERM to the group, the grace period, then SIGKILL.
async fn terminate(ctx: &InstanceCtx, child: &mut Child, pid: u32) {
    signal_group(pid, Signal::SIGTERM);
    if tokio::time::timeout(ctx.config.stop_grace, child.wait())
        .await
        .is_err()
    {
        ctx.log(&format!(
            "{} did not stop within {:?} of SIGTERM; sending SIGKILL",
            ctx.spec.short_name(),
            ctx.config.stop_grace
        ));
        signal_group(pid, Signal::SIGKILL);
        let _ = child.wait().await;
    }
    signal_group(pid, Signal::SIGKILL);
}

/// Puts the process into a cgroup with its limits, or says loudly why not.
fn apply_limits(ctx: &InstanceCtx, pid: u32) -> Option<PathBuf> {
    if !ctx.spec.has_limits() {
        return None;
    }
    match ctx
        .cgroups
        .attach(&ctx.spec.app, &ctx.spec.job_name(), pid, &ctx.spec.limits)
    {
        Ok(dir) => {
            ctx.status
                .send_modify(|s| s.limits = LimitEnforcement::Enforced);
            Some(dir)
        }
        Err(reason) => {
            let line = format!(
                "warning: memory/cpu limits of {} are NOT enforced: {reason}",
                ctx.spec.short_name()
            );
            tracing::warn!(app = %ctx.spec.app, "{line}");
            ctx.log(&line);
            ctx.status
                .send_modify(|s| s.limits = LimitEnforcement::NotEnforced { reason });
            None
        }
    }
}

/// Returns once the instance is healthy; records why it is not meanwhile.
///
/// An instance with a port is healthy when the port accepts connections or, with a health
/// check, when `GET <url>` answers 200. One without a port (a worker) is healthy once it has
/// stayed alive for `settle`.
async fn wait_healthy(ctx: &InstanceCtx) {
    let Some(port) = ctx.spec.port else {
        tokio::time::sleep(ctx.config.settle).await;
        return;
    };
    let mut pause = Duration::from_millis(20);
    if let Some(check) = &ctx.spec.healthcheck {
        tokio::time::sleep(Duration::from_secs(check.initial_delay_secs)).await;
    }
    loop {
        let probe = match &ctx.spec.healthcheck {
            Some(check) => {
                let timeout = Duration::from_secs(check.timeout_secs.max(1));
                http_probe(port, &check.url, timeout).await
            }
            None => tcp_probe(port, Duration::from_secs(1)).await,
        };
        match probe {
            Probe::Healthy => return,
            Probe::Unhealthy(why) => ctx.set_problem(why),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 3 / 2).min(ctx.config.health_poll_max);
    }
}
