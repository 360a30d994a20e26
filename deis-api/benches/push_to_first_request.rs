//! From `git push` to the first request the new release answers through the router.
//!
//! Starts a whole platform (`Platform::start` with a SQLite store, in-memory discovery,
//! local processes, the built-in router), creates a Procfile app (the sample Python app)
//! and pushes `DEIS_BENCH_PUSHES` (default 10) commits with a stock `git` over smart
//! HTTP. For each push it measures:
//!
//! - **push**: the wall time of `git push`; the pre-receive hook waits for the build, the
//!   release and the health-gated rollout, so this includes them;
//! - **after push**: from `git push` returning to the first `200` through the router whose
//!   body names the new release (the target is under 2 s);
//!
//! and, separately, **build**: the build pipeline alone (`Builder::build` of the same source,
//! slug upload included) for the same number of runs.
//!
//! Run: `cargo bench -p deis-api --bench push_to_first_request` (`--profile dev` skips the
//! release build; the times are dominated by git, process start and health checks).
//!
//! Measured on the 2-core development machine (shared with other builds), dev profile,
//! 10 pushes: push p50 851 ms / max 923 ms; after push p50 3.8 ms / max 17.9 ms (target
//! < 2 s: the push returns only once the release is rolled out, so what remains is the
//! publisher → discovery → route sync → router path); build alone p50 3.0 ms / max 10.3 ms.

use deis_api::platform::{Backends, Platform, PlatformConfig};
use deis_api::secrets::PasswordCost;
use deis_api::wire::RegisterRequest;
use deis_builder::BuildRequest;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn git(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("git")
        .args([
            "-c",
            "user.email=bench@example.com",
            "-c",
            "user.name=Bench",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .expect("git runs")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name:<12} n={:<3} p50={:>8.1} ms  max={:>8.1} ms  min={:>8.1} ms",
        samples.len(),
        percentile(&samples, 0.5).as_secs_f64() * 1e3,
        samples.last().unwrap().as_secs_f64() * 1e3,
        samples[0].as_secs_f64() * 1e3,
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pushes: u64 = std::env::var("DEIS_BENCH_PUSHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let dir = tempfile::tempdir()?;
    let mut config = PlatformConfig::ephemeral(dir.path().join("data"), "bench.test");
    config.settings.password_cost = PasswordCost::MINIMAL_FOR_TESTS;
    let store = deis_store::open_store(&format!(
        "sqlite://{}",
        dir.path().join("deis.db").display()
    ))
    .await?;
    let backends = Backends {
        store,
        ..Backends::in_memory()
    };
    let platform = Platform::start(config, backends).await?;
    let deis = platform.controller.clone();
    let user = deis
        .register(
            None,
            &RegisterRequest {
                username: "bench".into(),
                password: "pw-bench".into(),
                email: "bench@example.com".into(),
                ..Default::default()
            },
        )
        .await?;
    let token = deis.login("bench", "pw-bench").await?;
    deis.create_app(&user, Some("bench")).await?;

    let repo = dir.path().join("src");
    std::fs::create_dir_all(&repo)?;
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/apps/python-env");
    for file in ["Procfile", "app.py"] {
        std::fs::copy(sample.join(file), repo.join(file))?;
    }
    assert!(git(&repo, &["init", "-q", "-b", "master"]).status.success());
    let url = format!("http://bench:{token}@{}/bench.git", platform.api_addr());
    let router = format!("http://{}/", platform.router_addr());
    let client = reqwest::Client::new();

    let mut push_times = Vec::new();
    let mut after_push = Vec::new();
    for n in 0..pushes {
        std::fs::write(repo.join("version.txt"), n.to_string())?;
        assert!(git(&repo, &["add", "."]).status.success());
        assert!(git(&repo, &["commit", "-qm", &format!("v{n}")])
            .status
            .success());
        let started = Instant::now();
        let output = tokio::task::spawn_blocking({
            let (repo, url) = (repo.clone(), url.clone());
            move || git(&repo, &["push", "-q", &url, "master"])
        })
        .await?;
        let pushed = Instant::now();
        if !output.status.success() {
            return Err(format!(
                "push {n} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
        let version = deis.store().latest_release("bench").await?.version;
        let expect = format!("hello from bench v{version} ");
        let deadline = pushed + Duration::from_secs(30);
        loop {
            let answer = client
                .get(&router)
                .header("Host", "bench.bench.test")
                .send()
                .await;
            if let Ok(answer) = answer {
                if answer.status() == 200 && answer.text().await?.starts_with(&expect) {
                    break;
                }
            }
            if Instant::now() > deadline {
                return Err(format!("v{version} did not answer within 30 s").into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        push_times.push(pushed - started);
        after_push.push(pushed.elapsed());
    }

    // The build alone, on the same source.
    let builder = platform.builder().clone();
    let mut build_times = Vec::new();
    let source = dir.path().join("build-src");
    let (log, mut lines) = tokio::sync::mpsc::channel(1024);
    let drain = tokio::spawn(async move { while lines.recv().await.is_some() {} });
    let log = Arc::new(log);
    for n in 0..pushes {
        let _ = std::fs::remove_dir_all(&source);
        std::fs::create_dir_all(&source)?;
        for file in ["Procfile", "app.py"] {
            std::fs::copy(sample.join(file), source.join(file))?;
        }
        let request = BuildRequest {
            app: "bench".into(),
            sha: format!("{n:07x}"),
            source_dir: source.clone(),
            env: Default::default(),
        };
        let started = Instant::now();
        let output = builder.build(&request, &log).await?;
        build_times.push(started.elapsed());
        builder.slugs().delete(&output.slug).await?;
    }
    drop(log);
    let _ = drain.await;

    println!("git push of a Procfile app to the local scheduler ({pushes} pushes)");
    report("push", push_times);
    report("after push", after_push);
    report("build", build_times);
    platform.shutdown().await;
    Ok(())
}
