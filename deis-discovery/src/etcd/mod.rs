//! The etcd v3 backend of [`Discovery`] (feature `etcd`).
//!
//! Keys are used as given (the Deis v1 layout lives under `/deis/`), optionally under a
//! namespace prefix that is added on the wire and stripped on the way back. Watches resume on
//! their own from the last revision they delivered when the gRPC stream breaks, and report
//! `Error::Compacted` only when that revision is no longer in etcd's history.

mod errors;
mod watch;

use crate::config::EtcdConfig;
use async_trait::async_trait;
use deis_core::discovery::{Discovery, KeyValue, LeaseId, Snapshot, WatchStream};
use deis_core::error::{Error, Result};
use errors::{map, unavailable, Failure, BACKEND};
use etcd_client::{Client, ConnectOptions, DeleteOptions, GetOptions, PutOptions};
use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

/// How many keys one page of a snapshot reads.
const SNAPSHOT_PAGE: i64 = 500;

/// The pause before a request is tried again, growing with each attempt (up to ten times).
const RETRY_PAUSE: Duration = Duration::from_millis(20);

/// A [`Discovery`] backend on an etcd v3 cluster.
#[derive(Clone)]
pub struct EtcdDiscovery {
    client: Client,
    endpoints: Vec<String>,
    namespace: String,
    request_timeout: Duration,
}

impl fmt::Debug for EtcdDiscovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdDiscovery")
            .field("endpoints", &self.endpoints)
            .field("namespace", &self.namespace)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

impl EtcdDiscovery {
    /// Connects to the cluster described by a URL (`etcd://h1:2379,h2:2379` or a list of
    /// `http://host:port` endpoints); see [`crate::config::parse_discovery_url`].
    pub async fn from_url(url: &str) -> Result<Self> {
        match crate::config::parse_discovery_url(url)? {
            crate::config::DiscoveryUrl::Etcd(config) => Self::connect(config).await,
            crate::config::DiscoveryUrl::Memory => {
                Err(Error::Invalid(deis_core::error::ValidationError::new(
                    "discovery_url",
                    "not_etcd",
                    "memory:// is not an etcd URL; use open_discovery for any backend",
                )))
            }
        }
    }

    /// Connects to the cluster and checks, within the connect timeout, that it answers.
    ///
    /// Fails with `Error::Unavailable` (retryable) when no endpoint answers in time.
    pub async fn connect(config: EtcdConfig) -> Result<Self> {
        config.validate()?;
        let options = ConnectOptions::new()
            .with_connect_timeout(config.connect_timeout)
            .with_keep_alive(Duration::from_secs(5), Duration::from_secs(3))
            .with_keep_alive_while_idle(true)
            .with_require_leader(true);
        let client = tokio::time::timeout(
            config.connect_timeout,
            Client::connect(&config.endpoints, Some(options)),
        )
        .await
        .map_err(|_| unavailable("connecting timed out"))?
        .map_err(|error| map(error, "connect", None))?;
        let discovery = EtcdDiscovery {
            client,
            endpoints: config.endpoints,
            namespace: config.namespace,
            request_timeout: config.request_timeout,
        };
        // The channel connects lazily: make one cheap read so a dead cluster fails here.
        let probe_timeout = config.connect_timeout.max(Duration::from_millis(100));
        let probe = EtcdDiscovery {
            request_timeout: probe_timeout,
            ..discovery.clone()
        };
        probe.get("/").await?;
        Ok(discovery)
    }

    /// The endpoints this client balances over.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// Discards etcd's history up to `revision` (an etcd compaction): watches from before it
    /// then fail with `Error::Compacted`. Operators run this periodically; tests use it.
    pub async fn compact(&self, revision: u64) -> Result<()> {
        let what = format!("compact to {revision}");
        let revision = to_i64(revision)?;
        self.request(&what, false, |mut client| async move {
            client
                .compact(revision, None)
                .await
                .map_err(|error| match errors::classify(&error) {
                    Failure::Compacted => {
                        Error::precondition(format!("revision {revision} is already compacted"))
                    }
                    Failure::Other(message) if message.contains("future revision") => {
                        Error::precondition(format!("revision {revision} is not written yet"))
                    }
                    _ => map(error, "compact", None),
                })
        })
        .await
        .map(|_| ())
    }

    /// The key on the wire: under the namespace, if any. Keys must not be empty.
    fn wire_key(&self, key: &str) -> Result<String> {
        if key.is_empty() {
            return Err(invalid_key("empty_key", "a discovery key cannot be empty"));
        }
        self.wire_prefix(key)
    }

