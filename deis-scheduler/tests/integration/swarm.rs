//! The Swarm scheduler on this machine's Docker Engine, which must be an active Swarm
//! manager (`scripts/test` runs `docker swarm init --advertise-addr 127.0.0.1` when it is
//! not; a test FAILS when there is no swarm). Images are built from files on the machine
//! (the busybox image of the Docker tests; no pulls). A guard removes every service,
//! container, network, image and node label a test made, even when the test fails.

use crate::common::{eventually, http_status};
use crate::docker::import_busybox_image;
use deis_core::conformance::scheduler::{run_all, SchedulerFixture};
use deis_core::error::Error;
use deis_core::model::{Formation, Healthcheck, InstanceState};
use deis_core::scheduler::{AppSpec, Artifact, ProcessLimits, RunRequest, Scheduler};
use deis_scheduler::{MemoryLogSink, SwarmConfig, SwarmScheduler};
use futures::StreamExt;
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

const WEB: &str = "exec httpd -f -p 0.0.0.0:$PORT -h /www";
const WORKER: &str = "while true; do sleep 1; done";

struct Swarm {
    scheduler: SwarmScheduler,
    sink: MemoryLogSink,
    id: String,
    owner: String,
    network: String,
    image: String,
    node_label: Option<String>,
}

fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI is installed")
}

fn ids(output: std::process::Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(String::from)
        .collect()
}

