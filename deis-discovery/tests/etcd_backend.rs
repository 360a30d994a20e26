//! The etcd backend against real etcd: the conformance suite on the shared etcd from
//! `DEIS_TEST_ETCD_ENDPOINTS` (each test in its own key namespace), and compaction and
//! restart behaviour on private etcd processes (so compacting or killing them disturbs no
//! other test).

mod support;

use deis_core::conformance::discovery::run_all;
use deis_core::discovery::{Discovery, WatchEvent, WatchStream};
use deis_core::error::Error;
use deis_discovery::{open_discovery, EtcdConfig, EtcdDiscovery};
use futures::StreamExt;
use std::time::Duration;
use support::etcd_process::EtcdCluster;
use support::{shared_etcd_endpoints, unique_namespace};

async fn shared(name: &str) -> EtcdDiscovery {
    let config = EtcdConfig::new(shared_etcd_endpoints()).with_namespace(unique_namespace(name));
    EtcdDiscovery::connect(config)
        .await
        .expect("connecting to the etcd of DEIS_TEST_ETCD_ENDPOINTS")
}

async fn next(stream: &mut WatchStream) -> Result<WatchEvent, Error> {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("a watch item within 10 s")
        .expect("the watch stream to go on")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_passes_the_discovery_conformance_suite() {
    let discovery = shared("conformance").await;
    assert_eq!(discovery.backend(), "etcd");
    run_all(&discovery).await;
    discovery.delete_prefix("/").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_discovery_reaches_etcd_by_url() {
    let endpoints = shared_etcd_endpoints();
    let hosts: Vec<&str> = endpoints
        .iter()
        .map(|e| e.trim_start_matches("http://").trim_end_matches('/'))
        .collect();
    let namespace = unique_namespace("url");
    let url = format!("etcd://{}?namespace={namespace}", hosts.join(","));
    let discovery = open_discovery(&url).await.unwrap();
    assert_eq!(discovery.backend(), "etcd");
    discovery.put("/deis/k", "v", None).await.unwrap();
    let plain = open_discovery(&endpoints.join(",")).await.unwrap();
    let raw = plain.get(&format!("{namespace}/deis/k")).await.unwrap();
    assert_eq!(raw.map(|kv| kv.value).as_deref(), Some("v"));
    assert_eq!(
        plain.delete_prefix(&format!("{namespace}/")).await.unwrap(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_keep_tests_apart() {
    let a = shared("ns-a").await;
    let b = shared("ns-b").await;
    let start = b.snapshot("/deis/").await.unwrap().revision;
    let mut b_watch = b.watch("/deis/", start).await.unwrap();
    a.put("/deis/services/app/app_v1.web.1", "10.0.0.1:1", None)
        .await
        .unwrap();
    let b_rev = b.put("/deis/mine", "b", None).await.unwrap();
    assert!(b
        .get("/deis/services/app/app_v1.web.1")
        .await
        .unwrap()
        .is_none());
    let snapshot = a.snapshot("/deis/").await.unwrap();
    assert_eq!(snapshot.entries.len(), 1);
    assert_eq!(snapshot.entries[0].key, "/deis/services/app/app_v1.web.1");
    match next(&mut b_watch).await.unwrap() {
        WatchEvent::Put(kv) => {
            assert_eq!(kv.key, "/deis/mine");
            assert_eq!(kv.mod_revision, b_rev);
        }
        other => panic!("b saw a change of another namespace: {other:?}"),
    }
    assert_eq!(b.delete_prefix("/").await.unwrap(), 1);
    assert_eq!(a.delete_prefix("/").await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_key_delete_reaches_the_watch_whole() {
    let discovery = shared("multi-delete").await;
    for i in 0..3 {
        discovery
            .put(
                &format!("/deis/services/app/app_v1.web.{i}"),
                "10.0.0.1:1",
                None,
            )
            .await
            .unwrap();
    }
    let start = discovery.snapshot("/deis/").await.unwrap().revision;
    let mut stream = discovery.watch("/deis/", start).await.unwrap();
    assert_eq!(
        discovery
            .delete_prefix("/deis/services/app/")
            .await
            .unwrap(),
        3
    );
    let mut deleted = Vec::new();
    for _ in 0..3 {
        match next(&mut stream).await.unwrap() {
            WatchEvent::Delete { key, revision } => {
                assert!(revision > start);
                deleted.push(key);
            }
            other => panic!("expected a delete, got {other:?}"),
        }
    }
    assert_eq!(deleted.len(), 3, "every key of one delete is reported");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_larger_than_a_page_is_whole_and_sorted() {
    let discovery = shared("pages").await;
    let count = 1234;
    futures::stream::iter(0..count)
        .for_each_concurrent(64, |i| {
            let discovery = &discovery;
            async move {
                discovery
                    .put(&format!("/deis/many/{i:05}"), &i.to_string(), None)
                    .await
                    .unwrap();
            }
        })
        .await;
    let head = discovery.put("/deis/zz-last", "x", None).await.unwrap();
    let snapshot = discovery.snapshot("/deis/many/").await.unwrap();
    assert!(snapshot.revision >= head);
    let keys: Vec<String> = snapshot.entries.iter().map(|kv| kv.key.clone()).collect();
    let expected: Vec<String> = (0..count).map(|i| format!("/deis/many/{i:05}")).collect();
    assert_eq!(keys, expected, "every key once, in order, across pages");
    assert_eq!(discovery.delete_prefix("/").await.unwrap(), count + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_of_an_expired_lease_is_not_found() {
    let discovery = shared("lease").await;
    let lease = discovery
        .grant_lease(Duration::from_millis(10))
        .await
        .unwrap();
    discovery.keep_alive(lease).await.unwrap();
    discovery.revoke_lease(lease).await.unwrap();
    let error = discovery.keep_alive(lease).await.unwrap_err();
    assert!(error.is_not_found(), "{error:?}");
    let error = discovery.revoke_lease(lease).await.unwrap_err();
    assert!(error.is_not_found(), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watching_a_compacted_revision_fails_with_compacted() {
    let cluster = EtcdCluster::start(1).await;
    let discovery = EtcdDiscovery::connect(EtcdConfig::new(cluster.endpoints()))
        .await
        .unwrap();
    let old = discovery.put("/deis/a", "1", None).await.unwrap();
    let mut live = discovery.watch("/deis/", old).await.unwrap();
    for i in 0..5 {
        discovery
            .put("/deis/a", &i.to_string(), None)
            .await
            .unwrap();
    }
    let head = discovery.snapshot("/deis/").await.unwrap().revision;
    discovery.compact(head).await.unwrap();
    // etcd confirms the watch first and cancels it right after, so the error comes as the
    // stream's first item (the trait allows either form), and the stream then ends.
    let compacted = match discovery.watch("/deis/", old).await {
        Err(error) => error,
        Ok(mut stream) => {
            let error = next(&mut stream).await.unwrap_err();
            assert!(
                stream.next().await.is_none(),
                "the stream ends after Compacted"
            );
            error
        }
    };
    match compacted {
        Error::Compacted { requested, oldest } => {
            assert_eq!(requested, old);
            assert_eq!(oldest, head);
        }
        other => panic!("expected Compacted, got {other:?}"),
    }
    // A watch that was already following keeps going: compaction only bites on resume.
    for _ in 0..5 {
        assert!(matches!(next(&mut live).await, Ok(WatchEvent::Put(_))));
    }
    discovery.put("/deis/b", "after", None).await.unwrap();
    assert_eq!(next(&mut live).await.unwrap().key(), "/deis/b");
    // From the compaction revision on, history is there again.
    let mut fresh = discovery.watch("/deis/", head).await.unwrap();
    assert_eq!(next(&mut fresh).await.unwrap().key(), "/deis/b");
    assert!(matches!(
        discovery.compact(1).await,
        Err(Error::Precondition { .. })
    ));
    assert!(matches!(
        discovery.compact(head + 1000).await,
        Err(Error::Precondition { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_resumes_by_itself_after_etcd_restarts() {
    let mut cluster = EtcdCluster::start(1).await;
    let config = EtcdConfig::new(cluster.endpoints()).with_request_timeout(Duration::from_secs(2));
    let discovery = EtcdDiscovery::connect(config).await.unwrap();
    let start = discovery.put("/deis/before", "1", None).await.unwrap();
    let mut stream = discovery.watch("/deis/", start - 1).await.unwrap();
    assert_eq!(next(&mut stream).await.unwrap().key(), "/deis/before");
    cluster.members[0].kill();
    let error = discovery.get("/deis/before").await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::Unavailable {
                backend: "etcd",
                ..
            }
        ),
        "{error:?}"
    );
    // Nothing arrives while etcd is down, and the stream does not end.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), stream.next())
            .await
            .is_err(),
        "the watch yielded something while etcd was down"
    );
    cluster.members[0].start();
    cluster.wait_ready(Duration::from_secs(15)).await;
    let after = discovery.put("/deis/after", "2", None).await.unwrap();
    match next(&mut stream).await.unwrap() {
        WatchEvent::Put(kv) => {
            assert_eq!(kv.key, "/deis/after", "nothing repeated, nothing lost");
            assert_eq!(kv.mod_revision, after);
        }
        other => panic!("expected the put after the restart, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_cluster_is_unavailable_not_a_hang() {
    let mut cluster = EtcdCluster::start(1).await;
    let config = EtcdConfig::new(cluster.endpoints()).with_request_timeout(Duration::from_secs(1));
    let discovery = EtcdDiscovery::connect(config).await.unwrap();
    cluster.members[0].kill();
    let started = std::time::Instant::now();
    for result in [
        discovery.put("/deis/x", "1", None).await.map(|_| ()),
        discovery.snapshot("/deis/").await.map(|_| ()),
        discovery.watch("/deis/", 1).await.map(|_| ()),
        discovery
            .grant_lease(Duration::from_secs(5))
            .await
            .map(|_| ()),
    ] {
        let error = result.unwrap_err();
        assert!(error.is_retryable(), "{error:?}");
    }
    assert!(started.elapsed() < Duration::from_secs(20));
}
