//! Host routing, default answers, load balancing, retries, forwarded headers, churn.

use crate::common::*;
use deis_core::route::RouteTable;
use deis_core::Router;
use deis_router::{BuiltinRouter, ListenerKind, ListenerOptions, RouterConfig};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test]
async fn passes_the_router_conformance_suite() {
    let router = BuiltinRouter::new(RouterConfig::default()).unwrap();
    assert_eq!(router.backend(), "builtin");
    deis_core::conformance::router::run_all(&router, "127.0.0.1:9").await;
}

#[tokio::test]
async fn routes_by_host_and_custom_domain() {
    let go = upstream("go").await;
    let rb = upstream("rb").await;
    let mut table = table(1, &[("go", &[go.address()]), ("rb", &[rb.address()])]);
    table
        .apps
        .get_mut("rb")
        .unwrap()
        .domains
        .insert("www.rb.test".into());
    let (_router, listening) = router_with(&table).await;
    let port = listening.local_addr().port();
    let url = format!("http://127.0.0.1:{port}/hello?x=1");

    let (status, body) = curl(&["-H", "Host: go.example.test", &url]).await;
    assert_eq!(status, 200);
    let reply = echoed(&body);
    assert_eq!(reply["backend"], "go");
    assert_eq!(reply["path"], "/hello");
    assert_eq!(seen_header(&reply, "host").unwrap(), "go.example.test");

    let (status, body) = curl(&["-H", "Host: WWW.RB.TEST.", &url]).await;
    assert_eq!(status, 200);
    assert_eq!(echoed(&body)["backend"], "rb");

    let resolve = format!("rb.example.test:{port}:127.0.0.1");
    let (status, body) = curl(&[
        "--resolve",
        &resolve,
        &format!("http://rb.example.test:{port}/"),
    ])
    .await;
    assert_eq!(status, 200);
    assert_eq!(echoed(&body)["backend"], "rb");
}

#[tokio::test]
async fn answers_404_503_and_health_check() {
    let mut table = table(1, &[("empty", &[])]);
    // An app with a domain but no endpoint is still an app.
    table
        .apps
        .get_mut("empty")
        .unwrap()
        .domains
        .insert("empty.custom.test".into());
    let (_router, listening) = router_with(&table).await;
    let base = format!("http://127.0.0.1:{}", listening.local_addr().port());
    let (status, _) = curl(&["-H", "Host: nope.example.test", &format!("{base}/")]).await;
    assert_eq!(status, 404);
    let (status, body) = curl(&[
        "-H",
        "Host: nope.example.test",
        &format!("{base}/health-check"),
    ])
    .await;
    assert_eq!((status, body.as_str()), (200, "OK\n"));
    let (status, _) = curl(&[&format!("{base}/health-check")]).await;
    assert_eq!(status, 200);
    let (status, _) = curl(&["-H", "Host: empty.example.test", &format!("{base}/")]).await;
    assert_eq!(status, 503);
    let (status, _) = curl(&[
        "-H",
        "Host: empty.custom.test",
        &format!("{base}/health-check"),
    ])
    .await;
    assert_eq!(status, 503, "an app's own /health-check goes to the app");
}

#[tokio::test]
async fn balances_across_three_backends() {
    let backends = [
        upstream("a").await,
        upstream("b").await,
        upstream("c").await,
    ];
    let endpoints: Vec<String> = backends.iter().map(Upstream::address).collect();
    let (_router, listening) = router_with(&table(1, &[("go", &endpoints)])).await;
    let client = client(listening.local_addr(), &["go.example.test"]);
    let url = format!("http://go.example.test:{}/", listening.local_addr().port());
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..30 {
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let backend = response.headers()["x-backend"]
            .to_str()
            .unwrap()
            .to_string();
        *seen.entry(backend).or_default() += 1;
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen.values().all(|n| *n >= 5), "uneven: {seen:?}");
}

