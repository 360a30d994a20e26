//! Route propagation latency: from an etcd write of `/deis/services/<app>/<job>` to the
//! `Router::apply` call (on a timestamping in-memory router) of a table that contains it, and
//! likewise for removals, through `RouteSync` over `EtcdDiscovery`.
//!
//! Uses the etcd of `DEIS_TEST_ETCD_ENDPOINTS` (in a private key namespace) or, when unset,
//! starts a private one on loopback. Prints p50/p99/max for 200 adds and 200 removes, from
//! the moment the write is sent and from the moment etcd acknowledged it, once with writes
//! back to back (the sync's coalescing interval shows) and once with writes 20 ms apart, and
//! exits non-zero when a p99 from sending misses the 100 ms target. A last run goes through
//! the built-in router itself: from sending the write to the first request the router
//! answers by it (an endpoint added: the first 200 from it; removed: the first request
//! that no longer reaches it), with requests sent back to back on one keep-alive connection.
//!
//! Run: `cargo bench -p deis-discovery --features etcd --bench propagation`.

#[path = "../tests/support/etcd_process.rs"]
#[allow(dead_code)]
mod etcd_process;

use async_trait::async_trait;
use deis_core::discovery::{keys, Discovery};
use deis_core::error::Result;
use deis_core::memory::MemoryRouter;
use deis_core::route::RouteTable;
use deis_core::router::Router;
use deis_discovery::{EtcdConfig, EtcdDiscovery, RouteSync, RouteSyncOptions};
use deis_router::{BuiltinRouter, ListenerKind, ListenerOptions, RouterConfig};
use futures::StreamExt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

const APP: &str = "bench";
const ROUNDS: usize = 200;
const TARGET_P99: Duration = Duration::from_millis(100);

/// What the bench waits for: a job present in (or absent from) an applied table.
#[derive(Debug, Clone)]
struct Target {
    job: String,
    present: bool,
}

/// A router that notes when it was first given a table meeting the current target.
#[derive(Debug, Default)]
struct StampingRouter {
    inner: MemoryRouter,
    target: Mutex<Option<Target>>,
    hit: Mutex<Option<Instant>>,
    notify: Notify,
}

impl StampingRouter {
    fn expect(&self, target: Target) {
        *self.hit.lock().unwrap() = None;
        *self.target.lock().unwrap() = Some(target);
    }

    /// When the target was met, or `None` after 5 s.
    async fn wait(&self) -> Option<Instant> {
        loop {
            let notified = self.notify.notified();
            if let Some(at) = *self.hit.lock().unwrap() {
                return Some(at);
            }
            tokio::time::timeout(Duration::from_secs(5), notified)
                .await
                .ok()?;
        }
    }
}

#[async_trait]
impl Router for StampingRouter {
    fn backend(&self) -> &'static str {
        "stamping"
    }

    async fn apply(&self, table: &RouteTable) -> Result<()> {
        let now = Instant::now();
        let met = self.target.lock().unwrap().as_ref().is_some_and(|target| {
            let has = table
                .apps
                .get(APP)
                .is_some_and(|route| route.endpoints.contains_key(&target.job));
            has == target.present
        });
        if met {
            let mut hit = self.hit.lock().unwrap();
            if hit.is_none() {
                *hit = Some(now);
                self.notify.notify_one();
            }
        }
        self.inner.apply(table).await
    }

    async fn current(&self) -> Result<RouteTable> {
        self.inner.current().await
    }
}

