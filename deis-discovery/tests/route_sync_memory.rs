//! The route sync against the in-memory discovery and router: changes reach the router, a
//! compaction forces a resync that converges, an outage keeps the router's last table, a
//! refused table is offered again, and shutdown stops the sync.

mod support;

use async_trait::async_trait;
use deis_core::discovery::{keys, Discovery};
use deis_core::error::{Error, Result};
use deis_core::memory::{MemoryDiscovery, MemoryRouter};
use deis_core::route::{Resolution, RouteTable};
use deis_core::router::Router;
use deis_discovery::{RouteSync, RouteSyncOptions};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::{eventually, FaultyDiscovery};

const SOON: Duration = Duration::from_secs(1);

fn fast_options() -> RouteSyncOptions {
    RouteSyncOptions {
        first_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        ..RouteSyncOptions::default()
    }
}

async fn endpoint(router: &MemoryRouter, app: &str, job: &str) -> Option<String> {
    let table = router.current().await.unwrap();
    table.apps.get(app)?.endpoints.get(job).cloned()
}

#[tokio::test]
async fn published_endpoints_reach_the_router_and_withdrawn_ones_leave() {
    let discovery = MemoryDiscovery::new();
    discovery
        .put(keys::PLATFORM_DOMAIN, "deis.test", None)
        .await
        .unwrap();
    discovery
        .put(&keys::service("old", "old_v1.web.1"), "10.0.0.9:5000", None)
        .await
        .unwrap();
    let router = MemoryRouter::new();
    let sync = RouteSync::spawn(
        Arc::new(discovery.clone()),
        Arc::new(router.clone()),
        fast_options(),
    )
    .unwrap();
    let status = sync.status();
    assert!(
        eventually(SOON, || async {
            endpoint(&router, "old", "old_v1.web.1").await.is_some()
        })
        .await,
        "the snapshot reaches the router"
    );

    let key = keys::service("go", "go_v2.web.1");
    let revision = discovery.put(&key, "10.0.0.1:5000", None).await.unwrap();
    assert!(
        eventually(SOON, || async {
            endpoint(&router, "go", "go_v2.web.1").await.as_deref() == Some("10.0.0.1:5000")
        })
        .await,
        "a published endpoint appears within 1 s"
    );
    let table = router.current().await.unwrap();
    assert!(matches!(
        table.resolve("go.deis.test"),
        Resolution::App("go", _)
    ));
    assert!(table.revision >= revision);
    assert!(eventually(SOON, || async { status.revision() >= revision }).await);
    assert!(status.last_updated().is_some());
    assert_eq!(status.snapshots(), 1);
    assert!(status.is_following());

    discovery.delete_prefix(&key).await.unwrap();
    assert!(
        eventually(SOON, || async {
            !router.current().await.unwrap().apps.contains_key("go")
        })
        .await,
        "a withdrawn endpoint disappears within 1 s"
    );
    sync.stop().await;
    assert!(!status.is_following());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_changes_is_coalesced_and_complete() {
    let discovery = MemoryDiscovery::new();
    let router = MemoryRouter::new();
    let options = fast_options();
    let min_interval = options.min_apply_interval;
    let sync = RouteSync::spawn(
        Arc::new(discovery.clone()),
        Arc::new(router.clone()),
        options,
    )
    .unwrap();
    assert!(eventually(SOON, || async { sync.status().applies() >= 1 }).await);
    let before = router.changes_applied();
    let started = std::time::Instant::now();
    for i in 0..300 {
        discovery
            .put(
                &keys::service("burst", &format!("burst_v1.web.{i}")),
                &format!("10.0.1.{}:{}", i % 250, 5000 + i),
                None,
            )
            .await
            .unwrap();
        // Let the sync run between writes, as it would between writes of other processes.
        tokio::task::yield_now().await;
    }
    assert!(
        eventually(Duration::from_secs(2), || async {
            router
                .current()
                .await
                .unwrap()
                .apps
                .get("burst")
                .is_some_and(|route| route.endpoints.len() == 300)
        })
        .await,
        "every change of the burst arrives"
    );
    let elapsed = started.elapsed();
    let applied = router.changes_applied() - before;
    let allowed = (elapsed.as_micros() / min_interval.as_micros()) as u64 + 2;
    assert!(
        applied <= allowed && applied < 300,
        "300 changes in {elapsed:?} took {applied} router updates; at most {allowed} \
         (one per {min_interval:?}) were allowed"
    );
    sync.stop().await;
}

#[tokio::test]
async fn a_compaction_forces_a_resync_that_converges() {
    let memory = MemoryDiscovery::with_history(4);
    let discovery = FaultyDiscovery::new(Arc::new(memory.clone()));
    let router = MemoryRouter::new();
    memory
        .put(&keys::service("a", "a_v1.web.1"), "10.0.0.1:1", None)
        .await
        .unwrap();
    let sync = RouteSync::spawn(
        Arc::new(discovery.clone()),
        Arc::new(router.clone()),
        fast_options(),
    )
    .unwrap();
    let status = sync.status();
    assert!(
        eventually(SOON, || async {
            endpoint(&router, "a", "a_v1.web.1").await.is_some()
        })
        .await
    );

    // Discovery goes away; meanwhile history moves on and is compacted.
    discovery.set_down(true);
    assert!(eventually(SOON, || async { !status.is_following() }).await);
    memory.delete_prefix(&keys::services_of("a")).await.unwrap();
    for i in 0..10 {
        memory
            .put(
                &keys::service("b", &format!("b_v1.web.{i}")),
                "10.0.0.2:2",
                None,
            )
            .await
            .unwrap();
    }
    let head = memory.snapshot("/").await.unwrap().revision;
    memory.compact(head);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        endpoint(&router, "a", "a_v1.web.1").await.is_some(),
        "the router keeps its last table while discovery is down"
    );
    assert!(status.failures() > 0, "the outage is counted");

    discovery.set_down(false);
    assert!(
        eventually(Duration::from_secs(2), || async {
            let table = router.current().await.unwrap();
            !table.apps.contains_key("a")
                && table.apps.get("b").is_some_and(|r| r.endpoints.len() == 10)
        })
        .await,
        "after the resync the router has discovery's table"
    );
    assert_eq!(status.snapshots(), 2, "exactly one resync");
    let expected = RouteTable::from_snapshot(&memory.snapshot("/deis/").await.unwrap());
    assert_eq!(router.current().await.unwrap().apps, expected.apps);
    assert!(status.is_following());
    sync.stop().await;
}

