//! Helpers shared by the integration tests: the shared etcd from the environment, private
//! etcd processes (single members and a 3-member cluster) stopped on drop, a discovery
//! wrapper that injects outages, and polling with a deadline.

#![allow(dead_code)]

#[cfg(feature = "etcd")]
pub mod etcd_process;

use async_trait::async_trait;
use deis_core::discovery::{Discovery, KeyValue, LeaseId, Snapshot, WatchStream};
use deis_core::error::{Error, Result};
use futures::StreamExt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The shared etcd that `scripts/test` starts, or a clear failure when it is missing.
pub fn shared_etcd_endpoints() -> Vec<String> {
    let value = std::env::var("DEIS_TEST_ETCD_ENDPOINTS").unwrap_or_default();
    let endpoints: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .collect();
    assert!(
        !endpoints.is_empty(),
        "DEIS_TEST_ETCD_ENDPOINTS is not set: this test needs a running etcd \
         (run scripts/test, or start etcd and export DEIS_TEST_ETCD_ENDPOINTS=http://127.0.0.1:PORT)"
    );
    endpoints
}

/// A key namespace no other test uses, e.g. `/test-conformance-1234-1`.
pub fn unique_namespace(name: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "/test-{name}-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Polls `check` until it holds or `limit` passes; returns whether it held.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The state of a [`FaultyDiscovery`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Faults {
    /// Every call fails as unavailable and open watch streams end.
    down: bool,
    /// `watch` calls wait until released.
    hold_watches: bool,
}

/// A discovery wrapper that can go down (calls fail as `Unavailable`, open watches end) and
/// hold new watches, to test how readers ride out outages and compactions.
#[derive(Debug, Clone)]
pub struct FaultyDiscovery {
    inner: Arc<dyn Discovery>,
    faults: Arc<tokio::sync::watch::Sender<Faults>>,
    pub watches_opened: Arc<AtomicU64>,
}

impl FaultyDiscovery {
    /// Wraps a backend, initially healthy.
    pub fn new(inner: Arc<dyn Discovery>) -> Self {
        FaultyDiscovery {
            inner,
            faults: Arc::new(tokio::sync::watch::Sender::new(Faults::default())),
            watches_opened: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Takes the backend down or brings it back.
    pub fn set_down(&self, down: bool) {
        self.faults.send_modify(|f| f.down = down);
    }

    /// Makes new `watch` calls wait (true) or lets them through (false).
    pub fn hold_watches(&self, hold: bool) {
        self.faults.send_modify(|f| f.hold_watches = hold);
    }

    fn check(&self) -> Result<()> {
        if self.faults.borrow().down {
            Err(Error::Unavailable {
                backend: "faulty",
                message: "taken down by the test".into(),
            })
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Discovery for FaultyDiscovery {
    fn backend(&self) -> &'static str {
        "faulty"
    }

    async fn put(&self, key: &str, value: &str, lease: Option<LeaseId>) -> Result<u64> {
        self.check()?;
        self.inner.put(key, value, lease).await
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        self.check()?;
        self.inner.get(key).await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        self.check()?;
        self.inner.delete(key).await
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        self.check()?;
        self.inner.delete_prefix(prefix).await
    }

    async fn snapshot(&self, prefix: &str) -> Result<Snapshot> {
        self.check()?;
        self.inner.snapshot(prefix).await
    }

    async fn watch(&self, prefix: &str, after_revision: u64) -> Result<WatchStream> {
        let mut faults = self.faults.subscribe();
        let _ = faults.wait_for(|f| !f.hold_watches).await;
        self.check()?;
        self.watches_opened.fetch_add(1, Ordering::SeqCst);
        let stream = self.inner.watch(prefix, after_revision).await?;
        let mut faults = self.faults.subscribe();
        let down = async move {
            let _ = faults.wait_for(|f| f.down).await;
        };
        Ok(stream.take_until(Box::pin(down)).boxed())
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId> {
        self.check()?;
        self.inner.grant_lease(ttl).await
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<()> {
        self.check()?;
        self.inner.keep_alive(lease).await
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<()> {
        self.check()?;
        self.inner.revoke_lease(lease).await
    }
}