    /// The prefix on the wire. With a namespace, keys must start with `/` (as the Deis
    /// layout's do), so that nothing can reach outside it: the namespace `/a` must not see
    /// `/ab…`; the empty prefix is the whole namespace.
    fn wire_prefix(&self, prefix: &str) -> Result<String> {
        if self.namespace.is_empty() {
            Ok(prefix.to_string())
        } else if prefix.is_empty() {
            Ok(format!("{}/", self.namespace))
        } else if prefix.starts_with('/') {
            Ok(format!("{}{prefix}", self.namespace))
        } else {
            Err(invalid_key(
                "not_absolute",
                format!("key {prefix:?} must start with '/' in a namespaced etcd"),
            ))
        }
    }

    /// Runs one request within the request timeout. While etcd is unavailable and time
    /// remains, it is sent again when it is idempotent or was never sent (no connection: a
    /// cluster member may just have died, and the client balances over every endpoint).
    async fn request<T, F, Fut>(&self, what: &str, idempotent: bool, mut call: F) -> Result<T>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let deadline = Instant::now() + self.request_timeout;
        // An attempt that hangs (a member that lost its leader, a half-dead connection) is
        // given up early when it can be tried again, leaving time for another member.
        let per_attempt = if idempotent {
            attempt_timeout(self.request_timeout)
        } else {
            self.request_timeout
        };
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let limit = deadline
                .saturating_duration_since(Instant::now())
                .min(per_attempt);
            let outcome = match tokio::time::timeout(limit, call(self.client.clone())).await {
                Ok(outcome) => outcome,
                Err(_) => Err(unavailable(format!("{what}: no answer within {limit:?}"))),
            };
            match outcome {
                Err(error) if error.is_retryable() && (idempotent || errors::is_unsent(&error)) => {
                    let pause = RETRY_PAUSE * attempt.min(10);
                    if Instant::now() + pause >= deadline {
                        return Err(error);
                    }
                    tracing::debug!(%error, attempt, "etcd request failed; trying again");
                    tokio::time::sleep(pause).await;
                }
                other => return other,
            }
        }
    }

    /// Reads every key under the wire prefix at one revision, in pages.
    async fn read_prefix(&self, prefix: &str) -> Result<Snapshot> {
        let wire_prefix = self.wire_prefix(prefix)?;
        let range_end = prefix_end(wire_prefix.as_bytes());
        let mut entries = Vec::new();
        let mut revision: Option<i64> = None;
        let mut start = if wire_prefix.is_empty() {
            vec![0]
        } else {
            wire_prefix.clone().into_bytes()
        };
        loop {
            let mut options = GetOptions::new()
                .with_range(range_end.clone())
                .with_limit(SNAPSHOT_PAGE);
            if let Some(revision) = revision {
                options = options.with_revision(revision);
            }
            let key = start.clone();
            let response = self
                .request(&format!("snapshot {prefix}"), true, |mut client| {
                    let options = options.clone();
                    let key = key.clone();
                    async move {
                        client.get(key, Some(options)).await.map_err(|error| {
                            match errors::classify(&error) {
                                // Told apart by `snapshot`, which starts over.
                                Failure::Compacted => Error::Compacted {
                                    requested: u64::try_from(revision.unwrap_or_default())
                                        .unwrap_or_default(),
                                    oldest: 0,
                                },
                                _ => map(error, "snapshot", None),
                            }
                        })
                    }
                })
                .await?;
            let page_revision = response.header().map_or(0, |h| h.revision());
            let revision = *revision.get_or_insert(page_revision);
            for kv in response.kvs() {
                if let Some(entry) = self.key_value(kv.key(), kv.value(), kv.mod_revision()) {
                    entries.push(entry);
                }
            }
            match response.kvs().last() {
                Some(last) if response.more() => {
                    start = last.key().to_vec();
                    start.push(0);
                }
                _ => {
                    return Ok(Snapshot {
                        revision: u64::try_from(revision).unwrap_or_default(),
                        entries,
                    })
                }
            }
        }
    }

    /// Turns a raw etcd key-value into ours, dropping (with a warning) what is not UTF-8 or
    /// outside the namespace.
    fn key_value(&self, key: &[u8], value: &[u8], mod_revision: i64) -> Option<KeyValue> {
        let key = strip_namespace(&self.namespace, key)?;
        let Ok(value) = std::str::from_utf8(value) else {
            tracing::warn!(key, "ignoring an etcd value that is not UTF-8");
            return None;
        };
        Some(KeyValue {
            key,
            value: value.to_string(),
            mod_revision: u64::try_from(mod_revision).unwrap_or_default(),
        })
    }
}

