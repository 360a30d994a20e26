use crate::common::{eventually, Fixture};
use deis_core::discovery::{keys, Discovery, DynDiscovery, WatchEvent};
use deis_core::memory::{MemoryDiscovery, MemoryScheduler};
use deis_core::scheduler::{DynScheduler, Scheduler};
use deis_scheduler::{Publisher, PublisherConfig};
use futures::StreamExt;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Events only: resyncs are a minute apart, so whatever happens fast came from an event.
fn events_only() -> PublisherConfig {
    PublisherConfig {
        lease_ttl: Duration::from_secs(10),
        resync_interval: Duration::from_secs(60),
        retry_delay: Duration::from_millis(100),
    }
}

async fn published(discovery: &MemoryDiscovery, app: &str) -> BTreeMap<String, String> {
    discovery
        .snapshot(&keys::services_of(app))
        .await
        .unwrap()
        .entries
        .into_iter()
        .map(|kv| (kv.key, kv.value))
        .collect()
}

async fn expect_published(discovery: &MemoryDiscovery, app: &str, want: &BTreeMap<String, String>) {
    let ok = eventually(Duration::from_secs(3), || async {
        published(discovery, app).await == *want
    })
    .await;
    assert!(
        ok,
        "discovery holds {:?}, want {want:?}",
        published(discovery, app).await
    );
}

/// The keys the scheduler's up, routable instances should have.
async fn expected(scheduler: &dyn Scheduler, app: &str) -> BTreeMap<String, String> {
    scheduler
        .instances(app)
        .await
        .unwrap()
        .into_iter()
        .filter(|i| i.is_routable() && i.state == deis_core::model::InstanceState::Up)
        .map(|i| (keys::service(app, &i.job_name()), i.endpoint.unwrap()))
        .collect()
}

fn start(fixture: &Fixture, config: PublisherConfig) -> (Arc<MemoryDiscovery>, Publisher) {
    let discovery = Arc::new(MemoryDiscovery::new());
    let scheduler: DynScheduler = Arc::new(fixture.scheduler.clone());
    let dyn_discovery: DynDiscovery = discovery.clone();
    let publisher = Publisher::spawn(scheduler, dyn_discovery, config);
    (discovery, publisher)
}