impl Drop for Swarm {
    fn drop(&mut self) {
        let label = format!("label=io.deis.owner={}", self.owner);
        let services = ids(docker(&["service", "ls", "-q", "--filter", &label]));
        if !services.is_empty() {
            let mut args = vec!["service", "rm"];
            args.extend(services.iter().map(String::as_str));
            let _ = docker(&args);
        }
        // Swarm stops the tasks of removed services in the background: wait for them (the
        // image cannot go while a container uses it), then remove what is left.
        for _ in 0..100 {
            if ids(docker(&["ps", "-q", "--filter", &label])).is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let containers = ids(docker(&["ps", "-aq", "--filter", &label]));
        if !containers.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(containers.iter().map(String::as_str));
            let _ = docker(&args);
        }
        if let Some(node_label) = &self.node_label {
            let _ = docker(&["node", "update", "--label-rm", node_label, &node_id()]);
        }
        // The network goes once the removed services' tasks have left it.
        for _ in 0..150 {
            let out = docker(&["network", "rm", &self.network]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            if out.status.success() || stderr.contains("not found") {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = docker(&["rmi", "-f", &self.image]);
    }
}

/// This engine's node in the swarm.
fn node_id() -> String {
    let out = docker(&["info", "--format", "{{.Swarm.NodeID}}"]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

static NEXT: AtomicU32 = AtomicU32::new(0);

fn test_config(id: &str) -> SwarmConfig {
    SwarmConfig {
        owner: format!("deis-test-{id}"),
        name_prefix: format!("t{id}-"),
        network: format!("deis-test-{id}"),
        stop_grace: Duration::from_secs(2),
        restart_delay: Duration::from_millis(500),
        health_interval: Duration::from_secs(1),
        health_retries: 2,
        start_grace: Duration::from_secs(2),
        update_monitor: Duration::from_secs(1),
        settle: Duration::from_millis(300),
        rollout_slack: Duration::from_secs(20),
        poll_interval: Duration::from_millis(250),
        drain_delay: Duration::ZERO,
        run_timeout: Duration::from_secs(30),
        ..SwarmConfig::default()
    }
}

/// Builds the busybox image and connects a scheduler to this engine's swarm.
async fn swarm(configure: impl FnOnce(&mut SwarmConfig)) -> Swarm {
    let id = format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    let image = format!("deis-swarm-test:{id}");
    import_busybox_image(&image);
    let mut config = test_config(&id);
    configure(&mut config);
    let sink = MemoryLogSink::new(10_000);
    let swarm = Swarm {
        owner: config.owner.clone(),
        network: config.network.clone(),
        scheduler: SwarmScheduler::connect_with_sink(config, Arc::new(sink.clone()))
            .await
            .expect("this Docker Engine is an active Swarm manager (scripts/test sets it up)"),
        sink,
        id,
        image,
        node_label: None,
    };
    swarm
}

impl Swarm {
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

    fn service(&self, app: &str, process_type: &str) -> String {
        format!("t{}-{app}_{process_type}", self.id)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_passes_the_scheduler_conformance_suite() {
    let swarm = swarm(|_| {}).await;
    let suite = SchedulerFixture {
        artifact: Artifact::Image {
            name: swarm.image.clone(),
        },
        processes: swarm.spec("x", 1, &[]).processes,
        supports_run: true,
        reports_endpoints: true,
    };
    tokio::time::timeout(
        Duration::from_secs(300),
        run_all(&swarm.scheduler, &suite, "sconf-"),
    )
    .await
    .expect("the suite finishes within 300 s");
}

/// Hits `endpoint` every 50 ms until `stop`; returns (answers, failures).
fn keep_asking(endpoint: String, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<(u32, u32)> {
    tokio::spawn(async move {
        let (mut ok, mut failed) = (0, 0);
        while !stop.load(Ordering::SeqCst) {
            match http_status(&endpoint, "/index.html").await {
                Some(200) => ok += 1,
                _ => failed += 1,
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        (ok, failed)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_rolls_back_a_release_that_never_becomes_healthy_and_the_old_one_serves_throughout() {
    let swarm = swarm(|_| {}).await;
    let v1 = swarm
        .scheduler
        .apply(&swarm.spec("sgated", 1, &[("web", 1)]))
        .await
        .unwrap();
    let endpoint = v1[0].endpoint.clone().expect("a published port");
    assert_eq!(http_status(&endpoint, "/index.html").await, Some(200));

    // v2 never listens: its port check never passes.
    let stop = Arc::new(AtomicBool::new(false));
    let asking = keep_asking(endpoint.clone(), stop.clone());
    let mut v2 = swarm.spec("sgated", 2, &[("web", 1)]);
    v2.processes.insert("web".into(), "exec sleep 600".into());
    let err = swarm.scheduler.apply(&v2).await.unwrap_err();
    stop.store(true, Ordering::SeqCst);
    let (answered, failed) = asking.await.unwrap();
    assert!(matches!(err, Error::Precondition { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("release v2 of sgated was rolled back"),
        "{err}"
    );
    assert!(
        answered > 10,
        "v1 was asked throughout ({answered} answers)"
    );
    assert_eq!(
        failed, 0,
        "v1 answered every request during the failed rollout"
    );
    assert_eq!(swarm.scheduler.instances("sgated").await.unwrap(), v1);
    assert!(
        swarm
            .sink
            .lines_of("sgated")
            .iter()
            .any(|l| l.to_string().contains("was rolled back")),
        "the failure is in the app's log"
    );

    // v3 listens but its HEALTHCHECK_URL answers 404.
    let mut v3 = swarm.spec("sgated", 3, &[("web", 1)]);
    v3.healthcheck = Some(Healthcheck {
        url: "/missing".into(),
        initial_delay_secs: 0,
        timeout_secs: 1,
    });
    let err = swarm.scheduler.apply(&v3).await.unwrap_err();
    assert!(err.to_string().contains("rolled back"), "{err}");
    assert_eq!(http_status(&endpoint, "/index.html").await, Some(200));
    assert_eq!(swarm.scheduler.instances("sgated").await.unwrap(), v1);

    // A good health check URL deploys, start-first.
    let mut v4 = swarm.spec("sgated", 4, &[("web", 1)]);
    v4.healthcheck = Some(Healthcheck {
        url: "/index.html".into(),
        initial_delay_secs: 0,
        timeout_secs: 1,
    });
    let stop = Arc::new(AtomicBool::new(false));
    let asking = keep_asking(endpoint.clone(), stop.clone());
    let rolled = swarm.scheduler.apply(&v4).await.unwrap();
    stop.store(true, Ordering::SeqCst);
    let (_, failed_during_good_rollout) = asking.await.unwrap();
    assert_eq!(rolled.len(), 1);
    assert_eq!(rolled[0].release, 4);
    assert_eq!(rolled[0].state, InstanceState::Up);
    let new_endpoint = rolled[0].endpoint.clone().unwrap();
    assert_eq!(http_status(&new_endpoint, "/index.html").await, Some(200));
    // The old task is stopped only after the new one is healthy; it may refuse the last
    // requests sent after Swarm stopped it (the router has moved to the new one by then).
    println!("requests to v1 that failed once v4 was up: {failed_during_good_rollout}");

    let mut missing = swarm.spec("sgated", 5, &[("web", 1)]);
    missing.artifact = Artifact::Image {
        name: "deis-no-such-image:nope".into(),
    };
    let err = swarm.scheduler.apply(&missing).await.unwrap_err();
    assert!(err.to_string().contains("never pulled"), "{err}");
    swarm.scheduler.remove("sgated").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_services_carry_names_labels_limits_placement_and_network() {
    let mut swarm = swarm(|_| {}).await;
    let tag = format!("deistest{}", swarm.id.replace('-', ""));
    let mut spec = swarm.spec("slimits", 4, &[("worker", 1)]);
    spec.limits.insert(
        "worker".into(),
        ProcessLimits {
            memory_bytes: Some(64 << 20),
            cpu_shares: Some(512),
        },
    );
    spec.tags.insert(tag.clone(), "yes".into());

    // No node carries the label: Swarm cannot place the task, and apply says so.
    let err = swarm.scheduler.apply(&spec).await.unwrap_err();
    assert!(err.to_string().contains("no suitable node"), "{err}");
    assert!(swarm
        .scheduler
        .instances("slimits")
        .await
        .unwrap()
        .is_empty());
    let name = swarm.service("slimits", "worker");
    assert!(
        !docker(&["service", "inspect", &name]).status.success(),
        "the service of the failed first release is gone"
    );

    // Label this node and the same spec is placed.
    let node_label = format!("{tag}=yes");
    let labelled = docker(&["node", "update", "--label-add", &node_label, &node_id()]);
    assert!(
        labelled.status.success(),
        "{}",
        String::from_utf8_lossy(&labelled.stderr)
    );
    swarm.node_label = Some(tag.clone());
    let applied = swarm.scheduler.apply(&spec).await.unwrap();
    assert_eq!(applied.len(), 1);
    let format = "{{.Spec.Labels}} {{.Spec.TaskTemplate.Resources.Limits.MemoryBytes}} \
                  {{.Spec.TaskTemplate.Resources.Limits.NanoCPUs}} \
                  {{.Spec.TaskTemplate.RestartPolicy.Condition}} \
                  {{.Spec.UpdateConfig.Order}} {{.Spec.UpdateConfig.FailureAction}} \
                  {{.Spec.TaskTemplate.Placement.Constraints}} {{.Spec.Mode.Replicated.Replicas}}";
    let inspect = docker(&["service", "inspect", "--format", format, &name]);
    assert!(
        inspect.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&inspect.stderr)
    );
    let text = String::from_utf8_lossy(&inspect.stdout);
    for expected in [
        "io.deis.app:slimits",
        "io.deis.release:4",
        "io.deis.type:worker",
        &format!(" {} 500000000 any start-first rollback", 64u64 << 20),
        &format!("[node.labels.{tag}==yes] 1"),
    ] {
        assert!(text.contains(expected), "{expected:?} in {text}");
    }
    let networks = docker(&[
        "service",
        "inspect",
        "--format",
        "{{range .Spec.TaskTemplate.Networks}}{{.Target}}{{end}}",
        &name,
    ]);
    let network_id = String::from_utf8_lossy(&networks.stdout).trim().to_string();
    let network = docker(&[
        "network",
        "inspect",
        "--format",
        "{{.Name}} {{.Driver}} {{.Attachable}}",
        &network_id,
    ]);
    assert_eq!(
        String::from_utf8_lossy(&network.stdout).trim(),
        format!("{} overlay true", swarm.network)
    );
    swarm.scheduler.remove("slimits").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_tasks_are_published_reachable_on_the_network_and_report_crashes() {
    use deis_core::discovery::{keys, Discovery};
    use deis_core::memory::MemoryDiscovery;
    use deis_scheduler::{Publisher, PublisherConfig};
    let swarm = swarm(|_| {}).await;
    let discovery = Arc::new(MemoryDiscovery::new());
    let publisher = Publisher::spawn(
        Arc::new(swarm.scheduler.clone()),
        discovery.clone(),
        PublisherConfig {
            resync_interval: Duration::from_secs(60),
            ..PublisherConfig::default()
        },
    );
    let mut spec = swarm.spec("spub", 1, &[("web", 1), ("worker", 1)]);
    spec.processes.insert(
        "worker".into(),
        "echo worker up; sleep 3; echo worker dying >&2; exit 1".into(),
    );
    let mut events = swarm.scheduler.events();
    let applied = swarm.scheduler.apply(&spec).await.unwrap();
    let web = applied.iter().find(|i| i.process_type == "web").unwrap();
    let key = keys::service("spub", "spub_v1.web.1");
    let published = eventually(Duration::from_secs(3), || async {
        discovery.get(&key).await.unwrap().map(|kv| kv.value) == web.endpoint
    })
    .await;
    assert!(published, "web.1 is published at its endpoint");
    let endpoint = web.endpoint.clone().unwrap();
    assert_eq!(http_status(&endpoint, "/index.html").await, Some(200));
    let services = discovery
        .snapshot(&keys::services_of("spub"))
        .await
        .unwrap();
    assert_eq!(services.entries.len(), 1, "workers are not routable");

    // The overlay network: a one-off run reaches web.1 by its alias.
    let outcome = swarm
        .scheduler
        .run(&RunRequest {
            spec: swarm.spec("spub", 1, &[]),
            command: "wget -q -O - http://web.spub:5000/index.html".into(),
        })
        .await
        .unwrap();
    assert_eq!(outcome.exit_code, 0, "{}", outcome.output);
    assert!(outcome.output.contains("hello"), "{}", outcome.output);

    // The worker exits: reported crashed (or replaced), then up again under the same number.
    let mut left_up = false;
    let mut back_up = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !(left_up && back_up) && tokio::time::Instant::now() < deadline {
        let Ok(Some(event)) = tokio::time::timeout(Duration::from_secs(10), events.next()).await
        else {
            break;
        };
        if event.instance.app != "spub" || event.instance.process_type != "worker" {
            continue;
        }
        match event.instance.state {
            InstanceState::Crashed | InstanceState::Destroyed
                if event.previous == Some(InstanceState::Up) =>
            {
                left_up = true
            }
            InstanceState::Up if left_up => back_up = true,
            _ => {}
        }
    }
    assert!(left_up, "the worker's exit was reported");
    assert!(back_up, "Swarm replaced it and it was reported up");
    let logged = eventually(Duration::from_secs(5), || async {
        swarm
            .sink
            .lines_of("spub")
            .iter()
            .any(|l| l.to_string() == "spub[worker.1]: worker dying")
    })
    .await;
    assert!(logged, "{:?}", swarm.sink.lines());

    swarm.scheduler.remove("spub").await.unwrap();
    let withdrawn = eventually(Duration::from_secs(3), || async {
        discovery.get(&key).await.unwrap().is_none()
    })
    .await;
    assert!(withdrawn);
    publisher.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_a_failed_type_takes_the_other_types_of_its_release_back() {
    let swarm = swarm(|_| {}).await;
    let v1 = swarm
        .scheduler
        .apply(&swarm.spec("ssibling", 1, &[("web", 1), ("worker", 1)]))
        .await
        .unwrap();
    assert_eq!(v1.len(), 2);
    // v2: the worker is fine, web never listens, and a new type `clock` is added.
    let mut v2 = swarm.spec("ssibling", 2, &[("web", 1), ("worker", 1), ("clock", 1)]);
    v2.processes.insert("web".into(), "exec sleep 600".into());
    v2.processes.insert("clock".into(), WORKER.into());
    let err = swarm.scheduler.apply(&v2).await.unwrap_err();
    assert!(err.to_string().contains("web"), "{err}");
    let after = swarm.scheduler.instances("ssibling").await.unwrap();
    let shape: Vec<(String, u64, InstanceState)> = after
        .iter()
        .map(|i| (i.short_name(), i.release, i.state))
        .collect();
    assert_eq!(
        shape,
        [
            ("web.1".to_string(), 1, InstanceState::Up),
            ("worker.1".to_string(), 1, InstanceState::Up)
        ],
        "the worker went back to v1 and the new clock service is gone"
    );
    assert!(
        !docker(&["service", "inspect", &swarm.service("ssibling", "clock")])
            .status
            .success()
    );
    swarm.scheduler.remove("ssibling").await.unwrap();
}
