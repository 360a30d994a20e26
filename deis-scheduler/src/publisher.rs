//! The publisher: a level-triggered reconcile loop that keeps `/deis/services/<app>/<job>`
//! equal to the healthy, routable instances a scheduler reports.
//!
//! - It consumes [`Scheduler::events`](deis_core::scheduler::Scheduler::events): an instance that comes `up` with an endpoint is
//!   published at once, and one that leaves `up` (down, crashed, destroyed) is withdrawn at
//!   once.
//! - Every `resync_interval` (and on [`Publisher::resync_now`]) it reads
//!   [`Scheduler::instances`](deis_core::scheduler::Scheduler::instances) of every app it knows (from events, from
//!   [`Publisher::watch_app`], and from keys already under `/deis/services/`) and repairs
//!   discovery: missing or wrong keys are written, keys no live instance backs are deleted.
//! - Every key is written under one lease per publisher, kept alive every third of its TTL;
//!   when the lease is lost, a new one is granted and everything is published again.
//! - [`Publisher::shutdown`] ends the loop and revokes the lease, withdrawing what it
//!   published.

use deis_core::discovery::{keys, DiscoveryExt, DynDiscovery, LeaseId};
use deis_core::error::{Error, Result};
use deis_core::model::{Instance, InstanceState};
use deis_core::scheduler::{DynScheduler, InstanceEvent};
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

/// Settings of the publisher.
#[derive(Debug, Clone)]
pub struct PublisherConfig {
    /// The lease's TTL; keep-alives go every third of it.
    pub lease_ttl: Duration,
    /// Time between two full resyncs.
    pub resync_interval: Duration,
    /// How soon a failed discovery write is retried (through a resync).
    pub retry_delay: Duration,
}

impl Default for PublisherConfig {
    /// A 10 s lease, a resync every 5 s, retries after 500 ms.
    fn default() -> Self {
        PublisherConfig {
            lease_ttl: Duration::from_secs(10),
            resync_interval: Duration::from_secs(5),
            retry_delay: Duration::from_millis(500),
        }
    }
}

/// What the loop shares with its handle.
#[derive(Debug, Default)]
struct Shared {
    lease: Option<LeaseId>,
    watched: BTreeSet<String>,
    resyncs: u64,
}

/// A running publisher; see the module docs.
#[derive(Debug)]
pub struct Publisher {
    shared: Arc<Mutex<Shared>>,
    wake: Arc<Notify>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

impl Publisher {
    /// Starts publishing what `scheduler` runs into `discovery`. Needs a tokio runtime.
    pub fn spawn(
        scheduler: DynScheduler,
        discovery: DynDiscovery,
        config: PublisherConfig,
    ) -> Publisher {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let wake = Arc::new(Notify::new());
        let (stop, stopped) = watch::channel(false);
        // Subscribe before the first resync so no change falls between the two.
        let events = scheduler.events();
        let reconciler = Reconciler {
            scheduler,
            discovery,
            config,
            shared: shared.clone(),
            lease: None,
            apps: BTreeSet::new(),
            published: BTreeMap::new(),
        };
        let task = tokio::spawn(reconciler.run(events, stopped, wake.clone()));
        Publisher {
            shared,
            wake,
            stop,
            task: Some(task),
        }
    }

    /// Adds `app` to the apps resynced even when no event mentioned it, and resyncs soon.
    pub fn watch_app(&self, app: &str) {
        lock(&self.shared).watched.insert(app.to_string());
        self.wake.notify_one();
    }

    /// Asks for a full resync now.
    pub fn resync_now(&self) {
        self.wake.notify_one();
    }

    /// The lease the publisher writes under, once granted.
    pub fn lease(&self) -> Option<LeaseId> {
        lock(&self.shared).lease
    }

    /// How many full resyncs have completed.
    pub fn resyncs(&self) -> u64 {
        lock(&self.shared).resyncs
    }

    /// Stops the loop and revokes the lease, withdrawing every published key.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        // Without `shutdown`, the loop still ends (and revokes its lease) on its own.
        let _ = self.stop.send(true);
    }
}

struct Reconciler {
    scheduler: DynScheduler,
    discovery: DynDiscovery,
    config: PublisherConfig,
    shared: Arc<Mutex<Shared>>,
    lease: Option<LeaseId>,
    /// Apps seen in events or in discovery.
    apps: BTreeSet<String>,
    /// What this publisher believes it wrote: key → (instance, endpoint).
    published: BTreeMap<String, (Instance, String)>,
}

