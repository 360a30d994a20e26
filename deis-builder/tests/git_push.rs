//! `git push` with a stock git client over smart HTTP, through the real `git` on the server
//! side, the pre-receive hook and the build pipeline.

mod common;

use common::{app_repo, git, Recorder};
use deis_builder::git::{GitRepos, GitService, PushContext};
use deis_builder::hook::HookServer;
use deis_builder::smart_http;
use deis_builder::{Builder, BuilderSettings};
use std::convert::Infallible;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

struct Platform {
    address: std::net::SocketAddr,
    repos: GitRepos,
    recorder: Arc<Recorder>,
    _dir: tempfile::TempDir,
}

async fn platform(settings: impl FnOnce(&mut BuilderSettings), recorder: Recorder) -> Platform {
    let dir = tempfile::tempdir().unwrap();
    let mut builder_settings = common::settings_in(dir.path());
    settings(&mut builder_settings);
    let recorder = Arc::new(recorder);
    let hooks = HookServer::start(
        dir.path().join("builder.sock"),
        Builder::new(builder_settings),
        recorder.clone(),
    )
    .await
    .unwrap();
    let repos = GitRepos::new(dir.path().join("repos"), hooks);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let served = repos.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let repos = served.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |request: hyper::Request<hyper::body::Incoming>| {
                        let repos = repos.clone();
                        async move { Ok::<_, Infallible>(serve(&repos, request).await) }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Platform {
        address,
        repos,
        recorder,
        _dir: dir,
    }
}

/// What the controller does in front of the handlers: authenticate (here: the user name
/// from the URL's user part is trusted) and route.
async fn serve(
    repos: &GitRepos,
    request: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<smart_http::GitBody> {
    let path = request.uri().path().to_string();
    let (app, rest) = smart_http::split_repo_path(&path).expect("a repository path");
    // The app's uuid, as the controller would tell it: here from a header the test's git
    // sends (`http.extraHeader`), none when absent.
    let app_uuid = request
        .headers()
        .get("x-test-app-uuid")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let context = PushContext {
        app: app.clone(),
        user: "alice".into(),
        app_uuid,
        fingerprint: None,
        connection: "test".into(),
    };
    if rest == "info/refs" {
        let query = request.uri().query().unwrap_or("").to_string();
        let service = query.strip_prefix("service=");
        return smart_http::info_refs(repos, &context, service).await;
    }
    let service = GitService::parse(rest).expect("a git service");
    let gzip = request
        .headers()
        .get("content-encoding")
        .is_some_and(|v| v == "gzip");
    smart_http::rpc(repos, service, &context, request.into_body(), gzip).await
}

fn push(dir: &Path, address: std::net::SocketAddr, app: &str) -> (bool, String) {
    let url = format!("http://{address}/{app}.git");
    let output = git(dir, &["push", &url, "master"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn server_head(repos: &GitRepos, app: &str) -> Option<String> {
    let output = Command::new("git")
        .args(["rev-parse", "--verify", "-q", "refs/heads/master"])
        .current_dir(repos.repo_path(app))
        .output()
        .unwrap();
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_builds_streams_output_and_deploys() {
    let platform = platform(|_| {}, Recorder::default()).await;
    let work = tempfile::tempdir().unwrap();
    let repo = app_repo(
        work.path(),
        "app",
        &[("Procfile", "web: ./serve $PORT\n"), ("serve", "x")],
    );
    let (ok, output) = tokio::task::spawn_blocking({
        let repo = repo.clone();
        let address = platform.address;
        move || push(&repo, address, "go-app")
    })
    .await
    .unwrap();
    assert!(ok, "{output}");
    assert!(
        output.contains("remote: -----> Procfile app detected"),
        "{output}"
    );
    assert!(
        output.contains("remote: done, go-app:v2 deployed to Deis"),
        "{output}"
    );
    let deployed = platform.recorder.deployed.lock().unwrap().clone();
    assert_eq!(deployed.len(), 1);
    assert_eq!(deployed[0].1["web"], "./serve $PORT");
    let head = String::from_utf8_lossy(&git(&repo, &["rev-parse", "HEAD"]).stdout)
        .trim()
        .to_string();
    assert_eq!(
        server_head(&platform.repos, "go-app").as_deref(),
        Some(head.as_str())
    );
    assert_eq!(
        platform.recorder.begun.lock().unwrap()[0],
        ("go-app".to_string(), head)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_build_rejects_the_push_and_keeps_the_old_ref() {
    let platform = platform(|_| {}, Recorder::default()).await;
    let work = tempfile::tempdir().unwrap();
    let repo = app_repo(work.path(), "app", &[("Procfile", "web: ./serve\n")]);
    let address = platform.address;
    let first = repo.clone();
    let (ok, output) = tokio::task::spawn_blocking(move || push(&first, address, "keep"))
        .await
        .unwrap();
    assert!(ok, "{output}");
    let good = server_head(&platform.repos, "keep");
    fs::write(repo.join("Procfile"), "web ./serve\n").unwrap();
    assert!(git(&repo, &["commit", "-qam", "broken"]).status.success());
    let second = repo.clone();
    let (ok, output) = tokio::task::spawn_blocking(move || push(&second, address, "keep"))
        .await
        .unwrap();
    assert!(!ok, "a failed build must reject the push: {output}");
    assert!(output.contains("Procfile line 1"), "{output}");
    assert!(output.contains("the push is rejected"), "{output}");
    assert_eq!(
        server_head(&platform.repos, "keep"),
        good,
        "the ref did not move"
    );
    assert_eq!(platform.recorder.deployed.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_can_refuse_a_push() {
    let recorder = Recorder {
        refuse_user: Some("alice".into()),
        ..Recorder::default()
    };
    let platform = platform(|_| {}, recorder).await;
    let work = tempfile::tempdir().unwrap();
    let repo = app_repo(work.path(), "app", &[("Procfile", "web: ./serve\n")]);
    let address = platform.address;
    let (ok, output) = tokio::task::spawn_blocking(move || push(&repo, address, "nope"))
        .await
        .unwrap();
    assert!(!ok);
    assert!(output.contains("alice may not push to nope"), "{output}");
    assert_eq!(server_head(&platform.repos, "nope"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_concurrent_push_to_the_same_app_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let slow = dir.path().join("slow");
    fs::create_dir_all(slow.join("bin")).unwrap();
    for (name, body) in [
        ("detect", "echo Slow"),
        ("compile", "sleep 3"),
        ("release", "echo '---'"),
    ] {
        let path = slow.join("bin").join(name);
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let platform = platform(move |s| s.buildpacks = vec![slow], Recorder::default()).await;
    let work = tempfile::tempdir().unwrap();
    let one = app_repo(work.path(), "one", &[("Procfile", "web: ./a\n")]);
    let two = app_repo(work.path(), "two", &[("Procfile", "web: ./b\n")]);
    let address = platform.address;
    let first = tokio::task::spawn_blocking(move || push(&one, address, "busy"));
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let second = tokio::task::spawn_blocking(move || push(&two, address, "busy"));
    let (first, second) = (first.await.unwrap(), second.await.unwrap());
    assert!(first.0, "the first push succeeds: {}", first.1);
    assert!(!second.0, "the second push is refused: {}", second.1);
    assert!(
        second.1.contains("another git push is ongoing"),
        "{}",
        second.1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_master_or_main_is_deployed_and_clones_work() {
    let platform = platform(|_| {}, Recorder::default()).await;
    let work = tempfile::tempdir().unwrap();
    let repo = app_repo(work.path(), "app", &[("Procfile", "web: ./serve\n")]);
    let url = format!("http://{}/branches.git", platform.address);
    let (ok, output) = tokio::task::spawn_blocking({
        let (repo, url) = (repo.clone(), url.clone());
        move || {
            let out = git(&repo, &["push", &url, "master:feature"]);
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stderr).to_string(),
            )
        }
    })
    .await
    .unwrap();
    assert!(!ok);
    assert!(output.contains("only pushes to master or main"), "{output}");
    let (ok, output) = tokio::task::spawn_blocking({
        let repo = repo.clone();
        let address = platform.address;
        move || push(&repo, address, "branches")
    })
    .await
    .unwrap();
    assert!(ok, "{output}");
    let clone_dir = work.path().join("clone");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("git")
            .args(["clone", "-q", &url])
            .arg(&clone_dir)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A buildpack that detects `hello.txt` and counts its compile runs in the build cache
/// (`cache run N`), to show whether a build saw an earlier one's cache.
fn counting_buildpack(dir: &Path) -> std::path::PathBuf {
    let pack = dir.join("counting");
    fs::create_dir_all(pack.join("bin")).unwrap();
    for (name, body) in [
        ("detect", "[ -f \"$1/hello.txt\" ] && echo Counting"),
        (
            "compile",
            "n=$(cat \"$2/runs\" 2>/dev/null || echo 0); n=$((n+1)); echo $n > \"$2/runs\"\n\
             echo \"       cache run $n\"",
        ),
        ("release", "echo '---'"),
    ] {
        let path = pack.join("bin").join(name);
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
    pack
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_push_reuses_the_build_cache() {
    let dir = tempfile::tempdir().unwrap();
    let pack = counting_buildpack(dir.path());
    let platform = platform(move |s| s.buildpacks = vec![pack], Recorder::default()).await;
    let work = tempfile::tempdir().unwrap();
    let repo = app_repo(
        work.path(),
        "app",
        &[("Procfile", "web: ./serve\n"), ("hello.txt", "1")],
    );
    let address = platform.address;
    let first = repo.clone();
    let (ok, output) = tokio::task::spawn_blocking(move || push(&first, address, "cached"))
        .await
        .unwrap();
    assert!(ok, "{output}");
    assert!(output.contains("remote:        cache run 1"), "{output}");
    fs::write(repo.join("hello.txt"), "2").unwrap();
    assert!(git(&repo, &["commit", "-qam", "second"]).status.success());
    let second = repo.clone();
    let (ok, output) = tokio::task::spawn_blocking(move || push(&second, address, "cached"))
        .await
        .unwrap();
    assert!(ok, "{output}");
    assert!(
        output.contains("remote:        cache run 2"),
        "the second build saw the first one's cache: {output}"
    );
    assert_eq!(platform.recorder.deployed.lock().unwrap().len(), 2);
}

/// `git push` of `dir` to `app`, as the app with uuid `app_uuid`.
fn push_as(dir: &Path, address: std::net::SocketAddr, app: &str, app_uuid: &str) -> (bool, String) {
    let url = format!("http://{address}/{app}.git");
    let header = format!("http.extraHeader=X-Test-App-Uuid: {app_uuid}");
    let output = git(dir, &["-c", &header, "push", &url, "master"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_created_again_under_a_destroyed_ones_name_gets_a_fresh_repository_and_cache() {
    let dir = tempfile::tempdir().unwrap();
    let pack = counting_buildpack(dir.path());
    let platform = platform(move |s| s.buildpacks = vec![pack], Recorder::default()).await;
    let address = platform.address;
    let work = tempfile::tempdir().unwrap();
    let earlier = app_repo(
        work.path(),
        "earlier",
        &[
            ("Procfile", "web: ./serve\n"),
            ("hello.txt", "secret of the first owner"),
        ],
    );
    let later = app_repo(
        work.path(),
        "later",
        &[("Procfile", "web: ./serve\n"), ("hello.txt", "new owner")],
    );
    const EARLIER: &str = "11111111-1111-4111-8111-111111111111";
    const LATER: &str = "22222222-2222-4222-8222-222222222222";

    let repo = earlier.clone();
    let (ok, output) =
        tokio::task::spawn_blocking(move || push_as(&repo, address, "reborn", EARLIER))
            .await
            .unwrap();
    assert!(ok, "{output}");
    assert!(output.contains("remote:        cache run 1"), "{output}");
    let earlier_head = server_head(&platform.repos, "reborn").expect("the first owner's push");

    // The app is destroyed and created again (a new uuid) before the builder's clean-up ran:
    // a clone by the new owner must not see the first owner's history.
    let url = format!("http://{address}/reborn.git");
    let clone_dir = work.path().join("clone");
    let clone = tokio::task::spawn_blocking({
        let clone_dir = clone_dir.clone();
        move || {
            let header = format!("http.extraHeader=X-Test-App-Uuid: {LATER}");
            Command::new("git")
                .args(["-c", &header, "clone", "-q", &url])
                .arg(&clone_dir)
                .env("GIT_TERMINAL_PROMPT", "0")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        clone.status.success(),
        "{}",
        String::from_utf8_lossy(&clone.stderr)
    );
    assert!(
        !clone_dir.join("hello.txt").exists(),
        "the new owner got the old tree"
    );
    assert_eq!(server_head(&platform.repos, "reborn"), None);

    // Their push of unrelated history is taken, and builds with an empty cache.
    let repo = later.clone();
    let (ok, output) =
        tokio::task::spawn_blocking(move || push_as(&repo, address, "reborn", LATER))
            .await
            .unwrap();
    assert!(ok, "{output}");
    assert!(
        output.contains("remote:        cache run 1"),
        "the new app saw the destroyed one's build cache: {output}"
    );
    let later_head = server_head(&platform.repos, "reborn").expect("the new owner's push");
    assert_ne!(later_head, earlier_head);

    // The new app keeps its own repository and cache from then on.
    fs::write(later.join("hello.txt"), "new owner, again").unwrap();
    assert!(git(&later, &["commit", "-qam", "second"]).status.success());
    let repo = later.clone();
    let (ok, output) =
        tokio::task::spawn_blocking(move || push_as(&repo, address, "reborn", LATER))
            .await
            .unwrap();
    assert!(ok, "{output}");
    assert!(output.contains("remote:        cache run 2"), "{output}");
}
