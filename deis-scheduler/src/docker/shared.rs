//! What the Docker scheduler shares with its background tasks: the engine client, the
//! event sender, the states the engine cannot tell, health checks, and the monitor that
//! follows the engine's container events.

use super::engine::{self, Listed};
use super::{DockerConfig, RUN_TYPE};
use crate::health::{http_probe, proxied_tcp_probe, Probe};
use crate::log_sink::LogSink;
use bollard::query_parameters::EventsOptions;
use bollard::Docker;
use deis_core::model::{is_routable_type, Healthcheck, Instance, InstanceState};
use deis_core::scheduler::InstanceEvent;
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

/// What the scheduler shares with its monitor task.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) docker: Docker,
    pub(super) config: DockerConfig,
    pub(super) sink: Arc<dyn LogSink>,
    pub(super) events: broadcast::Sender<InstanceEvent>,
    /// States the engine cannot tell: starting (not yet healthy) and draining containers.
    pub(super) overrides: Mutex<HashMap<String, InstanceState>>,
    /// Log followers by container name.
    pub(super) logs: Mutex<HashMap<String, JoinHandle<()>>>,
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// One container the scheduler acts on.
#[derive(Debug, Clone)]
pub(super) struct Target {
    pub(super) name: String,
    pub(super) app: String,
    pub(super) process_type: String,
    pub(super) num: u32,
    pub(super) release: u64,
    pub(super) healthcheck: Option<Healthcheck>,
}

impl Target {
    pub(super) fn of(app: &str, listed: &Listed) -> Target {
        Target {
            name: listed.name.clone(),
            app: app.to_string(),
            process_type: listed.process_type.clone(),
            num: listed.num,
            release: listed.release,
            healthcheck: listed.healthcheck.clone(),
        }
    }

    pub(super) fn short_name(&self) -> String {
        format!("{}.{}", self.process_type, self.num)
    }
}

impl Shared {
    pub(super) fn set_override(&self, name: &str, state: InstanceState) {
        lock(&self.overrides).insert(name.to_string(), state);
    }

    pub(super) fn emit(
        &self,
        target: &Target,
        state: InstanceState,
        previous: Option<InstanceState>,
        port: Option<u16>,
    ) {
        let _ = self.events.send(InstanceEvent {
            instance: Instance {
                app: target.app.clone(),
                process_type: target.process_type.clone(),
                num: target.num,
                release: target.release,
                state,
                endpoint: port.map(|p| format!("{}:{p}", self.config.bind_ip)),
            },
            previous,
        });
    }

    pub(super) fn follow(&self, target: &Target, from_start: bool) {
        let follower = engine::follow_logs(
            self.docker.clone(),
            self.sink.clone(),
            target.name.clone(),
            target.app.clone(),
            target.short_name(),
            from_start,
        );
        if let Some(old) = lock(&self.logs).insert(target.name.clone(), follower) {
            old.abort();
        }
    }

    pub(super) fn deadline(&self, target: &Target) -> Duration {
        match (is_routable_type(&target.process_type), &target.healthcheck) {
            (true, Some(check)) => {
                Duration::from_secs(check.initial_delay_secs + check.timeout_secs.max(1))
                    + self.config.health_grace
            }
            (true, None) => self.config.health_grace,
            (false, _) => self.config.settle + self.config.health_grace,
        }
    }

    /// Waits until the container is healthy; returns its host port (routable types), or why
    /// it missed its deadline.
    pub(super) async fn wait_healthy(
        &self,
        target: &Target,
    ) -> std::result::Result<Option<u16>, String> {
        let deadline = self.deadline(target);
        let check = target.healthcheck.as_ref();
        let mut problem = String::from("it never started");
        let waiting = async {
            if !is_routable_type(&target.process_type) {
                loop {
                    tokio::time::sleep(self.config.settle).await;
                    if engine::running(&self.docker, &target.name).await {
                        return None;
                    }
                    problem = "it keeps exiting".into();
                }
            }
            if let Some(check) = check {
                tokio::time::sleep(Duration::from_secs(check.initial_delay_secs)).await;
            }
            let mut pause = Duration::from_millis(50);
            loop {
                match engine::host_port(&self.docker, &target.name, self.config.container_port)
                    .await
                {
                    None => problem = "its port is not published (is it running?)".into(),
                    Some(port) => {
                        let probe = match check {
                            Some(check) => {
                                let timeout = Duration::from_secs(check.timeout_secs.max(1));
                                http_probe(port, &check.url, timeout).await
                            }
                            None => proxied_tcp_probe(port, Duration::from_secs(1)).await,
                        };
                        match probe {
                            Probe::Healthy => return Some(port),
                            Probe::Unhealthy(why) => problem = why,
                        }
                    }
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(500));
            }
        };
        match tokio::time::timeout(deadline, waiting).await {
            Ok(port) => Ok(port),
            Err(_) => Err(format!(
                "{} did not become healthy within {deadline:?}: {problem}",
                target.short_name()
            )),
        }
    }
}

/// Follows the engine's container events: a managed container that dies is `crashed`; one
/// the restart policy starts again is `up` once healthy. Containers the scheduler itself is
/// starting or stopping are left alone.
pub(super) async fn monitor(shared: Arc<Shared>) {
    loop {
        let filters = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            (
                "label".to_string(),
                vec![format!("{}={}", engine::LABEL_OWNER, shared.config.owner)],
            ),
            (
                "event".to_string(),
                vec!["die".to_string(), "start".to_string()],
            ),
        ]);
        let options = EventsOptions {
            filters: Some(filters),
            ..Default::default()
        };
        let mut events = shared.docker.events(Some(options));
        while let Some(Ok(message)) = events.next().await {
            let attributes = message.actor.and_then(|a| a.attributes).unwrap_or_default();
            let Some(target) = target_of(&attributes) else {
                continue;
            };
            if target.process_type == RUN_TYPE || lock(&shared.overrides).contains_key(&target.name)
            {
                continue;
            }
            match message.action.as_deref() {
                Some("die") => {
                    shared.emit(
                        &target,
                        InstanceState::Crashed,
                        Some(InstanceState::Up),
                        None,
                    );
                }
                Some("start") => {
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        shared.follow(&target, false);
                        shared.emit(
                            &target,
                            InstanceState::Starting,
                            Some(InstanceState::Crashed),
                            None,
                        );
                        if let Ok(port) = shared.wait_healthy(&target).await {
                            shared.emit(
                                &target,
                                InstanceState::Up,
                                Some(InstanceState::Starting),
                                port,
                            );
                        }
                    });
                }
                _ => {}
            }
        }
        // The engine went away or the stream broke: try again shortly.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn target_of(attributes: &HashMap<String, String>) -> Option<Target> {
    Some(Target {
        name: attributes.get("name")?.clone(),
        app: attributes.get(engine::LABEL_APP)?.clone(),
        process_type: attributes.get(engine::LABEL_TYPE)?.clone(),
        num: attributes.get(engine::LABEL_NUM)?.parse().ok()?,
        release: attributes.get(engine::LABEL_RELEASE)?.parse().ok()?,
        healthcheck: engine::healthcheck_of(attributes),
    })
}
