use crate::common::{eventually, group_alive, group_gone, http_status, states, Fixture, WEB};
use deis_core::conformance::scheduler::{run_all, SchedulerFixture};
use deis_core::error::Error;
use deis_core::model::{Healthcheck, InstanceState};
use deis_core::scheduler::{ProcessLimits, RunRequest, Scheduler};
use deis_scheduler::{LimitEnforcement, LocalScheduler};
use futures::StreamExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_scheduler_conformance_suite() {
    let fixture = Fixture::new();
    let suite = SchedulerFixture {
        artifact: fixture.artifact(),
        processes: fixture.processes(),
        supports_run: true,
        reports_endpoints: true,
    };
    tokio::time::timeout(
        Duration::from_secs(60),
        run_all(&fixture.scheduler, &suite, "conf-"),
    )
    .await
    .expect("the suite finishes within a minute");
    // Every web instance the suite started answered HTTP: spot-check one more here.
    let applied = fixture
        .scheduler
        .apply(&fixture.spec("conf-check", 1, &[("web", 1)]))
        .await
        .unwrap();
    let endpoint = applied[0].endpoint.clone().expect("web has an endpoint");
    assert_eq!(http_status(&endpoint, "/index.html").await, Some(200));
    fixture.scheduler.shutdown().await;
}

#[tokio::test]
async fn a_crashed_instance_shows_crashed_and_restarts_with_growing_delays() {
    let fixture = Fixture::new();
    let mut spec = fixture.spec("crashy", 1, &[("worker", 1)]);
    // Alive long enough to count as started (settle is 200 ms), then crashes.
    spec.processes.insert(
        "worker".into(),
        "echo started; sleep 0.4; echo dying >&2; exit 3".into(),
    );
    let mut events = fixture.scheduler.events();
    let applied = fixture.scheduler.apply(&spec).await.unwrap();
    assert_eq!(applied[0].state, InstanceState::Up);

    let crashed_visible = eventually(Duration::from_secs(5), || async {
        states(&fixture.scheduler, "crashy").await[0].2 == InstanceState::Crashed
    })
    .await;
    assert!(crashed_visible, "instances() shows the crashed state");

    // Record when each start happens after a crash: first at once, then backing off.
    let mut crash_at = None;
    let mut delays = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(8);
    while delays.len() < 3 && Instant::now() < deadline {
        let Ok(Some(event)) = tokio::time::timeout(Duration::from_secs(3), events.next()).await
        else {
            break;
        };
        match event.instance.state {
            InstanceState::Crashed => crash_at = Some(Instant::now()),
            InstanceState::Starting => {
                if let Some(at) = crash_at.take() {
                    delays.push(at.elapsed());
                }
            }
            _ => {}
        }
    }
    assert_eq!(delays.len(), 3, "three restarts seen: {delays:?}");
    assert!(delays[0] < Duration::from_millis(150), "{delays:?}");
    assert!(delays[1] >= Duration::from_millis(250), "{delays:?}");
    assert!(delays[2] >= Duration::from_millis(550), "{delays:?}");
    assert!(fixture.scheduler.restarts("crashy", "worker", 1).unwrap() >= 3);
    let logs = fixture.sink.lines_of("crashy");
    assert!(logs
        .iter()
        .any(|l| l.source == "worker.1" && l.line == "dying"));
    assert!(logs.iter().any(|l| l.source == "deis-scheduler"
        && l.line
            .starts_with("worker.1 exited with status 3; restarting in")));
    fixture.scheduler.remove("crashy").await.unwrap();
    assert!(fixture
        .scheduler
        .instances("crashy")
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn stop_sends_sigterm_to_the_group_then_sigkill_after_the_grace() {
    let fixture = Fixture::with_config(|dir| {
        let mut config = crate::common::fast_config(dir);
        config.stop_grace = Duration::from_millis(700);
        config
    });
    let mut spec = fixture.spec("stops", 1, &[("polite", 1), ("stubborn", 1)]);
    spec.processes.insert(
        "polite".into(),
        "trap 'echo got TERM; exit 0' TERM; while true; do sleep 0.1; done".into(),
    );
    spec.processes.insert(
        "stubborn".into(),
        "trap '' TERM; sleep 600 & while true; do sleep 0.1; done".into(),
    );
    fixture.scheduler.apply(&spec).await.unwrap();
    let polite = fixture.scheduler.pid("stops", "polite", 1).unwrap();
    let stubborn = fixture.scheduler.pid("stops", "stubborn", 1).unwrap();
    assert!(group_alive(polite) && group_alive(stubborn));

    let started = Instant::now();
    spec.formation.insert("polite".into(), 0);
    fixture.scheduler.apply(&spec).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(650),
        "a process that stops on SIGTERM needs no SIGKILL"
    );
    let got_term = eventually(Duration::from_secs(2), || async {
        fixture
            .sink
            .lines_of("stops")
            .iter()
            .any(|l| l.source == "polite.1" && l.line == "got TERM")
    })
    .await;
    assert!(got_term, "the trap saw SIGTERM: {:?}", fixture.sink.lines());
    assert!(group_gone(polite).await);

    let started = Instant::now();
    fixture.scheduler.remove("stops").await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "the grace is waited"
    );
    assert!(group_gone(stubborn).await, "SIGKILL took the whole group");
    assert!(fixture
        .sink
        .lines_of("stops")
        .iter()
        .any(|l| l.line.contains("stubborn.1 did not stop within")));
}