#[tokio::test]
async fn an_outage_keeps_the_table_and_the_sync_catches_up() {
    let memory = MemoryDiscovery::new();
    let discovery = FaultyDiscovery::new(Arc::new(memory.clone()));
    let router = MemoryRouter::new();
    memory
        .put(&keys::service("a", "a_v1.web.1"), "10.0.0.1:1", None)
        .await
        .unwrap();
    let sync = RouteSync::spawn(
        Arc::new(discovery.clone()),
        Arc::new(router.clone()),
        fast_options(),
    )
    .unwrap();
    let status = sync.status();
    assert!(
        eventually(SOON, || async {
            endpoint(&router, "a", "a_v1.web.1").await.is_some()
        })
        .await
    );
    let applied = status.applies();
    discovery.set_down(true);
    memory
        .put(&keys::service("a", "a_v1.web.2"), "10.0.0.1:2", None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let kept = router.current().await.unwrap();
    assert_eq!(kept.apps["a"].endpoints.len(), 1, "the last table is kept");
    assert_eq!(status.applies(), applied, "nothing was pushed while down");
    let failures = status.failures();
    assert!(failures >= 2, "retries while down: {failures}");
    assert!(failures < 15, "backoff grows: {failures} retries in 0.5 s");
    discovery.set_down(false);
    assert!(
        eventually(SOON, || async {
            endpoint(&router, "a", "a_v1.web.2").await.is_some()
        })
        .await,
        "the change made during the outage arrives"
    );
    assert_eq!(
        status.snapshots(),
        1,
        "resumed from the revision, no resync"
    );
    sync.stop().await;
}

/// A router that refuses its first `refusals` tables.
#[derive(Debug)]
struct RefusingRouter {
    inner: MemoryRouter,
    refusals: AtomicU64,
}

#[async_trait]
impl Router for RefusingRouter {
    fn backend(&self) -> &'static str {
        "refusing"
    }

    async fn apply(&self, table: &RouteTable) -> Result<()> {
        let left = self.refusals.load(Ordering::SeqCst);
        if left > 0 {
            self.refusals.store(left - 1, Ordering::SeqCst);
            return Err(Error::backend("refusing", "configuration check failed"));
        }
        self.inner.apply(table).await
    }

    async fn current(&self) -> Result<RouteTable> {
        self.inner.current().await
    }
}

#[tokio::test]
async fn a_refused_table_is_offered_again() {
    let discovery = MemoryDiscovery::new();
    discovery
        .put(&keys::service("a", "a_v1.web.1"), "10.0.0.1:1", None)
        .await
        .unwrap();
    let inner = MemoryRouter::new();
    let router = Arc::new(RefusingRouter {
        inner: inner.clone(),
        refusals: AtomicU64::new(3),
    });
    let sync =
        RouteSync::spawn(Arc::new(discovery.clone()), router.clone(), fast_options()).unwrap();
    let status = sync.status();
    assert!(
        eventually(Duration::from_secs(2), || async {
            endpoint(&inner, "a", "a_v1.web.1").await.is_some()
        })
        .await,
        "the table arrives once the router accepts it"
    );
    assert_eq!(router.refusals.load(Ordering::SeqCst), 0);
    assert_eq!(status.failures(), 3);
    sync.stop().await;
}

