//! The `Discovery` trait: the key space every component watches (etcd in production),
//! laid out as Deis v1 laid out etcd.

use crate::error::{Error, Kind, Result};
use crate::model::Instance;
use async_trait::async_trait;
use futures::stream::BoxStream;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

/// One key and its value at a revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The full key, e.g. `/deis/services/go/go_v2.web.1`.
    pub key: String,
    /// The value.
    pub value: String,
    /// The revision of the key space at which this value was written.
    pub mod_revision: u64,
}

/// A consistent read of every key under a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The key space's revision at the time of the read; watch from here to miss nothing.
    pub revision: u64,
    /// The keys, sorted.
    pub entries: Vec<KeyValue>,
}

/// One change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// A key was created or changed.
    Put(KeyValue),
    /// A key was deleted (or its lease expired).
    Delete {
        /// The deleted key.
        key: String,
        /// The revision of the deletion.
        revision: u64,
    },
}

impl WatchEvent {
    /// The revision at which the change happened.
    pub fn revision(&self) -> u64 {
        match self {
            WatchEvent::Put(kv) => kv.mod_revision,
            WatchEvent::Delete { revision, .. } => *revision,
        }
    }

    /// The key that changed.
    pub fn key(&self) -> &str {
        match self {
            WatchEvent::Put(kv) => &kv.key,
            WatchEvent::Delete { key, .. } => key,
        }
    }
}

/// A lease: keys written with it disappear when it is not kept alive within its TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeaseId(pub i64);

/// A stream of watch events; an `Err(Error::Compacted { .. })` item means changes were
/// lost and the reader must take a new [`Snapshot`].
pub type WatchStream = BoxStream<'static, Result<WatchEvent>>;

/// The discovery key space.
///
/// The required surface is a small key-value store with leases and resumable watches;
/// typed helpers for the Deis layout live in [`DiscoveryExt`], so every backend gets them.
#[async_trait]
pub trait Discovery: Debug + Send + Sync + 'static {
    /// The backend's name, e.g. `memory`, `etcd`.
    fn backend(&self) -> &'static str;
    /// Writes a key, attached to a lease when given, and returns the new revision.
    async fn put(&self, key: &str, value: &str, lease: Option<LeaseId>) -> Result<u64>;
    /// Reads one key.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;
    /// Deletes exactly one key and returns whether it existed.
    async fn delete(&self, key: &str) -> Result<bool>;
    /// Deletes every key that starts with `prefix` and returns how many were deleted.
    /// `/deis/services/go/web.1` is a prefix of `…/web.10` too: use [`Discovery::delete`]
    /// for one key.
    async fn delete_prefix(&self, prefix: &str) -> Result<u64>;
    /// Reads every key under `prefix` at one revision.
    async fn snapshot(&self, prefix: &str) -> Result<Snapshot>;
    /// Streams every change under `prefix` with a revision greater than `after_revision`,
    /// in revision order, first the ones already made, then live ones. Fails (or yields)
    /// `Error::Compacted` when that history is gone.
    async fn watch(&self, prefix: &str, after_revision: u64) -> Result<WatchStream>;
    /// Creates a lease that expires after `ttl` unless kept alive.
    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId>;
    /// Renews a lease for another TTL. Fails with `NotFound` once it has expired.
    async fn keep_alive(&self, lease: LeaseId) -> Result<()>;
    /// Ends a lease at once, deleting its keys.
    async fn revoke_lease(&self, lease: LeaseId) -> Result<()>;
}

/// A shared, dynamically chosen discovery backend.
pub type DynDiscovery = Arc<dyn Discovery>;

