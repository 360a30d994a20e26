//! Time for one container instance to become healthy: `apply` of a one-`web` formation
//! (busybox httpd in an image imported from this machine's `/bin/busybox`) until `apply`
//! returns (the instance passed its health check) and until its endpoint answers HTTP 200.
//!
//! - Docker scheduler (feature `docker`): a fresh container per round.
//! - Swarm scheduler (feature `swarm`, this engine must be a Swarm manager): a fresh service
//!   per round; Swarm gates on the container HEALTHCHECK, so the number includes one
//!   health-check interval.
//!
//! Run with `cargo bench -p deis-scheduler --all-features --bench container_health`; it
//! prints one line per round and the median, and fails if a round takes longer than 60 s.
//! Everything it creates (containers, services, network, image) is removed at the end.

use deis_core::scheduler::{AppSpec, Artifact, Scheduler};
use deis_scheduler::{DockerConfig, DockerScheduler, MemoryLogSink};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ROUNDS: u64 = 5;
const BOUND: Duration = Duration::from_secs(60);

fn import_image(image: &str) {
    let root = tempfile::tempdir().expect("temp dir");
    let bin = root.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    std::fs::create_dir_all(root.path().join("www")).expect("www");
    std::fs::create_dir_all(root.path().join("tmp")).expect("tmp");
    std::fs::write(root.path().join("www/index.html"), "hello\n").expect("index");
    std::fs::copy("/bin/busybox", bin.join("busybox")).expect("busybox-static is installed");
    for applet in ["sh", "httpd", "nc", "wget"] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).expect("applet");
    }
    let tar = root.path().with_extension("tar");
    let packed = Command::new("tar")
        .arg("-C")
        .arg(root.path())
        .args(["-cf"])
        .arg(&tar)
        .arg(".")
        .status()
        .expect("tar");
    assert!(packed.success());
    let imported = Command::new("docker")
        .arg("import")
        .arg(&tar)
        .arg(image)
        .output()
        .expect("the docker CLI");
    let _ = std::fs::remove_file(&tar);
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
}

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

fn spec(image: &str, app: &str, release: u64) -> AppSpec {
    let mut spec = AppSpec::new(app, release);
    spec.artifact = Artifact::Image { name: image.into() };
    spec.processes.insert(
        "web".into(),
        "exec httpd -f -p 0.0.0.0:$PORT -h /www".into(),
    );
    spec.formation.insert("web".into(), 1);
    spec
}

/// One round: apply, then ask until it answers, then remove. Returns (apply, answering).
async fn round(scheduler: &dyn Scheduler, spec: &AppSpec) -> (Duration, Duration) {
    let started = Instant::now();
    let instances = scheduler.apply(spec).await.expect("apply");
    let applied = started.elapsed();
    let endpoint = instances[0].endpoint.clone().expect("an endpoint");
    while !answers_200(&endpoint).await {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let answering = started.elapsed();
    scheduler.remove(&spec.app).await.expect("remove");
    (applied, answering)
}

async fn rounds(name: &str, scheduler: &dyn Scheduler, image: &str) {
    let mut times = Vec::new();
    for n in 1..=ROUNDS {
        let spec = spec(image, &format!("hbench{n}"), n);
        let (applied, answering) = tokio::time::timeout(BOUND, round(scheduler, &spec))
            .await
            .expect("a round finishes within its bound");
        println!(
            "{name} round {n}: apply returned (healthy) after {:.0} ms; HTTP 200 after {:.0} ms",
            applied.as_secs_f64() * 1000.0,
            answering.as_secs_f64() * 1000.0
        );
        times.push(applied);
    }
    times.sort();
    println!(
        "{name}: median time for one instance to become healthy: {:.0} ms",
        times[times.len() / 2].as_secs_f64() * 1000.0
    );
}

#[tokio::main]
async fn main() {
    let id = std::process::id();
    let image = format!("deis-health-bench:{id}");
    import_image(&image);
    let docker = DockerScheduler::connect_with_sink(
        DockerConfig {
            owner: format!("deis-bench-{id}"),
            name_prefix: format!("b{id}-"),
            drain_delay: Duration::ZERO,
            stop_grace: Duration::from_secs(2),
            ..DockerConfig::default()
        },
        Arc::new(MemoryLogSink::new(1000)),
    )
    .await
    .expect("the Docker Engine answers");
    println!("health: one web instance (busybox httpd), apply until healthy, {ROUNDS} rounds");
    rounds("docker", &docker, &image).await;
    #[cfg(feature = "swarm")]
    swarm_rounds(id, &image).await;
    let _ = Command::new("docker").args(["rmi", "-f", &image]).output();
}

#[cfg(feature = "swarm")]
async fn swarm_rounds(id: u32, image: &str) {
    use deis_scheduler::{SwarmConfig, SwarmScheduler};
    let network = format!("deis-bench-{id}");
    let config = SwarmConfig {
        owner: format!("deis-bench-{id}"),
        name_prefix: format!("b{id}-"),
        network: network.clone(),
        drain_delay: Duration::ZERO,
        stop_grace: Duration::from_secs(2),
        health_interval: Duration::from_millis(500),
        poll_interval: Duration::from_millis(250),
        ..SwarmConfig::default()
    };
    let swarm = SwarmScheduler::connect_with_sink(config, Arc::new(MemoryLogSink::new(1000)))
        .await
        .expect("this engine is a Swarm manager");
    println!("(swarm: HEALTHCHECK every 500 ms)");
    rounds("swarm", &swarm, image).await;
    drop(swarm);
    // Swarm stops the tasks of removed services in the background; the network and the
    // image can only go after them.
    let label = format!("label=io.deis.owner=deis-bench-{id}");
    for _ in 0..150 {
        let running = Command::new("docker")
            .args(["ps", "-aq", "--filter", &label])
            .output()
            .expect("docker");
        if running.stdout.iter().all(|b| b.is_ascii_whitespace()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for _ in 0..50 {
        let out = Command::new("docker")
            .args(["network", "rm", &network])
            .output()
            .expect("docker");
        if out.status.success() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