/// Latencies of one kind of change, from sending the write and from its acknowledgement.
#[derive(Default)]
struct Samples {
    from_send: Vec<Duration>,
    from_ack: Vec<Duration>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn report(name: &str, samples: &mut Samples) -> Duration {
    let mut p99_send = Duration::ZERO;
    for (label, values) in [
        ("from send", &mut samples.from_send),
        ("from ack ", &mut samples.from_ack),
    ] {
        values.sort();
        let p99 = percentile(values, 99.0);
        if label == "from send" {
            p99_send = p99;
        }
        println!(
            "{name:<8} {label}  n={:<4} p50={:>8.3} ms  p99={:>8.3} ms  max={:>8.3} ms",
            values.len(),
            percentile(values, 50.0).as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            values.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        );
    }
    p99_send
}

/// Adds then removes `ROUNDS` endpoints one at a time, `gap` apart, timing each.
async fn measure(discovery: Arc<EtcdDiscovery>, gap: Duration) -> (Samples, Samples) {
    let router = Arc::new(StampingRouter::default());
    let sync = RouteSync::spawn(
        discovery.clone(),
        router.clone(),
        RouteSyncOptions::default(),
    )
    .expect("default options are valid");
    let status = sync.status();
    while status.applies() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut adds = Samples::default();
    let mut removes = Samples::default();
    for round in 0..2 * ROUNDS {
        let present = round < ROUNDS;
        // Removals go newest first: deleting `web.1` by prefix would also take `web.10`…
        let num = if present {
            round
        } else {
            2 * ROUNDS - 1 - round
        };
        let job = format!("{APP}_v1.web.{num}");
        let key = keys::service(APP, &job);
        router.expect(Target {
            job: job.clone(),
            present,
        });
        let sent = Instant::now();
        if present {
            let port = 10_000 + round;
            discovery
                .put(&key, &format!("127.0.0.1:{port}"), None)
                .await
                .expect("an etcd put");
        } else {
            discovery.delete_prefix(&key).await.expect("an etcd delete");
        }
        let acked = Instant::now();
        let Some(applied) = router.wait().await else {
            let table = router.current().await.unwrap_or_default();
            panic!(
                "round {round}: {job} did not {} the router within 5 s (router at revision {}, \
                 {} endpoints)",
                if present { "reach" } else { "leave" },
                table.revision,
                table.apps.get(APP).map_or(0, |route| route.endpoints.len())
            );
        };
        let samples = if present { &mut adds } else { &mut removes };
        samples
            .from_send
            .push(applied.saturating_duration_since(sent));
        samples
            .from_ack
            .push(applied.saturating_duration_since(acked));
        if !gap.is_zero() {
            tokio::time::sleep(gap).await;
        }
    }
    sync.stop().await;
    (adds, removes)
}

/// An endpoint answering every request with 200 `ok`.
async fn ok_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a backend port");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut stream = BufReader::new(stream);
                let mut line = String::new();
                loop {
                    line.clear();
                    match stream.read_line(&mut line).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) if line == "\r\n" => {
                            let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n";
                            if stream.get_mut().write_all(answer).await.is_err() {
                                return;
                            }
                        }
                        Ok(_) => {}
                    }
                }
            });
        }
    });
    addr
}

