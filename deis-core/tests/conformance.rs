//! The in-memory backends pass their conformance suites, and a deliberately broken backend
//! does not: the suites can fail.

use async_trait::async_trait;
use deis_core::conformance;
use deis_core::conformance::scheduler::SchedulerFixture;
use deis_core::discovery::{KeyValue, LeaseId, Snapshot, WatchStream};
use deis_core::memory::{MemoryDiscovery, MemoryRouter, MemoryScheduler, MemoryStore};
use deis_core::scheduler::Artifact;
use deis_core::{Discovery, Result};
use std::collections::BTreeMap;
use std::time::Duration;

fn memory_fixture() -> SchedulerFixture {
    SchedulerFixture {
        artifact: Artifact::Image {
            name: "example/app:v1".into(),
        },
        processes: BTreeMap::from([
            ("web".into(), "./server".into()),
            ("worker".into(), "./work".into()),
        ]),
        supports_run: false,
        reports_endpoints: false,
    }
}

#[tokio::test]
async fn memory_store_passes() {
    conformance::store::run_all(&MemoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_discovery_passes() {
    conformance::discovery::run_all(&MemoryDiscovery::new()).await;
}

#[tokio::test]
async fn memory_scheduler_passes() {
    conformance::scheduler::run_all(&MemoryScheduler::new(), &memory_fixture(), "mem-").await;
}

#[tokio::test]
async fn memory_router_passes() {
    conformance::router::run_all(&MemoryRouter::new(), "127.0.0.1:5000").await;
}

#[tokio::test]
async fn a_watch_from_a_compacted_revision_asks_for_a_resync() {
    let discovery = MemoryDiscovery::with_history(3);
    for i in 0..10 {
        discovery.put("/x/k", &i.to_string(), None).await.unwrap();
    }
    match discovery.watch("/x/", 1).await {
        Err(deis_core::Error::Compacted {
            requested: 1,
            oldest,
        }) => assert_eq!(oldest, 8),
        Err(other) => panic!("expected Compacted, got {other}"),
        Ok(_) => panic!("expected Compacted, got a stream"),
    }
    discovery.compact(9);
    assert!(discovery.watch("/x/", 8).await.is_err());
    assert!(discovery.watch("/x/", 9).await.is_ok());
}

/// A discovery backend with a classic bug: a watch starts from "now" instead of the
/// revision asked for, so changes made while a watcher was reconnecting are lost.
#[derive(Debug, Default)]
struct WatchFromNowDiscovery(MemoryDiscovery);

#[async_trait]
impl Discovery for WatchFromNowDiscovery {
    fn backend(&self) -> &'static str {
        "broken"
    }

    async fn put(&self, key: &str, value: &str, lease: Option<LeaseId>) -> Result<u64> {
        self.0.put(key, value, lease).await
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        self.0.get(key).await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        self.0.delete(key).await
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        self.0.delete_prefix(prefix).await
    }

    async fn snapshot(&self, prefix: &str) -> Result<Snapshot> {
        self.0.snapshot(prefix).await
    }

    async fn watch(&self, prefix: &str, _after_revision: u64) -> Result<WatchStream> {
        let now = self.0.snapshot(prefix).await?.revision;
        self.0.watch(prefix, now).await
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId> {
        self.0.grant_lease(ttl).await
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<()> {
        self.0.keep_alive(lease).await
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<()> {
        self.0.revoke_lease(lease).await
    }
}

#[tokio::test]
#[should_panic(expected = "every change exactly once, in order")]
async fn a_watch_that_forgets_its_revision_fails_the_suite() {
    conformance::discovery::watch_resumes_after_a_reconnect(&WatchFromNowDiscovery::default())
        .await;
}
