//! The `Discovery` conformance suite. Each check uses its own key prefix under
//! `/conformance/`, so a shared etcd can run it; [`run_all`] clears that prefix first.

use super::expect_err;
use crate::discovery::{Discovery, DiscoveryExt, WatchEvent, WatchStream};
use crate::error::Error;
use crate::model::{Instance, InstanceState};
use crate::route::{Resolution, RouteTable};
use futures::StreamExt;
use std::future::Future;
use std::time::{Duration, Instant};

const ROOT: &str = "/conformance/";

/// Runs every check of the suite.
pub async fn run_all(discovery: &dyn Discovery) {
    discovery
        .delete_prefix(ROOT)
        .await
        .expect("clearing the test prefix");
    discovery
        .delete_prefix("/deis/")
        .await
        .expect("clearing /deis");
    keys_and_snapshots(discovery).await;
    leases(discovery).await;
    watch_delivers_every_change_in_order(discovery).await;
    watch_resumes_after_a_reconnect(discovery).await;
    route_table_follows_discovery(discovery).await;
}

/// Waits for the next watch event, failing after a generous timeout.
pub async fn next_event(stream: &mut WatchStream) -> WatchEvent {
    let next = with_timeout(Duration::from_secs(10), stream.next()).await;
    match next {
        Some(Some(Ok(event))) => event,
        other => panic!("expected a watch event, got {other:?}"),
    }
}

/// Polls a future to completion or gives up after `limit`, without needing a runtime.
pub async fn with_timeout<F: Future>(limit: Duration, future: F) -> Option<F::Output> {
    let timer = sleep(limit);
    futures::pin_mut!(future);
    futures::pin_mut!(timer);
    match futures::future::select(future, timer).await {
        futures::future::Either::Left((output, _)) => Some(output),
        futures::future::Either::Right(_) => None,
    }
}

/// A runtime-agnostic sleep: a helper thread wakes the task after `duration`.
pub async fn sleep(duration: Duration) {
    let (sender, receiver) = futures::channel::oneshot::channel::<()>();
    std::thread::spawn(move || {
        std::thread::sleep(duration);
        let _ = sender.send(());
    });
    let _ = receiver.await;
}

/// Put, get, delete by key and by prefix, sorted snapshots, increasing revisions.
pub async fn keys_and_snapshots(discovery: &dyn Discovery) {
    let prefix = format!("{ROOT}kv/");
    let first = discovery
        .put(&format!("{prefix}b"), "2", None)
        .await
        .unwrap();
    let second = discovery
        .put(&format!("{prefix}a"), "1", None)
        .await
        .unwrap();
    assert!(second > first, "revisions increase");
    discovery
        .put(&format!("{prefix}c/d"), "3", None)
        .await
        .unwrap();
    discovery
        .put(&format!("{ROOT}kv-other"), "x", None)
        .await
        .unwrap();
    let read = discovery
        .get(&format!("{prefix}a"))
        .await
        .unwrap()
        .expect("key a");
    assert_eq!(read.value, "1");
    assert_eq!(read.mod_revision, second);
    assert_eq!(discovery.get(&format!("{prefix}zzz")).await.unwrap(), None);
    let snapshot = discovery.snapshot(&prefix).await.unwrap();
    let keys: Vec<&str> = snapshot.entries.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            format!("{prefix}a"),
            format!("{prefix}b"),
            format!("{prefix}c/d")
        ]
    );
    assert!(snapshot.revision >= second);
    let updated = discovery
        .put(&format!("{prefix}a"), "one", None)
        .await
        .unwrap();
    assert_eq!(
        discovery
            .get(&format!("{prefix}a"))
            .await
            .unwrap()
            .unwrap()
            .mod_revision,
        updated
    );
    assert_eq!(
        discovery
            .delete_prefix(&format!("{prefix}c/"))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        discovery
            .delete_prefix(&format!("{prefix}c/"))
            .await
            .unwrap(),
        0
    );
    assert_eq!(discovery.delete_prefix(&prefix).await.unwrap(), 2);
    assert!(discovery
        .snapshot(&prefix)
        .await
        .unwrap()
        .entries
        .is_empty());
    assert!(
        discovery
            .get(&format!("{ROOT}kv-other"))
            .await
            .unwrap()
            .is_some(),
        "a sibling prefix is untouched"
    );
}