#[tokio::test]
async fn publishes_up_instances_and_withdraws_on_scale_down_and_crash() {
    let fixture = Fixture::new();
    let (discovery, publisher) = start(&fixture, events_only());
    let scheduler = &fixture.scheduler;
    scheduler
        .apply(&fixture.spec("pub", 1, &[("web", 2), ("worker", 1)]))
        .await
        .unwrap();
    let two = expected(scheduler, "pub").await;
    assert_eq!(two.len(), 2, "workers are not routable");
    expect_published(&discovery, "pub", &two).await;

    scheduler
        .apply(&fixture.spec("pub", 1, &[("web", 1), ("worker", 1)]))
        .await
        .unwrap();
    let one = expected(scheduler, "pub").await;
    assert_eq!(one.len(), 1);
    expect_published(&discovery, "pub", &one).await;

    // A crash withdraws at once (the restart follows at once too, so watch for the delete);
    // the restarted instance is published again.
    let revision = discovery.snapshot(keys::SERVICES).await.unwrap().revision;
    let mut changes = discovery
        .watch(&keys::services_of("pub"), revision)
        .await
        .unwrap();
    let pid = scheduler.pid("pub", "web", 1).unwrap();
    killpg(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    let key = one.keys().next().unwrap().clone();
    let change = tokio::time::timeout(Duration::from_secs(3), changes.next())
        .await
        .expect("a change within 3 s")
        .expect("the watch goes on")
        .unwrap();
    assert_eq!(
        change,
        WatchEvent::Delete {
            key,
            revision: revision + 1
        },
        "a crashed instance is withdrawn first"
    );
    expect_published(&discovery, "pub", &one).await;

    // A new release replaces the key; removing the app withdraws everything.
    scheduler
        .apply(&fixture.spec("pub", 2, &[("web", 1)]))
        .await
        .unwrap();
    let v2 = expected(scheduler, "pub").await;
    assert!(v2.keys().all(|k| k.ends_with("pub_v2.web.1")));
    expect_published(&discovery, "pub", &v2).await;
    scheduler.remove("pub").await.unwrap();
    expect_published(&discovery, "pub", &BTreeMap::new()).await;
    publisher.shutdown().await;
}

#[tokio::test]
async fn a_resync_repairs_deleted_and_stale_keys() {
    let fixture = Fixture::new();
    let (discovery, publisher) = start(
        &fixture,
        PublisherConfig {
            resync_interval: Duration::from_millis(200),
            ..events_only()
        },
    );
    let scheduler = &fixture.scheduler;
    scheduler
        .apply(&fixture.spec("heal", 1, &[("web", 1)]))
        .await
        .unwrap();
    let want = expected(scheduler, "heal").await;
    expect_published(&discovery, "heal", &want).await;

    let key = want.keys().next().unwrap().clone();
    discovery.delete_prefix(&key).await.unwrap();
    discovery
        .put(&keys::service("heal", "heal_v0.web.7"), "127.0.0.1:1", None)
        .await
        .unwrap();
    discovery
        .put(
            &keys::service("ghost", "ghost_v3.web.1"),
            "127.0.0.1:2",
            None,
        )
        .await
        .unwrap();
    expect_published(&discovery, "heal", &want).await;
    expect_published(&discovery, "ghost", &BTreeMap::new()).await;
    assert!(publisher.resyncs() > 0);
    publisher.shutdown().await;
}

#[tokio::test]
async fn a_lost_lease_is_replaced_and_everything_republished() {
    let fixture = Fixture::new();
    let (discovery, publisher) = start(
        &fixture,
        PublisherConfig {
            lease_ttl: Duration::from_millis(900),
            ..events_only()
        },
    );
    let scheduler = &fixture.scheduler;
    scheduler
        .apply(&fixture.spec("lease", 1, &[("web", 2)]))
        .await
        .unwrap();
    let want = expected(scheduler, "lease").await;
    expect_published(&discovery, "lease", &want).await;
    // Outliving several TTLs shows the keep-alive works.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(published(&discovery, "lease").await, want);

    let first = publisher.lease().unwrap();
    discovery.revoke_lease(first).await.unwrap();
    assert!(published(&discovery, "lease").await.is_empty());
    expect_published(&discovery, "lease", &want).await;
    assert_ne!(publisher.lease(), Some(first), "a new lease was granted");
    publisher.shutdown().await;
}

#[tokio::test]
async fn shutdown_stops_the_loop_and_revokes_the_lease() {
    let fixture = Fixture::new();
    let (discovery, publisher) = start(&fixture, events_only());
    let scheduler = &fixture.scheduler;
    scheduler
        .apply(&fixture.spec("bye", 1, &[("web", 1)]))
        .await
        .unwrap();
    let want = expected(scheduler, "bye").await;
    expect_published(&discovery, "bye", &want).await;
    let lease = publisher.lease().unwrap();
    tokio::time::timeout(Duration::from_secs(5), publisher.shutdown())
        .await
        .expect("shutdown is prompt");
    assert!(published(&discovery, "bye").await.is_empty());
    assert!(
        discovery.keep_alive(lease).await.is_err(),
        "the lease is gone"
    );
    // Nothing publishes any more.
    scheduler
        .apply(&fixture.spec("bye", 2, &[("web", 1)]))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(published(&discovery, "bye").await.is_empty());
    scheduler.shutdown().await;
}

#[tokio::test]
async fn instances_without_endpoints_are_never_published() {
    let memory = MemoryScheduler::new();
    let discovery = Arc::new(MemoryDiscovery::new());
    discovery
        .put(&keys::service("mem", "mem_v1.web.9"), "127.0.0.1:3", None)
        .await
        .unwrap();
    let publisher = Publisher::spawn(
        Arc::new(memory.clone()),
        discovery.clone(),
        PublisherConfig {
            resync_interval: Duration::from_millis(100),
            ..events_only()
        },
    );
    publisher.watch_app("mem");
    let mut spec = deis_core::scheduler::AppSpec::new("mem", 1);
    spec.artifact = deis_core::scheduler::Artifact::Image { name: "x".into() };
    spec.formation.insert("web".into(), 2);
    memory.apply(&spec).await.unwrap();
    expect_published(&discovery, "mem", &BTreeMap::new()).await;
    let resyncs = publisher.resyncs();
    publisher.resync_now();
    assert!(
        eventually(Duration::from_secs(2), || async {
            publisher.resyncs() > resyncs
        })
        .await
    );
    assert!(published(&discovery, "mem").await.is_empty());
    publisher.shutdown().await;
}

#[tokio::test]
async fn withdrawing_web_1_leaves_web_10_published() {
    // `delete_prefix("/deis/services/app/app_v1.web.1")` also matches `…web.10`; the
    // publisher writes those back at once (resyncs are a minute apart here).
    let fixture = Fixture::new();
    let (discovery, publisher) = start(&fixture, events_only());
    let scheduler = &fixture.scheduler;
    scheduler
        .apply(&fixture.spec("many", 1, &[("web", 11)]))
        .await
        .unwrap();
    let all = expected(scheduler, "many").await;
    assert_eq!(all.len(), 11);
    expect_published(&discovery, "many", &all).await;
    let pid = scheduler.pid("many", "web", 1).unwrap();
    killpg(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    let ten = keys::service("many", "many_v1.web.10");
    let eleven = keys::service("many", "many_v1.web.11");
    // Watch web.1 go and come back; web.10 and web.11 must be there at the end.
    let back = eventually(Duration::from_secs(3), || async {
        scheduler.restarts("many", "web", 1) == Some(1)
            && published(&discovery, "many").await == all
    })
    .await;
    assert!(back, "{:?}", published(&discovery, "many").await);
    assert!(discovery.get(&ten).await.unwrap().is_some());
    assert!(discovery.get(&eleven).await.unwrap().is_some());
    publisher.shutdown().await;
}