/// The key with the namespace removed, or `None` (with a warning) when it is not UTF-8 or
/// not under the namespace.
fn strip_namespace(namespace: &str, key: &[u8]) -> Option<String> {
    let Ok(key) = std::str::from_utf8(key) else {
        tracing::warn!("ignoring an etcd key that is not UTF-8");
        return None;
    };
    match key.strip_prefix(namespace) {
        Some(rest) => Some(rest.to_string()),
        None => {
            tracing::warn!(key, "ignoring an etcd key outside the namespace");
            None
        }
    }
}

/// The end of the range of keys starting with `prefix` (etcd's "prefix end"); `\0` (every
/// key) for an empty prefix.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

fn invalid_key(rule: &'static str, message: impl Into<String>) -> Error {
    Error::Invalid(deis_core::error::ValidationError::new("key", rule, message))
}

fn to_i64(value: u64) -> Result<i64> {
    i64::try_from(value).map_err(|_| {
        Error::Invalid(deis_core::error::ValidationError::new(
            "revision",
            "too_large",
            format!("revision {value} does not fit etcd's signed 64-bit revisions"),
        ))
    })
}

/// How long one attempt of a request that may be tried again can take: a third of the
/// request timeout, at least half a second.
fn attempt_timeout(request_timeout: Duration) -> Duration {
    (request_timeout / 3)
        .max(Duration::from_millis(500))
        .min(request_timeout)
}

/// Rounds a lease TTL up to whole seconds, at least one.
fn ttl_seconds(ttl: Duration) -> i64 {
    let seconds = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    i64::try_from(seconds.max(1)).unwrap_or(i64::MAX)
}

#[async_trait]
impl Discovery for EtcdDiscovery {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn put(&self, key: &str, value: &str, lease: Option<LeaseId>) -> Result<u64> {
        let wire = self.wire_key(key)?;
        let what = format!("put {key}");
        let response = self
            .request(&what, true, |mut client| {
                let wire = wire.clone();
                let what = what.clone();
                let options = lease.map(|id| PutOptions::new().with_lease(id.0));
                async move {
                    client
                        .put(wire, value, options)
                        .await
                        .map_err(|error| map(error, &what, lease.map(|id| id.0)))
                }
            })
            .await?;
        Ok(response
            .header()
            .map_or(0, |h| u64::try_from(h.revision()).unwrap_or_default()))
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let wire = self.wire_key(key)?;
        let what = format!("get {key}");
        let response = self
            .request(&what, true, |mut client| {
                let wire = wire.clone();
                let what = what.clone();
                async move {
                    client
                        .get(wire, None)
                        .await
                        .map_err(|error| map(error, &what, None))
                }
            })
            .await?;
        let Some(kv) = response.kvs().first() else {
            return Ok(None);
        };
        let value = std::str::from_utf8(kv.value())
            .map_err(|_| Error::backend(BACKEND, format!("the value of {key} is not UTF-8")))?;
        Ok(Some(KeyValue {
            key: key.to_string(),
            value: value.to_string(),
            mod_revision: u64::try_from(kv.mod_revision()).unwrap_or_default(),
        }))
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let wire = self.wire_key(key)?;
        let what = format!("delete {key}");
        // Deleting is idempotent in effect, but a repeat would misreport: try once.
        let response = self
            .request(&what, false, |mut client| {
                let wire = wire.clone();
                let what = what.clone();
                async move {
                    client
                        .delete(wire, None)
                        .await
                        .map_err(|error| map(error, &what, None))
                }
            })
            .await?;
        Ok(response.deleted() > 0)
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        let wire = self.wire_prefix(prefix)?;
        let what = format!("delete {prefix}*");
        // Deleting is idempotent in effect, but a repeat would under-count: try once.
        let response = self
            .request(&what, false, |mut client| {
                let wire = wire.clone();
                let what = what.clone();
                async move {
                    let options = if wire.is_empty() {
                        DeleteOptions::new().with_all_keys()
                    } else {
                        DeleteOptions::new().with_prefix()
                    };
                    client
                        .delete(wire, Some(options))
                        .await
                        .map_err(|error| map(error, &what, None))
                }
            })
            .await?;
        Ok(u64::try_from(response.deleted()).unwrap_or_default())
    }

