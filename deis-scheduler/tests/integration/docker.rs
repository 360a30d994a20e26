//! The Docker scheduler against this machine's Docker Engine, with an image the test builds
//! from files on the machine (`docker import` of a root with busybox-static; no pulls).
//! A guard removes every container the test's scheduler labelled, and the image, even when
//! the test fails.

use crate::common::{eventually, http_status};
use deis_core::conformance::scheduler::{run_all, SchedulerFixture};
use deis_core::error::Error;
use deis_core::model::{Formation, InstanceState};
use deis_core::scheduler::{AppSpec, Artifact, Scheduler};
use deis_scheduler::{DockerConfig, DockerScheduler, MemoryLogSink};
use futures::StreamExt;
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

const WEB: &str = "exec httpd -f -p 0.0.0.0:$PORT -h /www";
const WORKER: &str = "while true; do sleep 1; done";

struct Engine {
    scheduler: DockerScheduler,
    sink: MemoryLogSink,
    owner: String,
    prefix: String,
    image: String,
}

impl Drop for Engine {
    fn drop(&mut self) {
        let listed = Command::new("docker")
            .args(["ps", "-aq", "--filter"])
            .arg(format!("label=io.deis.owner={}", self.owner))
            .output();
        if let Ok(listed) = listed {
            let ids: Vec<String> = String::from_utf8_lossy(&listed.stdout)
                .split_whitespace()
                .map(String::from)
                .collect();
            if !ids.is_empty() {
                let _ = Command::new("docker")
                    .args(["rm", "-f"])
                    .args(&ids)
                    .output();
            }
        }
        let _ = Command::new("docker")
            .args(["rmi", "-f", &self.image])
            .output();
    }
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Imports an image named `image` made of this machine's static `/bin/busybox` (with the
/// applets the tests use, `wget` and `nc` for health checks among them) and `/www/index.html`.
pub fn import_busybox_image(image: &str) {
    let root = tempfile::tempdir().unwrap();
    let bin = root.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(root.path().join("www")).unwrap();
    std::fs::create_dir_all(root.path().join("tmp")).unwrap();
    std::fs::write(root.path().join("www/index.html"), "hello\n").unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox")).expect("busybox-static is installed");
    for applet in [
        "sh", "httpd", "sleep", "echo", "cat", "kill", "true", "wget", "nc",
    ] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
    let tar = root.path().with_extension("tar");
    let packed = Command::new("tar")
        .arg("-C")
        .arg(root.path())
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(packed.success());
    let imported = Command::new("docker")
        .arg("import")
        .arg(&tar)
        .arg(image)
        .output()
        .expect("the docker CLI is installed");
    let _ = std::fs::remove_file(&tar);
    assert!(
        imported.status.success(),
        "docker import: {}",
        String::from_utf8_lossy(&imported.stderr)
    );
}

/// Builds a busybox image from this machine's `/bin/busybox` and connects a scheduler.
async fn engine(configure: impl FnOnce(&mut DockerConfig)) -> Engine {
    let id = format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    let owner = format!("deis-test-{id}");
    let image = format!("deis-scheduler-test:{id}");
    import_busybox_image(&image);
    let mut config = DockerConfig {
        owner: owner.clone(),
        name_prefix: format!("t{id}-"),
        stop_grace: Duration::from_secs(2),
        drain_delay: Duration::ZERO,
        settle: Duration::from_millis(300),
        health_grace: Duration::from_secs(10),
        run_timeout: Duration::from_secs(20),
        ..DockerConfig::default()
    };
    configure(&mut config);
    let sink = MemoryLogSink::new(10_000);
    let scheduler = DockerScheduler::connect_with_sink(config, Arc::new(sink.clone()))
        .await
        .expect("the Docker Engine answers");
    Engine {
        scheduler,
        sink,
        owner,
        prefix: format!("t{id}-"),
        image,
    }
}

impl Engine {
    fn spec(&self, app: &str, release: u64, formation: &[(&str, u32)]) -> AppSpec {
        let mut spec = AppSpec::new(app, release);
        spec.artifact = Artifact::Image {
            name: self.image.clone(),
        };
        spec.processes = BTreeMap::from([
            ("web".to_string(), WEB.to_string()),
            ("worker".to_string(), WORKER.to_string()),
        ]);
        spec.formation = formation
            .iter()
            .map(|(t, n)| (t.to_string(), *n))
            .collect::<Formation>();
        spec.env.insert("DEIS_APP".into(), app.into());
        spec.env
            .insert("DEIS_RELEASE".into(), format!("v{release}"));
        spec
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_passes_the_scheduler_conformance_suite() {
    let engine = engine(|_| {}).await;
    let suite = SchedulerFixture {
        artifact: Artifact::Image {
            name: engine.image.clone(),
        },
        processes: engine.spec("x", 1, &[]).processes,
        supports_run: true,
        reports_endpoints: true,
    };
    tokio::time::timeout(
        Duration::from_secs(90),
        run_all(&engine.scheduler, &suite, "dconf-"),
    )
    .await
    .expect("the suite finishes within 90 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_rolls_back_a_release_that_never_listens() {
    let engine = engine(|config| config.health_grace = Duration::from_secs(3)).await;
    let v1 = engine
        .scheduler
        .apply(&engine.spec("dgated", 1, &[("web", 1)]))
        .await
        .unwrap();
    let endpoint = v1[0].endpoint.clone().expect("a published port");
    assert_eq!(http_status(&endpoint, "/index.html").await, Some(200));
    let mut v2 = engine.spec("dgated", 2, &[("web", 1)]);
    v2.processes.insert("web".into(), "exec sleep 600".into());
    let err = engine.scheduler.apply(&v2).await.unwrap_err();
    assert!(matches!(err, Error::Precondition { .. }), "{err}");
    assert!(
        err.to_string().contains("web.1 did not become healthy"),
        "{err}"
    );
    assert_eq!(http_status(&endpoint, "/index.html").await, Some(200));
    assert_eq!(engine.scheduler.instances("dgated").await.unwrap(), v1);
    let mut checked = engine.spec("dgated", 3, &[("web", 1)]);
    checked.healthcheck = Some(deis_core::model::Healthcheck {
        url: "/missing".into(),
        initial_delay_secs: 0,
        timeout_secs: 1,
    });
    let err = engine.scheduler.apply(&checked).await.unwrap_err();
    assert!(
        err.to_string().contains("GET /missing answered 404"),
        "{err}"
    );
    assert_eq!(engine.scheduler.instances("dgated").await.unwrap(), v1);
    let image = engine.spec("dgated", 3, &[]).artifact;
    let mut missing = engine.spec("dgated", 3, &[("web", 1)]);
    missing.artifact = Artifact::Image {
        name: "deis-no-such-image:nope".into(),
    };
    assert_ne!(missing.artifact, image);
    let err = engine.scheduler.apply(&missing).await.unwrap_err();
    assert!(err.to_string().contains("never pulled"), "{err}");
    engine.scheduler.remove("dgated").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_tags_logs_and_reports_crashes_and_restarts() {
    let engine = engine(|_| {}).await;
    let mut spec = engine.spec("dcrash", 1, &[("web", 1), ("worker", 1)]);
    spec.processes.insert(
        "web".into(),
        format!("echo hello from $DEIS_APP $DEIS_RELEASE; {WEB}"),
    );
    spec.processes.insert(
        "worker".into(),
        "echo worker up; sleep 2; echo worker dying >&2; exit 1".into(),
    );
    let mut events = engine.scheduler.events();
    engine.scheduler.apply(&spec).await.unwrap();
    let tagged = eventually(Duration::from_secs(5), || async {
        let lines: Vec<String> = engine
            .sink
            .lines_of("dcrash")
            .iter()
            .map(|l| l.to_string())
            .collect();
        lines.contains(&"dcrash[web.1]: hello from dcrash v1".to_string())
            && lines.contains(&"dcrash[worker.1]: worker dying".to_string())
    })
    .await;
    assert!(tagged, "{:?}", engine.sink.lines());
    let mut crashed = false;
    let mut back_up = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !(crashed && back_up) && tokio::time::Instant::now() < deadline {
        let Ok(Some(event)) = tokio::time::timeout(Duration::from_secs(5), events.next()).await
        else {
            break;
        };
        if event.instance.app != "dcrash" || event.instance.process_type != "worker" {
            continue;
        }
        match event.instance.state {
            InstanceState::Crashed => crashed = true,
            InstanceState::Up if crashed => back_up = true,
            _ => {}
        }
    }
    assert!(crashed, "the worker's death was reported");
    assert!(
        back_up,
        "the restart policy brought it back and it was reported up"
    );
    engine.scheduler.remove("dcrash").await.unwrap();
    assert!(engine
        .scheduler
        .instances("dcrash")
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_instances_are_published_while_up() {
    use deis_core::discovery::{keys, Discovery};
    use deis_core::memory::MemoryDiscovery;
    use deis_scheduler::{Publisher, PublisherConfig};
    let engine = engine(|_| {}).await;
    let discovery = Arc::new(MemoryDiscovery::new());
    let publisher = Publisher::spawn(
        Arc::new(engine.scheduler.clone()),
        discovery.clone(),
        PublisherConfig {
            resync_interval: Duration::from_secs(60),
            ..PublisherConfig::default()
        },
    );
    let applied = engine
        .scheduler
        .apply(&engine.spec("dpub", 1, &[("web", 1), ("worker", 1)]))
        .await
        .unwrap();
    let key = keys::service("dpub", "dpub_v1.web.1");
    let published = eventually(Duration::from_secs(3), || async {
        discovery.get(&key).await.unwrap().map(|kv| kv.value) == applied[0].endpoint
    })
    .await;
    assert!(published, "web.1 is published at its endpoint");
    let endpoint = applied[0].endpoint.clone().unwrap();
    assert_eq!(http_status(&endpoint, "/index.html").await, Some(200));
    let services = discovery
        .snapshot(&keys::services_of("dpub"))
        .await
        .unwrap();
    assert_eq!(services.entries.len(), 1, "workers are not routable");
    engine.scheduler.remove("dpub").await.unwrap();
    let withdrawn = eventually(Duration::from_secs(3), || async {
        discovery.get(&key).await.unwrap().is_none()
    })
    .await;
    assert!(withdrawn);
    publisher.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_containers_carry_names_labels_limits_and_restart_policy() {
    let engine = engine(|_| {}).await;
    let mut spec = engine.spec("dlimits", 4, &[("worker", 1)]);
    spec.limits.insert(
        "worker".into(),
        deis_core::scheduler::ProcessLimits {
            memory_bytes: Some(64 << 20),
            cpu_shares: Some(512),
        },
    );
    engine.scheduler.apply(&spec).await.unwrap();
    let name = format!("{}dlimits_v4.worker.1", engine.prefix);
    let inspect = Command::new("docker")
        .args([
            "inspect",
            "--format",
            "{{.HostConfig.Memory}} {{.HostConfig.CpuShares}} {{.HostConfig.RestartPolicy.Name}} {{index .Config.Labels \"io.deis.app\"}} {{index .Config.Labels \"io.deis.type\"}} {{index .Config.Labels \"io.deis.num\"}} {{index .Config.Labels \"io.deis.release\"}}",
            &name,
        ])
        .output()
        .unwrap();
    assert!(
        inspect.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&inspect.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&inspect.stdout).trim(),
        format!("{} 512 on-failure dlimits worker 1 4", 64u64 << 20)
    );
    engine.scheduler.remove("dlimits").await.unwrap();
}