#[tokio::test]
async fn sends_fewer_requests_to_a_busy_endpoint() {
    let fast = upstream("fast").await;
    let slow = slow_upstream("slow", Duration::from_millis(200)).await;
    let (_router, listening) =
        router_with(&table(1, &[("go", &[fast.address(), slow.address()])])).await;
    let addr = listening.local_addr();
    let deadline = Instant::now() + Duration::from_millis(1000);
    let mut workers = Vec::new();
    for _ in 0..4 {
        let client = client(addr, &["go.example.test"]);
        let url = format!("http://go.example.test:{}/", addr.port());
        workers.push(tokio::spawn(async move {
            let mut seen: BTreeMap<String, usize> = BTreeMap::new();
            while Instant::now() < deadline {
                let response = client.get(&url).send().await.unwrap();
                assert_eq!(response.status(), 200);
                let backend = response.headers()["x-backend"]
                    .to_str()
                    .unwrap()
                    .to_string();
                *seen.entry(backend).or_default() += 1;
            }
            seen
        }));
    }
    let mut total: BTreeMap<String, usize> = BTreeMap::new();
    for worker in workers {
        for (backend, n) in worker.await.unwrap() {
            *total.entry(backend).or_default() += n;
        }
    }
    let (fast, slow) = (total["fast"], total.get("slow").copied().unwrap_or(0));
    // Round robin would split evenly; least outstanding keeps the slow one at about one
    // request in flight.
    assert!(fast > 3 * slow.max(1), "fast {fast}, slow {slow}");
}

#[tokio::test]
async fn retries_a_failed_connect_on_a_live_endpoint() {
    let live = upstream("live").await;
    let dead = dead_address().await;
    let (router, listening) =
        router_with(&table(1, &[("go", &[dead.clone(), live.address()])])).await;
    let client = client(listening.local_addr(), &["go.example.test"]);
    let url = format!("http://go.example.test:{}/", listening.local_addr().port());
    for _ in 0..10 {
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-backend"], "live");
    }
    // POST bodies are retried too: a refused connect never read them.
    let response = client.post(&url).body("payload").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(echoed(&response.text().await.unwrap())["body_len"], 7);
    assert!(router
        .metrics_text()
        .contains("deis_router_upstream_connect_retries_total "));
    assert!(!router
        .metrics_text()
        .contains("deis_router_upstream_connect_retries_total 0\n"));

    // Only dead endpoints: 502.
    router.apply(&table(2, &[("go", &[dead])])).await.unwrap();
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 502);
}

