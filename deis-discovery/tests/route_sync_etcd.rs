//! The route sync against a private etcd: the router keeps its last table while etcd is
//! stopped and catches up by itself once etcd is back on the same data directory; and a
//! compaction while the sync was away forces a resync that converges.

mod support;

use deis_core::discovery::{keys, Discovery};
use deis_core::memory::MemoryRouter;
use deis_core::router::Router;
use deis_discovery::{EtcdConfig, EtcdDiscovery, RouteSync, RouteSyncOptions};
use std::sync::Arc;
use std::time::Duration;
use support::etcd_process::EtcdCluster;
use support::{eventually, FaultyDiscovery};

fn options() -> RouteSyncOptions {
    RouteSyncOptions {
        first_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(500),
        ..RouteSyncOptions::default()
    }
}

async fn endpoints_of(router: &MemoryRouter, app: &str) -> usize {
    let table = router.current().await.unwrap();
    table.apps.get(app).map_or(0, |route| route.endpoints.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_keeps_its_table_while_etcd_is_down_and_catches_up_after() {
    let mut cluster = EtcdCluster::start(1).await;
    let discovery = Arc::new(
        EtcdDiscovery::connect(EtcdConfig::new(cluster.endpoints()))
            .await
            .unwrap(),
    );
    discovery
        .put(&keys::service("go", "go_v1.web.1"), "10.0.0.1:5000", None)
        .await
        .unwrap();
    let router = MemoryRouter::new();
    let sync = RouteSync::spawn(discovery.clone(), Arc::new(router.clone()), options()).unwrap();
    let status = sync.status();
    assert!(
        eventually(Duration::from_secs(5), || async {
            endpoints_of(&router, "go").await == 1
        })
        .await,
        "the first table arrives"
    );
    discovery
        .put(&keys::service("go", "go_v1.web.2"), "10.0.0.1:5001", None)
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(2), || async {
            endpoints_of(&router, "go").await == 2
        })
        .await
    );
    let before = router.current().await.unwrap();

    cluster.members[0].kill();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        router.current().await.unwrap(),
        before,
        "the router keeps its last table while etcd is down"
    );

    cluster.members[0].start();
    cluster.wait_ready(Duration::from_secs(15)).await;
    let revision = discovery
        .put(&keys::service("go", "go_v1.web.3"), "10.0.0.1:5002", None)
        .await
        .unwrap();
    discovery
        .delete_prefix(&keys::service("go", "go_v1.web.1"))
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async {
            let table = router.current().await.unwrap();
            table.apps.get("go").is_some_and(|route| {
                route.endpoints.contains_key("go_v1.web.3")
                    && !route.endpoints.contains_key("go_v1.web.1")
            })
        })
        .await,
        "changes after the restart arrive with no manual step"
    );
    assert!(status.revision() > revision);
    assert_eq!(status.snapshots(), 1, "resumed from its revision");
    sync.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compaction_while_away_forces_a_resync_that_converges() {
    let cluster = EtcdCluster::start(1).await;
    let etcd = Arc::new(
        EtcdDiscovery::connect(EtcdConfig::new(cluster.endpoints()))
            .await
            .unwrap(),
    );
    etcd.put(&keys::service("a", "a_v1.web.1"), "10.0.0.1:1", None)
        .await
        .unwrap();
    let discovery = FaultyDiscovery::new(etcd.clone());
    // The sync reads its snapshot, then its watch is held back while history moves on.
    discovery.hold_watches(true);
    let router = MemoryRouter::new();
    let sync = RouteSync::spawn(
        Arc::new(discovery.clone()),
        Arc::new(router.clone()),
        options(),
    )
    .unwrap();
    let status = sync.status();
    assert!(
        eventually(Duration::from_secs(5), || async {
            endpoints_of(&router, "a").await == 1
        })
        .await
    );
    etcd.delete_prefix(&keys::services_of("a")).await.unwrap();
    for i in 0..5 {
        etcd.put(
            &keys::service("b", &format!("b_v1.web.{i}")),
            "10.0.0.2:2",
            None,
        )
        .await
        .unwrap();
    }
    let head = etcd.snapshot("/").await.unwrap().revision;
    etcd.compact(head).await.unwrap();
    discovery.hold_watches(false);
    assert!(
        eventually(Duration::from_secs(5), || async {
            endpoints_of(&router, "b").await == 5 && endpoints_of(&router, "a").await == 0
        })
        .await,
        "the resync converges on etcd's table"
    );
    assert_eq!(status.snapshots(), 2, "the compaction caused one resync");
    etcd.put(&keys::service("c", "c_v1.web.1"), "10.0.0.3:3", None)
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(2), || async {
            endpoints_of(&router, "c").await == 1
        })
        .await,
        "after the resync the sync follows live changes"
    );
    sync.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_etcd_keeps_the_table_and_the_sync_goes_on_after() {
    let cluster = EtcdCluster::start(1).await;
    let discovery = Arc::new(
        EtcdDiscovery::connect(EtcdConfig::new(cluster.endpoints()))
            .await
            .unwrap(),
    );
    discovery
        .put(&keys::service("go", "go_v1.web.1"), "10.0.0.1:5000", None)
        .await
        .unwrap();
    let router = MemoryRouter::new();
    let sync = RouteSync::spawn(discovery.clone(), Arc::new(router.clone()), options()).unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async {
            endpoints_of(&router, "go").await == 1
        })
        .await
    );
    let before = router.current().await.unwrap();

    // A hung etcd (connections open, no answers) is not an empty table.
    cluster.members[0].signal("STOP");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(router.current().await.unwrap(), before);
    cluster.members[0].signal("CONT");

    discovery
        .put(&keys::service("go", "go_v1.web.2"), "10.0.0.1:5001", None)
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async {
            endpoints_of(&router, "go").await == 2
        })
        .await,
        "changes after the thaw arrive"
    );
    sync.stop().await;
}
