//! A 3-member etcd cluster started by the test itself: publishing and watching go on after
//! one member is killed with SIGKILL.

mod support;

use deis_core::discovery::{Discovery, DiscoveryExt, WatchEvent};
use deis_core::model::{Instance, InstanceState};
use deis_discovery::{EtcdConfig, EtcdDiscovery};
use futures::StreamExt;
use std::time::{Duration, Instant};
use support::etcd_process::EtcdCluster;

/// How many watches run through the kill.
const WATCHES: usize = 8;

fn instance(num: u32) -> Instance {
    Instance {
        app: "mesh".into(),
        process_type: "web".into(),
        num,
        release: 1,
        state: InstanceState::Up,
        endpoint: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_member_cluster_survives_losing_a_member() {
    let started = Instant::now();
    let mut cluster = EtcdCluster::start(3).await;
    let config = EtcdConfig::new(cluster.endpoints());
    let discovery = EtcdDiscovery::connect(config).await.unwrap();

    let lease = discovery.grant_lease(Duration::from_secs(3)).await.unwrap();
    let before = discovery
        .publish_instance(&instance(1), "127.0.0.1:5001", lease)
        .await
        .unwrap();
    // Several watches: the client balances them over the members, so some are very likely
    // served by the member about to die and must resume on another by themselves.
    let mut streams = Vec::new();
    for _ in 0..WATCHES {
        streams.push(discovery.watch("/deis/services/", before).await.unwrap());
    }
    discovery
        .publish_instance(&instance(2), "127.0.0.1:5002", lease)
        .await
        .unwrap();
    for stream in &mut streams {
        let event = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("an event before the kill")
            .unwrap()
            .unwrap();
        assert_eq!(event.key(), "/deis/services/mesh/mesh_v1.web.2");
    }

    // Kill the first member, the one a balanced client is as likely as any to be using.
    cluster.members[0].kill();

    // Keep-alives go on: the lease (3 s TTL) outlives three more seconds.
    let keep_until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < keep_until {
        discovery
            .keep_alive(lease)
            .await
            .expect("keep-alive with a member down");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        discovery
            .get("/deis/services/mesh/mesh_v1.web.1")
            .await
            .expect("a read with a member down")
            .is_some(),
        "the kept lease still holds its keys"
    );

    // Puts and the watch go on.
    let third = discovery
        .publish_instance(&instance(3), "127.0.0.1:5003", lease)
        .await
        .expect("a write with a member down");
    for stream in &mut streams {
        let event = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("every watch delivers after the kill")
            .unwrap()
            .unwrap();
        match event {
            WatchEvent::Put(kv) => {
                assert_eq!(kv.key, "/deis/services/mesh/mesh_v1.web.3");
                assert_eq!(kv.mod_revision, third, "nothing lost, nothing repeated");
            }
            other => panic!("expected the third instance, got {other:?}"),
        }
    }
    let snapshot = discovery.snapshot("/deis/services/").await.unwrap();
    assert_eq!(snapshot.entries.len(), 3);

    // A new watch from the old revision replays from the surviving members.
    let mut replay = discovery.watch("/deis/services/", before).await.unwrap();
    let keys: Vec<String> = replay
        .by_ref()
        .take(2)
        .map(|item| item.unwrap().key().to_string())
        .collect()
        .await;
    assert_eq!(
        keys,
        [
            "/deis/services/mesh/mesh_v1.web.2",
            "/deis/services/mesh/mesh_v1.web.3"
        ]
    );
    discovery.revoke_lease(lease).await.unwrap();
    assert!(discovery
        .snapshot("/deis/services/")
        .await
        .unwrap()
        .entries
        .is_empty());
    drop(cluster);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}