/// Keys on a lease vanish when it is revoked or not kept alive; keep-alive extends it.
pub async fn leases(discovery: &dyn Discovery) {
    let prefix = format!("{ROOT}lease/");
    let revoked = discovery
        .grant_lease(Duration::from_secs(30))
        .await
        .unwrap();
    discovery
        .put(&format!("{prefix}revoked"), "x", Some(revoked))
        .await
        .unwrap();
    discovery.revoke_lease(revoked).await.unwrap();
    assert_eq!(
        discovery.get(&format!("{prefix}revoked")).await.unwrap(),
        None,
        "revoke deletes the keys"
    );
    expect_err(
        "keep-alive of a revoked lease",
        discovery.keep_alive(revoked).await,
        Error::is_not_found,
    );
    expect_err(
        "put on a revoked lease",
        discovery
            .put(&format!("{prefix}x"), "x", Some(revoked))
            .await,
        Error::is_not_found,
    );

    let kept = discovery.grant_lease(Duration::from_secs(2)).await.unwrap();
    let lapsed = discovery.grant_lease(Duration::from_secs(2)).await.unwrap();
    discovery
        .put(&format!("{prefix}kept"), "k", Some(kept))
        .await
        .unwrap();
    discovery
        .put(&format!("{prefix}lapsed"), "l", Some(lapsed))
        .await
        .unwrap();
    let start = Instant::now();
    let mut lapsed_gone = false;
    while start.elapsed() < Duration::from_secs(12) {
        discovery
            .keep_alive(kept)
            .await
            .expect("keep-alive of a live lease");
        if discovery
            .get(&format!("{prefix}lapsed"))
            .await
            .unwrap()
            .is_none()
        {
            lapsed_gone = true;
            break;
        }
        sleep(Duration::from_millis(250)).await;
    }
    assert!(lapsed_gone, "a lease that is not kept alive expires");
    assert!(
        start.elapsed() >= Duration::from_millis(1500),
        "a lease does not expire before its TTL"
    );
    assert!(
        discovery
            .get(&format!("{prefix}kept"))
            .await
            .unwrap()
            .is_some(),
        "a kept lease keeps its keys"
    );
    discovery.revoke_lease(kept).await.unwrap();
}

/// A watch from a snapshot's revision delivers every later change under its prefix, in
/// order, and nothing outside it.
pub async fn watch_delivers_every_change_in_order(discovery: &dyn Discovery) {
    let prefix = format!("{ROOT}watch/");
    let snapshot = discovery.snapshot(&prefix).await.unwrap();
    let mut stream = discovery.watch(&prefix, snapshot.revision).await.unwrap();
    let mut expected = Vec::new();
    for i in 0..20 {
        let key = format!("{prefix}k{}", i % 5);
        if i % 7 == 6 {
            discovery.delete_prefix(&key).await.unwrap();
            expected.push(("delete", key));
        } else {
            discovery.put(&key, &i.to_string(), None).await.unwrap();
            expected.push(("put", key));
        }
        discovery
            .put(&format!("{ROOT}elsewhere"), "noise", None)
            .await
            .unwrap();
    }
    let mut last = snapshot.revision;
    for (kind, key) in &expected {
        let event = next_event(&mut stream).await;
        assert!(event.revision() > last, "events arrive in revision order");
        last = event.revision();
        assert_eq!(event.key(), key);
        match (kind, &event) {
            (&"put", WatchEvent::Put(_)) | (&"delete", WatchEvent::Delete { .. }) => {}
            _ => panic!("expected a {kind} of {key}, got {event:?}"),
        }
    }
}