/// Connects to every endpoint every 20 ms until stopped; counts failures.
fn hammer(endpoints: Vec<String>) -> (Arc<AtomicU64>, Arc<AtomicU64>, tokio::task::JoinHandle<()>) {
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let (ok2, failed2) = (ok.clone(), failed.clone());
    let task = tokio::spawn(async move {
        loop {
            for endpoint in &endpoints {
                match http_status(endpoint, "/index.html").await {
                    Some(200) => ok2.fetch_add(1, Ordering::SeqCst),
                    _ => failed2.fetch_add(1, Ordering::SeqCst),
                };
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    (ok, failed, task)
}

#[tokio::test]
async fn a_release_that_never_listens_is_rolled_back_while_the_old_one_serves() {
    let fixture = Fixture::with_health_grace(Duration::from_secs(2));
    let v1 = fixture
        .scheduler
        .apply(&fixture.spec("gated", 1, &[("web", 2)]))
        .await
        .unwrap();
    let endpoints: Vec<String> = v1.iter().filter_map(|i| i.endpoint.clone()).collect();
    assert_eq!(endpoints.len(), 2);
    let (ok, failed, task) = hammer(endpoints.clone());

    let mut v2 = fixture.spec("gated", 2, &[("web", 2)]);
    v2.processes.insert("web".into(), "exec sleep 600".into());
    let started = Instant::now();
    let err = fixture.scheduler.apply(&v2).await.unwrap_err();
    task.abort();
    let message = err.to_string();
    assert!(matches!(err, Error::Precondition { .. }), "{message}");
    assert!(message.contains("rolled back"), "{message}");
    assert!(
        message.contains("web.1 did not become healthy"),
        "{message}"
    );
    assert!(message.contains("nothing accepts connections"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "bounded by the deadline"
    );

    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "the old release kept serving"
    );
    assert!(ok.load(Ordering::SeqCst) > 10);
    assert_eq!(
        states(&fixture.scheduler, "gated").await,
        [
            ("web.1".to_string(), 1, InstanceState::Up),
            ("web.2".to_string(), 1, InstanceState::Up)
        ],
        "only the old instances are left"
    );
    for endpoint in &endpoints {
        assert_eq!(http_status(endpoint, "/index.html").await, Some(200));
    }
    fixture.scheduler.shutdown().await;
}

#[tokio::test]
async fn a_health_check_that_answers_404_refuses_the_rollout() {
    let fixture = Fixture::with_health_grace(Duration::from_secs(2));
    let v1 = fixture
        .scheduler
        .apply(&fixture.spec("checked", 1, &[("web", 1)]))
        .await
        .unwrap();
    let mut v2 = fixture.spec("checked", 2, &[("web", 1)]);
    v2.healthcheck = Some(Healthcheck {
        url: "/missing".into(),
        initial_delay_secs: 0,
        timeout_secs: 1,
    });
    let err = fixture.scheduler.apply(&v2).await.unwrap_err();
    assert!(
        err.to_string().contains("GET /missing answered 404"),
        "{err}"
    );
    assert_eq!(fixture.scheduler.instances("checked").await.unwrap(), v1);

    let mut v3 = fixture.spec("checked", 3, &[("web", 1)]);
    v3.healthcheck = Some(Healthcheck {
        url: "/index.html".into(),
        initial_delay_secs: 0,
        timeout_secs: 1,
    });
    let v3 = fixture.scheduler.apply(&v3).await.unwrap();
    assert_eq!(v3[0].release, 3);
    assert_ne!(
        v3[0].endpoint, v1[0].endpoint,
        "the replacement has its own port"
    );
    assert_eq!(
        http_status(v1[0].endpoint.as_ref().unwrap(), "/").await,
        None,
        "the old one is stopped"
    );
    fixture.scheduler.shutdown().await;
}

#[tokio::test]
async fn output_lines_are_tagged_with_app_and_instance() {
    let fixture = Fixture::new();
    let mut spec = fixture.spec("tagged", 4, &[("web", 1)]);
    spec.processes.insert(
        "web".into(),
        format!("echo hello from $DEIS_APP $DEIS_RELEASE on $PORT; echo oops >&2; {WEB}"),
    );
    let applied = fixture.scheduler.apply(&spec).await.unwrap();
    let port = applied[0]
        .endpoint
        .as_ref()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let seen = eventually(Duration::from_secs(2), || async {
        fixture.sink.lines_of("tagged").len() >= 2
    })
    .await;
    assert!(seen);
    let lines: Vec<String> = fixture
        .sink
        .lines_of("tagged")
        .iter()
        .map(|l| l.to_string())
        .collect();
    assert!(
        lines.contains(&format!("tagged[web.1]: hello from tagged v4 on {port}")),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"tagged[web.1]: oops".to_string()),
        "{lines:?}"
    );
    fixture.scheduler.shutdown().await;
}

#[tokio::test]
async fn one_off_runs_return_interleaved_output_and_the_exit_code() {
    let fixture = Fixture::with_config(|dir| {
        let mut config = crate::common::fast_config(dir);
        config.run_timeout = Duration::from_millis(800);
        config
    });
    let run = |command: &str| RunRequest {
        spec: fixture.spec("runs", 2, &[]),
        command: command.into(),
    };
    let outcome = fixture
        .scheduler
        .run(&run(
            "echo out; echo err >&2; echo $DEIS_RELEASE; cat www/index.html; exit 7",
        ))
        .await
        .unwrap();
    assert_eq!(outcome.exit_code, 7);
    assert_eq!(outcome.output, "out\nerr\nv2\nhello\n");
    let killed = fixture.scheduler.run(&run("kill -9 $$")).await.unwrap();
    assert_eq!(killed.exit_code, 137);
    let started = Instant::now();
    let err = fixture.scheduler.run(&run("sleep 30")).await.unwrap_err();
    assert!(
        err.is_retryable() && err.to_string().contains("did not finish"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    let mut none = run("true");
    none.spec.artifact = deis_core::scheduler::Artifact::None;
    assert!(matches!(
        fixture.scheduler.run(&none).await,
        Err(Error::Precondition { .. })
    ));
}

#[tokio::test]
async fn limits_are_reported_as_enforced_or_not_never_ignored() {
    let fixture = Fixture::new();
    let mut spec = fixture.spec("limited", 1, &[("web", 1), ("worker", 1)]);
    spec.limits.insert(
        "web".into(),
        ProcessLimits {
            memory_bytes: Some(64 << 20),
            cpu_shares: Some(512),
        },
    );
    fixture.scheduler.apply(&spec).await.unwrap();
    let report = fixture.scheduler.limit_enforcement("limited");
    assert_eq!(report["limited_v1.worker.1"], LimitEnforcement::NoLimits);
    let warned = fixture
        .sink
        .lines_of("limited")
        .iter()
        .any(|l| l.source == "deis-scheduler" && l.line.contains("web.1 are NOT enforced"));
    if fixture.scheduler.limits_enforced() {
        assert_eq!(report["limited_v1.web.1"], LimitEnforcement::Enforced);
        assert!(!warned);
    } else {
        let reason = fixture.scheduler.limits_reason().to_string();
        assert!(!reason.is_empty());
        assert_eq!(
            report["limited_v1.web.1"],
            LimitEnforcement::NotEnforced { reason }
        );
        assert!(warned, "{:?}", fixture.sink.lines());
    }
    fixture.scheduler.shutdown().await;
}

#[tokio::test]
async fn bad_specs_are_refused_with_clear_errors() {
    let fixture = Fixture::new();
    let mut spec = fixture.spec("badspec", 1, &[("clock", 1)]);
    let err = fixture.scheduler.apply(&spec).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("no command for process type clock"),
        "{err}"
    );
    spec = fixture.spec("../escape", 1, &[("web", 1)]);
    assert!(matches!(
        fixture.scheduler.apply(&spec).await,
        Err(Error::Invalid(_))
    ));
    spec = fixture.spec("badspec", 1, &[("web", 1)]);
    spec.artifact = deis_core::scheduler::Artifact::Image {
        name: "busybox".into(),
    };
    let err = fixture.scheduler.apply(&spec).await.unwrap_err();
    assert!(err.to_string().contains("not container images"), "{err}");
    assert!(fixture
        .scheduler
        .instances("badspec")
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_tarball_slug_is_unpacked_and_run() {
    let fixture = Fixture::new();
    let archive = fixture.dir.path().join("slug.tgz");
    let status = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(fixture.dir.path().join("slug"))
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    let mut spec = fixture.spec("packed", 1, &[("web", 1)]);
    spec.artifact = deis_core::scheduler::Artifact::Slug {
        location: archive.to_string_lossy().into_owned(),
    };
    let applied = fixture.scheduler.apply(&spec).await.unwrap();
    let endpoint = applied[0].endpoint.clone().unwrap();
    assert_eq!(http_status(&endpoint, "/index.html").await, Some(200));
    fixture.scheduler.remove("packed").await.unwrap();
}

#[tokio::test]
async fn processes_die_with_the_scheduler_and_come_back_on_apply() {
    let fixture = Fixture::new();
    let mut spec = fixture.spec("phoenix", 1, &[("web", 1), ("worker", 1)]);
    spec.processes.insert(
        "worker".into(),
        "sleep 600 & while true; do sleep 1; done".into(),
    );
    fixture.scheduler.apply(&spec).await.unwrap();
    let web = fixture.scheduler.pid("phoenix", "web", 1).unwrap();
    let worker = fixture.scheduler.pid("phoenix", "worker", 1).unwrap();
    assert!(group_alive(web) && group_alive(worker));
    let Fixture {
        scheduler,
        sink,
        dir,
    } = fixture;
    drop(scheduler);
    assert!(
        group_gone(web).await && group_gone(worker).await,
        "dropping the scheduler kills every group"
    );

    // A "platform restart": a new scheduler applies the current release again.
    let restarted = LocalScheduler::with_sink(
        crate::common::fast_config(&dir.path().join("data")),
        Arc::new(sink),
    );
    let back = restarted.apply(&spec).await.unwrap();
    assert_eq!(back.len(), 2);
    assert!(back.iter().all(|i| i.state == InstanceState::Up));
    let endpoint = back[0].endpoint.clone().unwrap();
    assert_eq!(http_status(&endpoint, "/index.html").await, Some(200));
    let worker = restarted.pid("phoenix", "worker", 1).unwrap();
    restarted.shutdown().await;
    assert!(group_gone(worker).await, "shutdown stops every group");
    assert!(restarted.instances("phoenix").await.unwrap().is_empty());
}

#[tokio::test]
async fn scale_down_stops_the_highest_numbers() {
    let fixture = Fixture::new();
    fixture
        .scheduler
        .apply(&fixture.spec("shrink", 1, &[("web", 3)]))
        .await
        .unwrap();
    let pids: Vec<u32> = (1..=3)
        .map(|n| fixture.scheduler.pid("shrink", "web", n).unwrap())
        .collect();
    let after = fixture
        .scheduler
        .apply(&fixture.spec("shrink", 1, &[("web", 1)]))
        .await
        .unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].num, 1);
    assert!(group_alive(pids[0]));
    assert!(group_gone(pids[1]).await && group_gone(pids[2]).await);
    fixture.scheduler.shutdown().await;
}

#[tokio::test]
async fn debug_output_never_shows_config_values() {
    let fixture = Fixture::new();
    let mut spec = fixture.spec("secretive", 1, &[("worker", 1)]);
    spec.env
        .insert("DATABASE_PASSWORD".into(), "hunter2-very-secret".into());
    fixture.scheduler.apply(&spec).await.unwrap();
    let debug = format!("{:?}", fixture.scheduler);
    assert!(debug.contains("DATABASE_PASSWORD"), "names are fine");
    assert!(!debug.contains("hunter2-very-secret"), "{debug}");
    fixture.scheduler.shutdown().await;
}

#[tokio::test]
async fn an_abandoned_rollout_stops_its_new_instances() {
    let fixture = Fixture::new();
    let v1 = fixture
        .scheduler
        .apply(&fixture.spec("abandoned", 1, &[("web", 1)]))
        .await
        .unwrap();
    let mut v2 = fixture.spec("abandoned", 2, &[("web", 1)]);
    v2.processes
        .insert("web".into(), "echo $$ > v2.pid; exec sleep 600".into());
    // A caller that gives up (an API timeout) drops the apply half-way.
    let gave_up =
        tokio::time::timeout(Duration::from_millis(500), fixture.scheduler.apply(&v2)).await;
    assert!(gave_up.is_err(), "the rollout was still waiting");
    assert_eq!(fixture.scheduler.instances("abandoned").await.unwrap(), v1);
    let endpoint = v1[0].endpoint.clone().unwrap();
    assert_eq!(http_status(&endpoint, "/index.html").await, Some(200));
    // Nothing of v2 is left running.
    let pid_file = fixture.dir.path().join("slug/v2.pid");
    let v2_pid: u32 = std::fs::read_to_string(&pid_file)
        .expect("v2 started and wrote its pid")
        .trim()
        .parse()
        .unwrap();
    assert!(
        group_gone(v2_pid).await,
        "the abandoned instance was stopped"
    );
    let v1_pid = fixture.scheduler.pid("abandoned", "web", 1).unwrap();
    assert!(group_alive(v1_pid));
    // The app is still usable: the same rollout with a working command succeeds.
    let v3 = fixture
        .scheduler
        .apply(&fixture.spec("abandoned", 3, &[("web", 1)]))
        .await
        .unwrap();
    assert_eq!(v3.len(), 1);
    assert_eq!(v3[0].release, 3);
    fixture.scheduler.shutdown().await;
}