#[tokio::test]
async fn changes_outside_the_routes_move_the_revision_without_a_router_update() {
    let discovery = MemoryDiscovery::new();
    discovery
        .put(&keys::service("a", "a_v1.web.1"), "10.0.0.1:1", None)
        .await
        .unwrap();
    let router = MemoryRouter::new();
    let sync = RouteSync::spawn(
        Arc::new(discovery.clone()),
        Arc::new(router.clone()),
        fast_options(),
    )
    .unwrap();
    let status = sync.status();
    assert!(eventually(SOON, || async { status.applies() == 1 }).await);
    let changes = router.changes_applied();
    let mut revision = 0;
    for i in 0..5 {
        revision = discovery
            .put(
                &keys::component_setting("builder", "image"),
                &format!("builder:v{i}"),
                None,
            )
            .await
            .unwrap();
    }
    assert!(
        eventually(SOON, || async { status.revision() == revision }).await,
        "the sync is current with the latest revision"
    );
    assert_eq!(router.changes_applied(), changes, "no router update");
    assert_eq!(status.applies(), 1);
    discovery
        .put(&keys::service("a", "a_v1.web.2"), "10.0.0.1:2", None)
        .await
        .unwrap();
    assert!(
        eventually(SOON, || async {
            endpoint(&router, "a", "a_v1.web.2").await.is_some()
        })
        .await
    );
    assert_eq!(status.applies(), 2);
    sync.stop().await;
}

/// A router that takes its time over every table (an nginx reload, say).
#[derive(Debug, Default)]
struct SlowRouter {
    inner: MemoryRouter,
    applying: AtomicU64,
}

#[async_trait]
impl Router for SlowRouter {
    fn backend(&self) -> &'static str {
        "slow"
    }

    async fn apply(&self, table: &RouteTable) -> Result<()> {
        self.applying.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.inner.apply(table).await
    }

    async fn current(&self) -> Result<RouteTable> {
        self.inner.current().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_falls_behind_resyncs_and_converges() {
    let discovery = MemoryDiscovery::new();
    let router = Arc::new(SlowRouter::default());
    let sync =
        RouteSync::spawn(Arc::new(discovery.clone()), router.clone(), fast_options()).unwrap();
    let status = sync.status();
    assert!(eventually(SOON, || async { status.applies() == 1 }).await);
    // While the router is busy with one table, more changes arrive than a watch buffers.
    discovery
        .put(
            &keys::service("lag", "lag_v1.web.first"),
            "10.0.0.1:1",
            None,
        )
        .await
        .unwrap();
    assert!(
        eventually(SOON, || async {
            router.applying.load(Ordering::SeqCst) == 2
        })
        .await
    );
    let count = 5000;
    for i in 0..count {
        discovery
            .put(
                &keys::service("lag", &format!("lag_v1.web.{i}")),
                "10.0.0.1:2",
                None,
            )
            .await
            .unwrap();
    }
    assert!(
        eventually(Duration::from_secs(10), || async {
            router
                .current()
                .await
                .unwrap()
                .apps
                .get("lag")
                .is_some_and(|route| route.endpoints.len() == count + 1)
        })
        .await,
        "the router converges on discovery's table"
    );
    assert!(
        status.snapshots() >= 2,
        "falling behind the watch buffer forced a resync"
    );
    sync.stop().await;
}

#[tokio::test]
async fn a_stopped_sync_changes_nothing_more() {
    let discovery = MemoryDiscovery::new();
    let router = MemoryRouter::new();
    let sync = RouteSync::spawn(
        Arc::new(discovery.clone()),
        Arc::new(router.clone()),
        fast_options(),
    )
    .unwrap();
    assert!(eventually(SOON, || async { sync.status().applies() >= 1 }).await);
    sync.stop().await;
    discovery
        .put(&keys::service("late", "late_v1.web.1"), "10.0.0.1:1", None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(router.current().await.unwrap().apps.is_empty());
}

#[tokio::test]
async fn invalid_options_are_refused_up_front() {
    let options = RouteSyncOptions {
        prefix: "deis".into(),
        ..RouteSyncOptions::default()
    };
    let result = RouteSync::spawn(
        Arc::new(MemoryDiscovery::new()),
        Arc::new(MemoryRouter::new()),
        options,
    );
    assert!(matches!(result, Err(Error::Invalid(_))));
}