/// Sends one GET on `stream` and returns the status of the answer (whose body is read).
async fn status_of(stream: &mut BufReader<TcpStream>, host: &str) -> u16 {
    let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
    stream
        .get_mut()
        .write_all(request.as_bytes())
        .await
        .expect("a request to the router");
    let mut line = String::new();
    stream.read_line(&mut line).await.expect("a status line");
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("an HTTP status line");
    let mut length = 0usize;
    loop {
        line.clear();
        stream.read_line(&mut line).await.expect("a header line");
        if line == "\r\n" {
            break;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().expect("a length");
        }
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.expect("the body");
    status
}

/// Adds then removes one endpoint `ROUNDS` times through a real `BuiltinRouter` fed by the
/// sync, timing from the write to the first request answered the new way.
async fn measure_through_router(discovery: Arc<EtcdDiscovery>) -> (Samples, Samples) {
    const DOMAIN: &str = "bench.test";
    discovery
        .put(keys::PLATFORM_DOMAIN, DOMAIN, None)
        .await
        .expect("an etcd put");
    let router = BuiltinRouter::new(RouterConfig::default()).expect("a router");
    let listening = router
        .listen(ListenerOptions::new(
            ListenerKind::Http,
            "127.0.0.1:0".parse().expect("an address"),
        ))
        .await
        .expect("a router listener");
    let sync = RouteSync::spawn(
        discovery.clone(),
        Arc::new(router.clone()),
        RouteSyncOptions::default(),
    )
    .expect("default options are valid");
    let backend = ok_backend().await.to_string();
    let host = format!("{APP}.{DOMAIN}");
    let mut client = BufReader::new(
        TcpStream::connect(listening.local_addr())
            .await
            .expect("a connection to the router"),
    );
    let mut adds = Samples::default();
    let mut removes = Samples::default();
    for round in 0..2 * ROUNDS {
        let present = round % 2 == 0;
        let key = keys::service(APP, &format!("{APP}_v1.web.1"));
        let sent = Instant::now();
        if present {
            discovery
                .put(&key, &backend, None)
                .await
                .expect("an etcd put");
        } else {
            discovery.delete_prefix(&key).await.expect("an etcd delete");
        }
        let acked = Instant::now();
        loop {
            let reached = status_of(&mut client, &host).await == 200;
            if reached == present {
                break;
            }
            assert!(
                sent.elapsed() < Duration::from_secs(5),
                "round {round}: the router did not follow the write within 5 s"
            );
        }
        let routed = Instant::now();
        let samples = if present { &mut adds } else { &mut removes };
        samples
            .from_send
            .push(routed.saturating_duration_since(sent));
        samples
            .from_ack
            .push(routed.saturating_duration_since(acked));
        // Spaced like the second run above, so each change is timed on its own.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sync.stop().await;
    listening.shutdown(Duration::from_secs(1)).await;
    (adds, removes)
}

/// The baseline without the sync: from a put to its event on a plain watch.
async fn measure_watch(discovery: &EtcdDiscovery) -> Samples {
    let start = discovery
        .snapshot("/deis/")
        .await
        .expect("a snapshot")
        .revision;
    let mut stream = discovery
        .watch("/deis/", start)
        .await
        .expect("an etcd watch");
    let mut samples = Samples::default();
    for round in 0..ROUNDS {
        let key = keys::service("watch", &format!("watch_v1.web.{round}"));
        let sent = Instant::now();
        let revision = discovery
            .put(&key, "127.0.0.1:1", None)
            .await
            .expect("an etcd put");
        let acked = Instant::now();
        loop {
            let event = tokio::time::timeout(Duration::from_secs(5), stream.next())
                .await
                .expect("a watch event within 5 s")
                .expect("the watch goes on")
                .expect("a watch event");
            if event.revision() >= revision {
                break;
            }
        }
        let seen = Instant::now();
        samples.from_send.push(seen.saturating_duration_since(sent));
        samples.from_ack.push(seen.saturating_duration_since(acked));
    }
    samples
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let p99 = runtime.block_on(async {
        let mut _private = None;
        let (endpoints, origin) = match std::env::var("DEIS_TEST_ETCD_ENDPOINTS") {
            Ok(value) if !value.trim().is_empty() => (
                value.split(',').map(|e| e.trim().to_string()).collect(),
                "DEIS_TEST_ETCD_ENDPOINTS",
            ),
            _ => {
                let cluster = etcd_process::EtcdCluster::start(1).await;
                let endpoints = cluster.endpoints();
                _private = Some(cluster);
                (endpoints, "a private etcd started by the bench")
            }
        };
        let namespace = format!("/bench-propagation-{}", std::process::id());
        println!("etcd: {endpoints:?} ({origin}), namespace {namespace}");
        let discovery = Arc::new(
            EtcdDiscovery::connect(EtcdConfig::new(endpoints).with_namespace(namespace))
                .await
                .expect("connecting to etcd"),
        );
        println!("baseline, put to watch event (no route sync):");
        report("put", &mut measure_watch(&discovery).await);
        let mut worst = Duration::ZERO;
        for (mode, gap) in [
            ("back-to-back writes", Duration::ZERO),
            ("writes 20 ms apart", Duration::from_millis(20)),
        ] {
            let (mut adds, mut removes) = measure(discovery.clone(), gap).await;
            println!("route sync, {mode}:");
            worst = worst
                .max(report("add", &mut adds))
                .max(report("remove", &mut removes));
        }
        let (mut adds, mut removes) = measure_through_router(discovery.clone()).await;
        println!("built-in router, write to the first request routed by it (20 ms apart):");
        worst = worst
            .max(report("add", &mut adds))
            .max(report("remove", &mut removes));
        discovery
            .delete_prefix("/")
            .await
            .expect("cleaning the namespace");
        worst
    });
    let verdict = if p99 < TARGET_P99 { "met" } else { "MISSED" };
    println!(
        "target p99 < {} ms from send: {verdict}",
        TARGET_P99.as_millis()
    );
    if p99 >= TARGET_P99 {
        std::process::exit(1);
    }
}