/// The endpoint an instance should be published at, if any.
fn wanted(instance: &Instance) -> Option<String> {
    let endpoint = instance.endpoint.as_ref()?;
    (instance.state == InstanceState::Up && instance.is_routable()).then(|| endpoint.clone())
}

/// An instance's discovery key.
fn key_of(instance: &Instance) -> String {
    keys::service(&instance.app, &instance.job_name())
}

/// The app of a key under `/deis/services/`.
fn app_of(key: &str) -> Option<&str> {
    key.strip_prefix(keys::SERVICES)?.split('/').next()
}

impl Reconciler {
    async fn run(
        mut self,
        mut events: futures::stream::BoxStream<'static, InstanceEvent>,
        mut stop: watch::Receiver<bool>,
        wake: Arc<Notify>,
    ) {
        let mut resync = tokio::time::interval(self.config.resync_interval);
        resync.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let keep_alive_every = (self.config.lease_ttl / 3).max(Duration::from_millis(10));
        let mut keep_alive =
            tokio::time::interval_at(Instant::now() + keep_alive_every, keep_alive_every);
        keep_alive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut events_open = true;
        loop {
            let healthy = tokio::select! {
                _ = stop.changed() => break,
                event = events.next(), if events_open => match event {
                    Some(event) => self.on_event(event).await,
                    None => {
                        events_open = false;
                        true
                    }
                },
                _ = resync.tick() => self.resync(false).await,
                _ = wake.notified() => self.resync(false).await,
                _ = keep_alive.tick() => self.keep_alive().await,
            };
            if !healthy {
                // Level-triggered: the next resync repairs whatever failed; make it soon.
                resync.reset_at(Instant::now() + self.config.retry_delay);
            }
        }
        if let Some(lease) = self.lease.take() {
            if let Err(e) = self.discovery.revoke_lease(lease).await {
                tracing::warn!("publisher: revoking lease {}: {e}", lease.0);
            }
        }
        lock(&self.shared).lease = None;
    }

    async fn lease(&mut self) -> Result<LeaseId> {
        if let Some(lease) = self.lease {
            return Ok(lease);
        }
        let lease = self.discovery.grant_lease(self.config.lease_ttl).await?;
        self.lease = Some(lease);
        lock(&self.shared).lease = Some(lease);
        Ok(lease)
    }

    fn lease_lost(&mut self) {
        self.lease = None;
        self.published.clear();
        lock(&self.shared).lease = None;
    }

    /// Renews the lease; a lost one is replaced and everything published again.
    async fn keep_alive(&mut self) -> bool {
        let Some(lease) = self.lease else {
            return true;
        };
        match self.discovery.keep_alive(lease).await {
            Ok(()) => true,
            Err(e) if e.is_not_found() => {
                tracing::warn!("publisher: lease {} was lost; republishing", lease.0);
                self.lease_lost();
                self.resync(true).await
            }
            Err(e) => {
                tracing::warn!("publisher: keeping lease {} alive: {e}", lease.0);
                false
            }
        }
    }

    async fn on_event(&mut self, event: InstanceEvent) -> bool {
        let instance = event.instance;
        self.apps.insert(instance.app.clone());
        let result = match wanted(&instance) {
            Some(endpoint) => self.put(&instance, endpoint).await,
            // Leaving `up` withdraws at once; a start needs nothing (it was withdrawn when
            // it left `up`, and a resync repairs anything else).
            None if instance.is_routable()
                && matches!(
                    instance.state,
                    InstanceState::Down
                        | InstanceState::Crashed
                        | InstanceState::Error
                        | InstanceState::Destroyed
                ) =>
            {
                self.delete(&key_of(&instance)).await
            }
            None => Ok(()),
        };
        self.report(result, "applying an instance event")
    }

    fn report(&mut self, result: Result<()>, what: &str) -> bool {
        match result {
            Ok(()) => true,
            Err(e) => {
                if matches!(
                    e,
                    Error::NotFound {
                        kind: deis_core::error::Kind::Lease,
                        ..
                    }
                ) {
                    self.lease_lost();
                }
                tracing::warn!("publisher: {what}: {e}");
                false
            }
        }
    }