#[tokio::test]
async fn times_out_slow_upstreams_with_504() {
    let slow = upstream("slow").await;
    let config = RouterConfig {
        response_header_timeout: Duration::from_millis(600),
        ..RouterConfig::default()
    };
    let (router, listening) = router(config).await;
    router
        .apply(&table(1, &[("go", &[slow.address()])]))
        .await
        .unwrap();
    let base = format!("http://127.0.0.1:{}", listening.local_addr().port());
    let (status, _) = curl(&["-H", "Host: go.example.test", &format!("{base}/sleep/2000")]).await;
    assert_eq!(status, 504);
    let (status, _) = curl(&["-H", "Host: go.example.test", &format!("{base}/sleep/10")]).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn sets_forwarded_headers_and_drops_hop_by_hop_ones() {
    let go = upstream("go").await;
    let (_router, listening) = router_with(&table(1, &[("go", &[go.address()])])).await;
    let port = listening.local_addr().port();
    let (status, body) = curl(&[
        "-H",
        "Host: go.example.test",
        "-H",
        "X-Forwarded-For: 203.0.113.9",
        "-H",
        "Connection: keep-alive, X-Secret",
        "-H",
        "X-Secret: hop",
        "-H",
        "Keep-Alive: timeout=5",
        "-H",
        "X-Kept: end-to-end",
        &format!("http://127.0.0.1:{port}/"),
    ])
    .await;
    assert_eq!(status, 200);
    let reply = echoed(&body);
    assert_eq!(
        seen_header(&reply, "x-forwarded-for").unwrap(),
        "203.0.113.9, 127.0.0.1"
    );
    assert_eq!(seen_header(&reply, "x-forwarded-proto").unwrap(), "http");
    assert_eq!(
        seen_header(&reply, "x-forwarded-port").unwrap(),
        port.to_string()
    );
    assert_eq!(seen_header(&reply, "x-kept").unwrap(), "end-to-end");
    assert_eq!(seen_header(&reply, "x-secret"), None);
    assert_eq!(seen_header(&reply, "keep-alive"), None);
    assert_eq!(reply["version"], "HTTP/1.1");
}

#[tokio::test]
async fn serves_metrics_on_the_admin_listener() {
    let go = upstream("go").await;
    let (router, listening) =
        router_with(&table(7, &[("go", &[go.address()]), ("idle", &[])])).await;
    let admin = router
        .listen(ListenerOptions::new(
            ListenerKind::Admin,
            "127.0.0.1:0".parse().unwrap(),
        ))
        .await
        .unwrap();
    let base = format!("http://127.0.0.1:{}", listening.local_addr().port());
    for _ in 0..3 {
        assert_eq!(
            curl(&["-H", "Host: go.example.test", &format!("{base}/")])
                .await
                .0,
            200
        );
    }
    assert_eq!(
        curl(&["-H", "Host: idle.example.test", &format!("{base}/")])
            .await
            .0,
        503
    );
    assert_eq!(
        curl(&["-H", "Host: nobody.test", &format!("{base}/")])
            .await
            .0,
        404
    );
    let admin_url = format!("http://127.0.0.1:{}", admin.local_addr().port());
    let (status, text) = curl(&[&format!("{admin_url}/metrics")]).await;
    assert_eq!(status, 200);
    assert!(
        text.contains("# TYPE deis_router_requests_total counter"),
        "{text}"
    );
    assert!(
        text.contains("deis_router_requests_total{app=\"go\",class=\"2xx\"} 3\n"),
        "{text}"
    );
    assert!(
        text.contains("deis_router_requests_total{app=\"idle\",class=\"5xx\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("deis_router_requests_total{app=\"_default\",class=\"4xx\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("deis_router_upstream_latency_seconds_count{app=\"go\"} 3\n"),
        "{text}"
    );
    assert!(
        text.contains("deis_router_upstream_latency_seconds_bucket{app=\"go\",le=\"+Inf\"} 3\n")
    );
    assert!(
        text.contains("deis_router_route_table_revision 7\n"),
        "{text}"
    );
    let age_line = text
        .lines()
        .find(|l| l.starts_with("deis_router_route_table_age_seconds "))
        .unwrap();
    let age: f64 = age_line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((0.0..60.0).contains(&age));
    assert_eq!(curl(&[&format!("{admin_url}/health-check")]).await.0, 200);
    assert_eq!(curl(&[&format!("{admin_url}/other")]).await.0, 404);
    admin.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn keeps_serving_the_last_table_and_rejects_bad_ones() {
    let go = upstream("go").await;
    let good = table(1, &[("go", &[go.address()])]);
    let (router, listening) = router_with(&good).await;
    let mut bad = table(2, &[("go", &[go.address()])]);
    bad.certificates.insert(
        "www.go.test".into(),
        deis_core::route::CertificatePair {
            cert: "not a certificate".into(),
            key: "SECRET-KEY-MATERIAL".into(),
        },
    );
    let error = router.apply(&bad).await.unwrap_err();
    assert!(
        error.to_string().contains("certificates.www.go.test"),
        "{error}"
    );
    assert!(!error.to_string().contains("SECRET"), "{error}");
    let mut bad_endpoint = RouteTable::default();
    bad_endpoint.apps.insert("x".into(), Default::default());
    bad_endpoint
        .apps
        .get_mut("x")
        .unwrap()
        .endpoints
        .insert("x.1".into(), "nonsense".into());
    assert!(router.apply(&bad_endpoint).await.is_err());
    assert_eq!(router.current().await.unwrap(), good);
    let base = format!("http://127.0.0.1:{}", listening.local_addr().port());
    assert_eq!(
        curl(&["-H", "Host: go.example.test", &format!("{base}/")])
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn requests_in_flight_finish_when_their_endpoint_is_removed() {
    let old = upstream("old").await;
    let new = upstream("new").await;
    let (router, listening) = router_with(&table(1, &[("go", &[old.address()])])).await;
    let addr = listening.local_addr();
    let client = client(addr, &["go.example.test"]);
    let url = format!("http://go.example.test:{}/sleep/300", addr.port());
    let in_flight = tokio::spawn({
        let client = client.clone();
        async move { client.get(&url).send().await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    router
        .apply(&table(2, &[("go", &[new.address()])]))
        .await
        .unwrap();
    let response = in_flight.await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-backend"], "old");
    let url = format!("http://go.example.test:{}/", addr.port());
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.headers()["x-backend"], "new");
}

#[tokio::test]
async fn a_dropped_listening_handle_keeps_serving() {
    let go = upstream("go").await;
    let (_router, listening) = router_with(&table(1, &[("go", &[go.address()])])).await;
    let port = listening.local_addr().port();
    drop(listening);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let base = format!("http://127.0.0.1:{port}/");
    assert_eq!(curl(&["-H", "Host: go.example.test", &base]).await.0, 200);
}

#[tokio::test]
async fn shuts_down_gracefully() {
    let go = upstream("go").await;
    let (_router, listening) = router_with(&table(1, &[("go", &[go.address()])])).await;
    let addr = listening.local_addr();
    let client = client(addr, &["go.example.test"]);
    let url = format!("http://go.example.test:{}/sleep/300", addr.port());
    let in_flight = tokio::spawn({
        let client = client.clone();
        async move { client.get(&url).send().await.map(|r| r.status()) }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    listening.shutdown(Duration::from_secs(5)).await;
    assert_eq!(in_flight.await.unwrap().unwrap(), 200);
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn zero_errors_while_the_table_changes_ten_times_a_second() {
    let backends = [
        upstream("a").await,
        upstream("b").await,
        upstream("c").await,
    ];
    let all: Vec<String> = backends.iter().map(Upstream::address).collect();
    let sets: Vec<Vec<String>> = vec![
        vec![all[0].clone(), all[1].clone()],
        vec![all[1].clone(), all[2].clone()],
        vec![all[2].clone()],
        all.clone(),
        vec![all[0].clone()],
    ];
    let (router, listening) = router_with(&table(1, &[("go", &sets[0])])).await;
    let addr = listening.local_addr();
    // Twenty applies, 100 ms apart, while eight clients send requests back to back; counted
    // rather than timed so that a loaded machine slows the test down instead of failing it.
    const APPLIES: u64 = 20;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = tokio::spawn({
        let router = router.clone();
        let sets = sets.clone();
        let done = done.clone();
        async move {
            for applied in 0..APPLIES {
                let set = &sets[(applied as usize) % sets.len()];
                let mut next = table(applied + 2, &[("go", set), ("other", &[])]);
                if applied % 2 == 0 {
                    next.apps.remove("other");
                }
                router.apply(&next).await.unwrap();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            done.store(true, Ordering::SeqCst);
        }
    });
    let ok = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let client = client(addr, &["go.example.test"]);
        let ok = ok.clone();
        let done = done.clone();
        let url = format!("http://go.example.test:{}/", addr.port());
        workers.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            while !done.load(Ordering::SeqCst) {
                match client.get(&url).send().await {
                    Ok(response) if response.status() == 200 => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(response) => failures.push(format!("status {}", response.status())),
                    Err(error) => failures.push(format!("error {error}")),
                }
            }
            failures
        }));
    }
    churn.await.unwrap();
    let mut failures = Vec::new();
    for worker in workers {
        failures.extend(worker.await.unwrap());
    }
    let ok = ok.load(Ordering::Relaxed);
    assert!(
        failures.is_empty(),
        "{} failures, first: {:?}",
        failures.len(),
        failures.first()
    );
    assert!(
        ok >= APPLIES * 8,
        "only {ok} requests during {APPLIES} applies"
    );
}