/// Dropping a watch and watching again from the last revision seen loses nothing and
/// repeats nothing, even for changes made while no watch was open.
pub async fn watch_resumes_after_a_reconnect(discovery: &dyn Discovery) {
    let prefix = format!("{ROOT}resume/");
    let start = discovery.snapshot(&prefix).await.unwrap().revision;
    let mut stream = discovery.watch(&prefix, start).await.unwrap();
    for i in 0..5 {
        discovery
            .put(&format!("{prefix}{i}"), "before", None)
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    for _ in 0..3 {
        let event = next_event(&mut stream).await;
        seen.push((event.key().to_string(), event.revision()));
    }
    drop(stream);
    for i in 5..10 {
        discovery
            .put(&format!("{prefix}{i}"), "while away", None)
            .await
            .unwrap();
    }
    let resume_from = seen.last().unwrap().1;
    let mut stream = discovery.watch(&prefix, resume_from).await.unwrap();
    for i in 10..12 {
        discovery
            .put(&format!("{prefix}{i}"), "after", None)
            .await
            .unwrap();
    }
    while seen.len() < 12 {
        match with_timeout(Duration::from_secs(3), stream.next()).await {
            Some(Some(Ok(event))) => seen.push((event.key().to_string(), event.revision())),
            Some(Some(Err(error))) => panic!("watch failed after a reconnect: {error}"),
            Some(None) | None => break,
        }
    }
    let keys: Vec<String> = seen.iter().map(|(k, _)| k.clone()).collect();
    let expected: Vec<String> = (0..12).map(|i| format!("{prefix}{i}")).collect();
    assert_eq!(keys, expected, "every change exactly once, in order");
}

/// The Deis layout read back as a route table: publishing, domains, withdrawal.
pub async fn route_table_follows_discovery(discovery: &dyn Discovery) {
    discovery
        .put("/deis/platform/domain", "conformance.test", None)
        .await
        .unwrap();
    let lease = discovery
        .grant_lease(Duration::from_secs(30))
        .await
        .unwrap();
    let instance = Instance {
        app: "rt-app".into(),
        process_type: "web".into(),
        num: 1,
        release: 3,
        state: InstanceState::Up,
        endpoint: Some("127.0.0.1:5001".into()),
    };
    discovery
        .publish_instance(&instance, "127.0.0.1:5001", lease)
        .await
        .unwrap();
    let tenth = Instance {
        num: 10,
        endpoint: Some("127.0.0.1:5010".into()),
        ..instance.clone()
    };
    discovery
        .publish_instance(&tenth, "127.0.0.1:5010", lease)
        .await
        .unwrap();
    discovery.set_domain("www.rt.test", "rt-app").await.unwrap();
    discovery
        .set_domain("www.rt.test.au", "rt-app")
        .await
        .unwrap();
    let snapshot = discovery.snapshot("/deis/").await.unwrap();
    let mut table = RouteTable::from_snapshot(&snapshot);
    match table.resolve("rt-app.conformance.test") {
        Resolution::App(app, route) => {
            assert_eq!(app, "rt-app");
            assert_eq!(
                route.endpoints.get("rt-app_v3.web.1").map(String::as_str),
                Some("127.0.0.1:5001")
            );
        }
        Resolution::Unknown => panic!("the published app must resolve"),
    }
    assert!(matches!(
        table.resolve("www.rt.test"),
        Resolution::App("rt-app", _)
    ));
    let mut stream = discovery.watch("/deis/", snapshot.revision).await.unwrap();
    discovery.withdraw_instance(&instance).await.unwrap();
    table.apply_event(&next_event(&mut stream).await);
    let left: Vec<&String> = table.apps["rt-app"].endpoints.keys().collect();
    assert_eq!(
        left,
        ["rt-app_v3.web.10"],
        "a withdrawn instance leaves the table, and only that one"
    );
    discovery.remove_domain("www.rt.test").await.unwrap();
    table.apply_event(&next_event(&mut stream).await);
    assert!(
        matches!(
            table.resolve("www.rt.test.au"),
            Resolution::App("rt-app", _)
        ),
        "removing a domain leaves the longer ones"
    );
    assert_eq!(table.resolve("www.rt.test"), Resolution::Unknown);
    discovery
        .forget_app("rt-app", &["www.rt.test.au".to_string()])
        .await
        .unwrap();
    while table.apps.contains_key("rt-app") {
        table.apply_event(&next_event(&mut stream).await);
    }
    assert_eq!(
        discovery.platform_domain().await.unwrap().as_deref(),
        Some("conformance.test")
    );
    discovery.revoke_lease(lease).await.unwrap();
}