    async fn put(&mut self, instance: &Instance, endpoint: String) -> Result<()> {
        let lease = self.lease().await?;
        self.discovery
            .publish_instance(instance, &endpoint, lease)
            .await?;
        self.published
            .insert(key_of(instance), (instance.clone(), endpoint));
        Ok(())
    }

    /// Deletes exactly `key`. `delete_prefix` would also take keys it is a prefix of
    /// (`…web.1` of `…web.10`), so those that should stay are written again.
    async fn delete(&mut self, key: &str) -> Result<()> {
        self.discovery.delete_prefix(key).await?;
        self.published.remove(key);
        let collateral: Vec<(Instance, String)> = self
            .published
            .range(key.to_string()..)
            .take_while(|(k, _)| k.starts_with(key))
            .map(|(_, v)| v.clone())
            .collect();
        for (other, endpoint) in collateral {
            self.put(&other, endpoint).await?;
        }
        Ok(())
    }

    /// Makes discovery match the scheduler for every known app; `force` rewrites every key
    /// (after a new lease).
    async fn resync(&mut self, force: bool) -> bool {
        let result = self.resync_inner(force).await;
        let ok = self.report(result, "resyncing");
        if ok {
            lock(&self.shared).resyncs += 1;
        }
        ok
    }

    async fn resync_inner(&mut self, force: bool) -> Result<()> {
        let snapshot = self.discovery.snapshot(keys::SERVICES).await?;
        let mut existing: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for kv in snapshot.entries {
            if let Some(app) = app_of(&kv.key) {
                existing
                    .entry(app.to_string())
                    .or_default()
                    .insert(kv.key.clone(), kv.value);
            }
        }
        let watched = lock(&self.shared).watched.clone();
        let apps: BTreeSet<String> = self
            .apps
            .iter()
            .chain(watched.iter())
            .chain(existing.keys())
            .cloned()
            .collect();
        let mut failure = None;
        for app in apps {
            let present = existing.remove(&app).unwrap_or_default();
            if let Err(e) = self.resync_app(&app, present, force).await {
                failure = Some(e);
            }
        }
        failure.map_or(Ok(()), Err)
    }

    async fn resync_app(
        &mut self,
        app: &str,
        present: BTreeMap<String, String>,
        force: bool,
    ) -> Result<()> {
        let instances = self.scheduler.instances(app).await?;
        let desired: BTreeMap<String, (&Instance, String)> = instances
            .iter()
            .filter_map(|i| wanted(i).map(|endpoint| (key_of(i), (i, endpoint))))
            .collect();
        let mut deleted = Vec::new();
        for key in present.keys() {
            if !desired.contains_key(key) {
                self.discovery.delete_prefix(key).await?;
                self.published.remove(key);
                deleted.push(key.as_str());
            }
        }
        for (key, (instance, endpoint)) in &desired {
            // A deleted key may have been a prefix of a wanted one (`…web.1`, `…web.10`).
            let collateral = deleted.iter().any(|d| key.starts_with(d));
            if force
                || collateral
                || present.get(key) != Some(endpoint)
                || !self.published.contains_key(key)
            {
                self.put(instance, endpoint.clone()).await?;
            }
        }
        if instances.is_empty() {
            self.apps.remove(app);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_up_routable_instances_with_an_endpoint_are_wanted() {
        let mut instance = Instance {
            app: "go".into(),
            process_type: "web".into(),
            num: 1,
            release: 2,
            state: InstanceState::Up,
            endpoint: Some("127.0.0.1:5000".into()),
        };
        assert_eq!(wanted(&instance), Some("127.0.0.1:5000".to_string()));
        assert_eq!(key_of(&instance), "/deis/services/go/go_v2.web.1");
        instance.state = InstanceState::Crashed;
        assert_eq!(wanted(&instance), None);
        instance.state = InstanceState::Up;
        instance.process_type = "worker".into();
        assert_eq!(wanted(&instance), None);
        instance.process_type = "cmd".into();
        instance.endpoint = None;
        assert_eq!(wanted(&instance), None);
    }

    #[test]
    fn keys_name_their_app() {
        assert_eq!(app_of("/deis/services/go/go_v2.web.1"), Some("go"));
        assert_eq!(app_of("/deis/domains/x"), None);
    }
}
