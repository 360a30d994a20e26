use crate::error::{Error, Result};
use crate::model::{Instance, InstanceState};
use crate::scheduler::{
    AppSpec, Artifact, InstanceEvent, InstanceSelector, RunOutcome, RunRequest, Scheduler,
};
use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::StreamExt;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::broadcast;

/// A [`Scheduler`] that keeps instances as state and runs no processes: deterministic,
/// instant convergence, for embedding and for testing what a controller asks of a scheduler.
///
/// Every instance it reports is `up` with no endpoint; one-off runs are not implemented.
#[derive(Debug, Clone)]
pub struct MemoryScheduler {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    apps: Mutex<BTreeMap<String, Vec<Instance>>>,
    events: broadcast::Sender<InstanceEvent>,
}

impl Default for MemoryScheduler {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryScheduler {
    /// A scheduler with no apps.
    pub fn new() -> Self {
        let (events, _) = broadcast::channel(4096);
        MemoryScheduler {
            inner: Arc::new(Inner {
                apps: Mutex::new(BTreeMap::new()),
                events,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Vec<Instance>>> {
        self.inner.apps.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn emit(&self, instance: &Instance, previous: Option<InstanceState>) {
        let _ = self.inner.events.send(InstanceEvent {
            instance: instance.clone(),
            previous,
        });
    }
}

fn sort(instances: &mut [Instance]) {
    instances.sort_by(|a, b| (&a.process_type, a.num).cmp(&(&b.process_type, b.num)));
}

#[async_trait]
impl Scheduler for MemoryScheduler {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn apply(&self, spec: &AppSpec) -> Result<Vec<Instance>> {
        let wants_processes = spec.formation.values().any(|n| *n > 0);
        if wants_processes && spec.artifact == Artifact::None {
            return Err(Error::precondition(format!(
                "{} has no build to run; push code or deploy an image first",
                spec.app
            )));
        }
        let mut apps = self.lock();
        let current = apps.remove(&spec.app).unwrap_or_default();
        let mut next = Vec::new();
        let mut stopped = Vec::new();
        let mut by_type: BTreeMap<&str, Vec<&Instance>> = BTreeMap::new();
        for instance in &current {
            by_type
                .entry(instance.process_type.as_str())
                .or_default()
                .push(instance);
        }
        for (process_type, instances) in &mut by_type {
            instances.sort_by_key(|i| i.num);
            let wanted = spec.formation.get(*process_type).copied().unwrap_or(0) as usize;
            // Scale down removes the newest (highest-numbered) instances first.
            for surplus in instances.iter().skip(wanted) {
                stopped.push((*surplus).clone());
            }
            for kept in instances.iter().take(wanted) {
                if kept.release == spec.release {
                    next.push((*kept).clone());
                } else {
                    // A new release replaces each instance under the same number: the new
                    // one is up before the old one stops.
                    let mut replacement = (*kept).clone();
                    replacement.release = spec.release;
                    replacement.state = InstanceState::Up;
                    self.emit(&replacement, None);
                    stopped.push((*kept).clone());
                    next.push(replacement);
                }
            }
        }
        for (process_type, wanted) in &spec.formation {
            let existing: Vec<u32> = next
                .iter()
                .filter(|i| i.process_type == *process_type)
                .map(|i| i.num)
                .collect();
            let highest = existing.iter().copied().max().unwrap_or(0);
            let missing = (*wanted as usize).saturating_sub(existing.len()) as u32;
            for num in (highest + 1..).take(missing as usize) {
                let instance = Instance {
                    app: spec.app.clone(),
                    process_type: process_type.clone(),
                    num,
                    release: spec.release,
                    state: InstanceState::Up,
                    endpoint: None,
                };
                self.emit(&instance, None);
                next.push(instance);
            }
        }
        for mut old in stopped {
            let previous = old.state;
            old.state = InstanceState::Destroyed;
            self.emit(&old, Some(previous));
        }
        sort(&mut next);
        if !next.is_empty() {
            apps.insert(spec.app.clone(), next.clone());
        }
        Ok(next)
    }

    async fn instances(&self, app: &str) -> Result<Vec<Instance>> {
        Ok(self.lock().get(app).cloned().unwrap_or_default())
    }

    async fn restart(&self, app: &str, selector: &InstanceSelector) -> Result<Vec<Instance>> {
        let apps = self.lock();
        let selected: Vec<Instance> = apps
            .get(app)
            .map(|instances| {
                instances
                    .iter()
                    .filter(|i| selector.matches(i))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for instance in &selected {
            let mut down = instance.clone();
            down.state = InstanceState::Down;
            self.emit(&down, Some(InstanceState::Up));
            self.emit(instance, Some(InstanceState::Down));
        }
        Ok(selected)
    }

    async fn run(&self, _request: &RunRequest) -> Result<RunOutcome> {
        Err(Error::NotImplemented {
            operation: "run",
            backend: "memory",
        })
    }

    async fn remove(&self, app: &str) -> Result<()> {
        let removed = self.lock().remove(app).unwrap_or_default();
        for mut instance in removed {
            let previous = instance.state;
            instance.state = InstanceState::Destroyed;
            self.emit(&instance, Some(previous));
        }
        Ok(())
    }

    fn events(&self) -> BoxStream<'static, InstanceEvent> {
        let receiver = self.inner.events.subscribe();
        futures::stream::unfold(receiver, |mut receiver| async move {
            loop {
                match receiver.recv().await {
                    Ok(event) => return Some((event, receiver)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .boxed()
    }
}