/// The Deis v1 key layout under `/deis`.
pub mod keys {
    /// The root of everything the platform writes.
    pub const ROOT: &str = "/deis/";
    /// Published endpoints: `/deis/services/<app>/<job name>` = `host:port`.
    pub const SERVICES: &str = "/deis/services/";
    /// Custom domains: `/deis/domains/<fqdn>` = `<app>`.
    pub const DOMAINS: &str = "/deis/domains/";
    /// Router-relevant app config: `/deis/config/<app>/<lowercased key>` = value.
    pub const CONFIG: &str = "/deis/config/";
    /// Certificates: `/deis/certs/<common name>/{cert,key}`.
    pub const CERTS: &str = "/deis/certs/";
    /// The platform domain: apps answer at `<app>.<domain>`.
    pub const PLATFORM_DOMAIN: &str = "/deis/platform/domain";

    /// The key of one published instance.
    pub fn service(app: &str, job_name: &str) -> String {
        format!("{SERVICES}{app}/{job_name}")
    }

    /// The directory of an app's published instances.
    pub fn services_of(app: &str) -> String {
        format!("{SERVICES}{app}/")
    }

    /// The key of a custom domain.
    pub fn domain(fqdn: &str) -> String {
        format!("{DOMAINS}{fqdn}")
    }

    /// The key of one router-relevant config value of an app.
    pub fn config(app: &str, key: &str) -> String {
        format!("{CONFIG}{app}/{}", key.to_lowercase())
    }

    /// The directory of an app's router-relevant config.
    pub fn config_of(app: &str) -> String {
        format!("{CONFIG}{app}/")
    }

    /// The key of a certificate's PEM chain.
    pub fn certificate(common_name: &str) -> String {
        format!("{CERTS}{common_name}/cert")
    }

    /// The key of a certificate's private key.
    pub fn certificate_key(common_name: &str) -> String {
        format!("{CERTS}{common_name}/key")
    }

    /// The key of a component's setting, as `deisctl config <component> set k=v` writes it.
    pub fn component_setting(component: &str, key: &str) -> String {
        format!("{ROOT}{component}/{key}")
    }
}

/// Typed operations on the Deis layout, for every [`Discovery`] backend.
#[async_trait]
pub trait DiscoveryExt: Discovery {
    /// Publishes a healthy instance at `endpoint` (`host:port`) under `lease`.
    async fn publish_instance(
        &self,
        instance: &Instance,
        endpoint: &str,
        lease: LeaseId,
    ) -> Result<u64> {
        self.put(
            &keys::service(&instance.app, &instance.job_name()),
            endpoint,
            Some(lease),
        )
        .await
    }

    /// Withdraws a published instance at once.
    async fn withdraw_instance(&self, instance: &Instance) -> Result<()> {
        self.delete(&keys::service(&instance.app, &instance.job_name()))
            .await
            .map(|_| ())
    }

    /// Maps a custom domain to an app.
    async fn set_domain(&self, fqdn: &str, app: &str) -> Result<()> {
        self.put(&keys::domain(fqdn), app, None).await.map(|_| ())
    }

    /// Removes a custom domain.
    async fn remove_domain(&self, fqdn: &str) -> Result<()> {
        self.delete(&keys::domain(fqdn)).await.map(|_| ())
    }

    /// Reads the platform domain, if set.
    async fn platform_domain(&self) -> Result<Option<String>> {
        Ok(self.get(keys::PLATFORM_DOMAIN).await?.map(|kv| kv.value))
    }

    /// Reads a component setting (`/deis/<component>/<key>`).
    async fn component_setting(&self, component: &str, key: &str) -> Result<String> {
        let full = keys::component_setting(component, key);
        self.get(&full)
            .await?
            .map(|kv| kv.value)
            .ok_or_else(|| Error::not_found(Kind::DiscoveryKey, full))
    }

    /// Removes everything discovery holds about an app (its services, config and domains).
    async fn forget_app(&self, app: &str, domains: &[String]) -> Result<()> {
        self.delete_prefix(&keys::services_of(app)).await?;
        self.delete_prefix(&keys::config_of(app)).await?;
        for fqdn in domains {
            self.remove_domain(fqdn).await?;
        }
        Ok(())
    }
}

impl<T: Discovery + ?Sized> DiscoveryExt for T {}
