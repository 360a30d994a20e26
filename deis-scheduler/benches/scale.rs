//! Scale benchmark of the local scheduler: a tiny web app (busybox httpd) from 0 to 100
//! instances, timed until all 100 answer HTTP 200 on their ports, then back to 0; then the
//! same with the publisher, timed until all 100 are in (in-memory) discovery, and a
//! health-gated rolling deploy of the 100 to a new release.
//!
//! Run with `cargo bench -p deis-scheduler --bench scale`; it prints one line per round and
//! fails if a round takes longer than its bound (60 s).

use deis_core::discovery::{keys, Discovery};
use deis_core::memory::MemoryDiscovery;
use deis_core::model::Formation;
use deis_core::scheduler::{AppSpec, Artifact, Scheduler};
use deis_scheduler::{LocalConfig, LocalScheduler, MemoryLogSink, Publisher, PublisherConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const INSTANCES: u32 = 100;
const ROUNDS: usize = 3;
const BOUND: Duration = Duration::from_secs(60);

async fn answers_200(endpoint: &str) -> bool {
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(endpoint).await.ok()?;
        stream
            .write_all(b"GET /index.html HTTP/1.0\r\nHost: bench\r\n\r\n")
            .await
            .ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.ok()?;
        Some(answer.starts_with(b"HTTP/1.0 200") || answer.starts_with(b"HTTP/1.1 200"))
    };
    tokio::time::timeout(Duration::from_secs(2), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

fn spec(location: &str, count: u32) -> AppSpec {
    release(location, count, 1)
}

fn release(location: &str, count: u32, version: u64) -> AppSpec {
    let mut spec = AppSpec::new("bench", version);
    spec.artifact = Artifact::Slug {
        location: location.to_string(),
    };
    spec.processes.insert(
        "web".into(),
        "exec busybox httpd -f -p 127.0.0.1:$PORT -h www".into(),
    );
    spec.formation = Formation::from([("web".to_string(), count)]);
    spec.env.insert("DEIS_APP".into(), "bench".into());
    spec.env
        .insert("DEIS_RELEASE".into(), format!("v{version}"));
    spec
}

async fn round(scheduler: &LocalScheduler, location: &str) -> (Duration, Duration, Duration) {
    let started = Instant::now();
    let applied = scheduler
        .apply(&spec(location, INSTANCES))
        .await
        .expect("scale to 100");
    let applied_after = started.elapsed();
    assert_eq!(applied.len(), INSTANCES as usize);
    let endpoints: Vec<String> = applied.iter().filter_map(|i| i.endpoint.clone()).collect();
    assert_eq!(endpoints.len(), INSTANCES as usize);
    loop {
        let checks = endpoints.iter().map(|e| answers_200(e));
        let answered = futures::future::join_all(checks).await;
        if answered.iter().all(|ok| *ok) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let serving_after = started.elapsed();
    let stopping = Instant::now();
    let after = scheduler
        .apply(&spec(location, 0))
        .await
        .expect("scale to 0");
    assert!(after.is_empty());
    (applied_after, serving_after, stopping.elapsed())
}

/// Scale to 100 with a publisher attached, until discovery holds all 100; then roll all 100
/// to release 2 (each replacement healthy before its predecessor stops).
async fn publish_and_roll(scheduler: &LocalScheduler, location: &str) {
    let discovery = Arc::new(MemoryDiscovery::new());
    let publisher = Publisher::spawn(
        Arc::new(scheduler.clone()),
        discovery.clone(),
        PublisherConfig::default(),
    );
    let started = Instant::now();
    scheduler
        .apply(&release(location, INSTANCES, 1))
        .await
        .expect("scale to 100");
    loop {
        let published = discovery
            .snapshot(&keys::services_of("bench"))
            .await
            .expect("snapshot")
            .entries
            .len();
        if published == INSTANCES as usize {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!(
        "publish: all {INSTANCES} in discovery {:.0} ms after apply began",
        started.elapsed().as_secs_f64() * 1000.0
    );
    let rolling = Instant::now();
    let rolled = scheduler
        .apply(&release(location, INSTANCES, 2))
        .await
        .expect("roll to v2");
    assert!(rolled.iter().all(|i| i.release == 2));
    println!(
        "rolling deploy of {INSTANCES} instances to v2 (health-gated): {:.0} ms",
        rolling.elapsed().as_secs_f64() * 1000.0
    );
    scheduler
        .apply(&release(location, 0, 2))
        .await
        .expect("scale to 0");
    publisher.shutdown().await;
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let slug = dir.path().join("slug");
    std::fs::create_dir_all(slug.join("www")).expect("slug dir");
    std::fs::write(slug.join("www/index.html"), "hello\n").expect("index");
    let mut config = LocalConfig::new(dir.path().join("data"));
    config.drain_delay = Duration::ZERO;
    let scheduler = LocalScheduler::with_sink(config, Arc::new(MemoryLogSink::new(1000)));
    let location = slug.to_string_lossy().into_owned();
    println!("scale: web 0 -> {INSTANCES} (busybox httpd) on the local scheduler");
    let mut serving = Vec::new();
    for n in 1..=ROUNDS {
        let (applied, all_serving, stopped) =
            tokio::time::timeout(BOUND, round(&scheduler, &location))
                .await
                .expect("a round finishes within its bound");
        println!(
            "round {n}: apply returned (all healthy) after {:.0} ms; all {INSTANCES} answered \
             HTTP 200 after {:.0} ms; scale to 0 took {:.0} ms",
            applied.as_secs_f64() * 1000.0,
            all_serving.as_secs_f64() * 1000.0,
            stopped.as_secs_f64() * 1000.0
        );
        serving.push(all_serving);
    }
    serving.sort();
    println!(
        "median time until all {INSTANCES} answer: {:.0} ms (target < 5000 ms)",
        serving[serving.len() / 2].as_secs_f64() * 1000.0
    );
    tokio::time::timeout(BOUND, publish_and_roll(&scheduler, &location))
        .await
        .expect("publishing and rolling finish within their bound");
    scheduler.shutdown().await;
}