    async fn snapshot(&self, prefix: &str) -> Result<Snapshot> {
        // A page read at the first page's revision can find it compacted meanwhile: start over.
        for _ in 0..3 {
            match self.read_prefix(prefix).await {
                Err(Error::Compacted { .. }) => continue,
                other => return other,
            }
        }
        Err(unavailable(format!(
            "snapshot {prefix}: compactions kept removing the revision being read"
        )))
    }

    async fn watch(&self, prefix: &str, after_revision: u64) -> Result<WatchStream> {
        to_i64(after_revision.saturating_add(1))?;
        watch::open(self, prefix, after_revision).await
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId> {
        let seconds = ttl_seconds(ttl);
        let response = self
            .request("grant lease", true, |mut client| async move {
                client
                    .lease_grant(seconds, None)
                    .await
                    .map_err(|error| map(error, "grant lease", None))
            })
            .await?;
        if !response.error().is_empty() {
            return Err(Error::backend(
                BACKEND,
                format!("grant lease: {}", response.error()),
            ));
        }
        Ok(LeaseId(response.id()))
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<()> {
        let id = lease.0;
        // etcd-client's keep-alive call sends one request and checks the first answer
        // (a TTL <= 0 means the lease is gone): exactly a one-shot renewal.
        self.request("keep lease alive", true, |mut client| async move {
            client
                .lease_keep_alive(id)
                .await
                .map(|_| ())
                .map_err(|error| map(error, "keep lease alive", Some(id)))
        })
        .await
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<()> {
        let id = lease.0;
        self.request("revoke lease", false, |mut client| async move {
            client
                .lease_revoke(id)
                .await
                .map_err(|error| map(error, "revoke lease", Some(id)))
        })
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_round_up_to_whole_seconds() {
        assert_eq!(ttl_seconds(Duration::ZERO), 1);
        assert_eq!(ttl_seconds(Duration::from_millis(1)), 1);
        assert_eq!(ttl_seconds(Duration::from_secs(1)), 1);
        assert_eq!(ttl_seconds(Duration::from_millis(1001)), 2);
        assert_eq!(ttl_seconds(Duration::from_secs(30)), 30);
    }

    #[test]
    fn attempts_take_a_third_of_the_request_timeout() {
        assert_eq!(
            attempt_timeout(Duration::from_secs(6)),
            Duration::from_secs(2)
        );
        assert_eq!(
            attempt_timeout(Duration::from_secs(1)),
            Duration::from_millis(500)
        );
        assert_eq!(
            attempt_timeout(Duration::from_millis(200)),
            Duration::from_millis(200)
        );
    }

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end(b"/deis/"), b"/deis0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b""), b"\0");
        assert_eq!(prefix_end(b"\xff\xff"), b"\0");
    }

    #[test]
    fn namespaces_are_stripped() {
        assert_eq!(
            strip_namespace("/ns", b"/ns/deis/x").as_deref(),
            Some("/deis/x")
        );
        assert_eq!(strip_namespace("", b"/deis/x").as_deref(), Some("/deis/x"));
        assert_eq!(strip_namespace("/ns", b"/other/x"), None);
        assert_eq!(strip_namespace("", b"\xff"), None);
    }

    #[tokio::test]
    async fn namespaced_keys_stay_inside_the_namespace() {
        // The client connects lazily, so no etcd is needed to map keys.
        let client = Client::connect(["http://127.0.0.1:1"], None).await.unwrap();
        let discovery = EtcdDiscovery {
            client,
            endpoints: vec![],
            namespace: "/ns".into(),
            request_timeout: Duration::from_secs(1),
        };
        assert_eq!(discovery.wire_key("/deis/x").unwrap(), "/ns/deis/x");
        assert_eq!(discovery.wire_prefix("").unwrap(), "/ns/");
        assert!(discovery.wire_prefix("deis").is_err());
        assert!(discovery.wire_key("").is_err());
        let plain = EtcdDiscovery {
            namespace: String::new(),
            ..discovery
        };
        assert_eq!(plain.wire_prefix("").unwrap(), "");
        assert_eq!(plain.wire_key("anything").unwrap(), "anything");
        assert!(plain.wire_key("").is_err());
    }

    #[test]
    fn huge_revisions_are_rejected() {
        assert!(to_i64(u64::MAX).is_err());
        assert_eq!(to_i64(7).unwrap(), 7);
    }
}
