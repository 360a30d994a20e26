//! Dockerfile apps over a stock `git push` (smart HTTP) to a whole platform: on the Docker
//! scheduler against this machine's Docker Engine (the image built with bollard, routed
//! through the built-in router; a failing build rejects the push and keeps the release),
//! and on the local scheduler (refused with the reason; the release kept).
//!
//! No image is pulled: the base image is `docker import`ed from this machine's static
//! busybox and carries a label every image built on it inherits, so a guard removes every
//! container and image the test made, even when it fails. Each test is bounded in time.

use deis_api::controller::ServiceError;
use deis_api::platform::{Backends, Platform, PlatformConfig};
use deis_api::secrets::PasswordCost;
use deis_api::wire::{BuildRequest, RegisterRequest};
use deis_core::model::User;
use deis_scheduler::{DockerConfig, DockerScheduler};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TEST_LABEL: &str = "io.deis.test";
const LIMIT: Duration = Duration::from_secs(240);

struct World {
    platform: Platform,
    alice: User,
    token: String,
    dir: tempfile::TempDir,
}

async fn start(backends: Backends) -> World {
    let dir = tempfile::tempdir().unwrap();
    let mut config = PlatformConfig::ephemeral(dir.path().join("data"), "push.test");
    config.settings.password_cost = PasswordCost::MINIMAL_FOR_TESTS;
    config.settings.apply_timeout = Duration::from_secs(60);
    let platform = Platform::start(config, backends).await.unwrap();
    let deis = platform.controller.clone();
    let alice = deis
        .register(
            None,
            &RegisterRequest {
                username: "alice".into(),
                password: "pw-alice".into(),
                email: "alice@example.com".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let token = deis.login("alice", "pw-alice").await.unwrap();
    World {
        platform,
        alice,
        token,
        dir,
    }
}

/// Removes every container the test's scheduler labelled and every image built on the
/// test's base image (they inherit its label), then the base image.
struct Cleanup {
    owner: String,
    id: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let ids = |args: &[&str]| -> Vec<String> {
            Command::new("docker")
                .args(args)
                .output()
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .split_whitespace()
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default()
        };
        let owner = format!("label=io.deis.owner={}", self.owner);
        let containers = ids(&["ps", "-aq", "--filter", &owner]);
        if !containers.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f"])
                .args(&containers)
                .output();
        }
        let label = format!("label={TEST_LABEL}={}", self.id);
        // Children before parents: a few rounds remove the whole chain.
        for _ in 0..10 {
            let images = ids(&["images", "-aq", "--filter", &label]);
            if images.is_empty() {
                break;
            }
            for image in images {
                let _ = Command::new("docker").args(["rmi", "-f", &image]).output();
            }
        }
    }
}

/// Imports `image` from this machine's static busybox, labelled `io.deis.test=<id>`.
fn import_base_image(image: &str, id: &str) {
    let root = tempfile::tempdir().unwrap();
    let bin = root.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(root.path().join("tmp")).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox")).expect("busybox-static is installed");
    for applet in ["sh", "httpd", "test", "echo", "cat", "mkdir", "false", "ls"] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
    let tar = root.path().with_extension("tar");
    let packed = Command::new("tar")
        .arg("-C")
        .arg(root.path())
        .args(["-cf"])
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(packed.success());
    let imported = Command::new("docker")
        .arg("import")
        .args(["--change", &format!("LABEL {TEST_LABEL}={id}")])
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

fn git(dir: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .args(["-c", "user.email=dev@example.com", "-c", "user.name=Dev"])
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Writes `files` (a `None` content deletes the file) and commits them.
fn commit(repo: &Path, message: &str, files: &[(&str, Option<&str>)]) {
    std::fs::create_dir_all(repo).unwrap();
    if !repo.join(".git").exists() {
        assert!(git(repo, &["init", "-q", "-b", "master"]).status.success());
    }
    for (file, content) in files {
        match content {
            Some(content) => std::fs::write(repo.join(file), content).unwrap(),
            None => {
                let _ = std::fs::remove_file(repo.join(file));
            }
        }
    }
    assert!(git(repo, &["add", "-A"]).status.success());
    let out = git(repo, &["commit", "-q", "--allow-empty", "-m", message]);
    assert!(out.status.success(), "{}", text(&out));
}

async fn push(w: &World, repo: &Path, app: &str) -> (bool, String) {
    let url = format!(
        "http://alice:{}@{}/{app}.git",
        w.token,
        w.platform.api_addr()
    );
    let repo = repo.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let out = git(&repo, &["push", &url, "master"]);
        (out.status.success(), text(&out))
    })
    .await
    .unwrap()
}

/// Polls the router until `app` answers 200 with a body containing `expect`.
async fn wait_for_app(w: &World, app: &str, expect: &str) {
    let url = format!("http://{}/", w.platform.router_addr());
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = client
            .get(&url)
            .header("Host", format!("{app}.push.test"))
            .send()
            .await;
        if let Ok(answer) = answer {
            if answer.status() == 200 && answer.text().await.unwrap().contains(expect) {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{app} did not answer with {expect:?} through the router"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn latest_version(w: &World, app: &str) -> u64 {
    w.platform
        .controller
        .store()
        .latest_release(app)
        .await
        .unwrap()
        .version
}

fn unique_id() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dockerfile_app_builds_deploys_on_docker_and_a_failed_build_keeps_the_release() {
    let id = unique_id();
    let owner = format!("deis-dockerfile-test-{id}");
    let _cleanup = Cleanup {
        owner: owner.clone(),
        id: id.clone(),
    };
    let base = format!("deis-dockerfile-base:{id}");
    import_base_image(&base, &id);
    let scheduler = DockerScheduler::connect(DockerConfig {
        owner,
        name_prefix: format!("t{id}-"),
        stop_grace: Duration::from_secs(2),
        drain_delay: Duration::ZERO,
        settle: Duration::from_millis(300),
        health_grace: Duration::from_secs(20),
        ..DockerConfig::default()
    })
    .await
    .expect("the Docker Engine answers");
    let mut backends = Backends::in_memory();
    backends.scheduler = Some(Arc::new(scheduler));
    let w = start(backends).await;
    tokio::time::timeout(LIMIT, async {
        // App names are image repositories: unique per run, lower case.
        let app = format!("df{}", id.replace('-', ""));
        w.platform
            .controller
            .create_app(&w.alice, Some(&app))
            .await
            .unwrap();
        let repo: PathBuf = w.dir.path().join("src");
        let dockerfile = format!(
            "FROM {base}\n\
             COPY . /src\n\
             RUN test ! -e /src/secret.txt && mkdir -p /www && cat /src/index.html > /www/index.html\n\
             EXPOSE 8080\n\
             CMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n"
        );
        commit(
            &repo,
            "first",
            &[
                ("Dockerfile", Some(&dockerfile)),
                (".dockerignore", Some("secret.txt\n")),
                ("secret.txt", Some("not for the image\n")),
                ("index.html", Some("hello from a Dockerfile\n")),
            ],
        );
        let (ok, output) = push(&w, &repo, &app).await;
        assert!(ok, "{output}");
        // The engine's output streamed to the pusher as `remote:` lines.
        assert!(output.contains("remote: -----> Dockerfile app detected"), "{output}");
        assert!(output.contains("remote:        Step 1/"), "{output}");
        assert!(output.contains(&format!("Built image {app}:git-")), "{output}");
        assert!(output.contains("Exposes port 8080"), "{output}");
        assert!(output.contains("Process types -> cmd"), "{output}");
        wait_for_app(&w, &app, "hello from a Dockerfile").await;
        let deployed = latest_version(&w, &app).await;
        let store = w.platform.controller.store();
        let release = store.latest_release(&app).await.unwrap();
        let build = store
            .get_build(&app, release.build.unwrap())
            .await
            .unwrap();
        assert!(build.image.starts_with(&format!("{app}:git-")), "{}", build.image);
        assert_eq!(build.dockerfile, "true");
        let formation = store.get_app(&app).await.unwrap().structure;
        assert_eq!(formation.get("cmd"), Some(&1), "{formation:?}");

        // A Procfile adds a type next to `cmd`.
        commit(
            &repo,
            "second",
            &[
                ("index.html", Some("hello again\n")),
                ("Procfile", Some("worker: while true; do sleep 1; done\n")),
            ],
        );
        let (ok, output) = push(&w, &repo, &app).await;
        assert!(ok, "{output}");
        assert!(output.contains("Process types -> cmd, worker"), "{output}");
        wait_for_app(&w, &app, "hello again").await;
        let deployed_again = latest_version(&w, &app).await;
        assert_eq!(deployed_again, deployed + 1);

        // A Dockerfile that fails to build rejects the push; the release stays and serves.
        commit(
            &repo,
            "broken",
            &[(
                "Dockerfile",
                Some(&format!("FROM {base}\nRUN echo about to fail && false\nCMD [\"sh\"]\n")),
            )],
        );
        let (ok, output) = push(&w, &repo, &app).await;
        assert!(!ok, "a failed build must reject the push: {output}");
        assert!(output.contains("about to fail"), "{output}");
        assert!(output.contains("deis: build failed: docker build failed"), "{output}");
        assert_eq!(latest_version(&w, &app).await, deployed_again);
        wait_for_app(&w, &app, "hello again").await;

        // Another user cannot deploy this app's image into an app of theirs with `deis
        // pull`: the image carries the app's code.
        let deis = &w.platform.controller;
        let bob = deis
            .register(
                None,
                &RegisterRequest {
                    username: "bob".into(),
                    password: "pw-bob".into(),
                    email: "bob@example.com".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let bobs = format!("{app}b");
        deis.create_app(&bob, Some(&bobs)).await.unwrap();
        let current = store.latest_release(&app).await.unwrap();
        let image = store
            .get_build(&app, current.build.unwrap())
            .await
            .unwrap()
            .image;
        let pulled = deis
            .create_build(
                &bob,
                &bobs,
                &BuildRequest {
                    image: image.clone(),
                    ..Default::default()
                },
            )
            .await;
        match pulled {
            Err(ServiceError::Forbidden(message)) => {
                assert!(message.contains("built for another app"), "{message}")
            }
            other => panic!("bob deployed alice's image {image}: {other:?}"),
        }
        assert_eq!(
            store.latest_release(&bobs).await.unwrap().version,
            1,
            "no release was made"
        );

        // Destroying the app removes its containers and the images built for it.
        let label = format!("label=io.deis.app={app}");
        let built = Command::new("docker")
            .args(["images", "-q", "--filter", &label])
            .output()
            .unwrap();
        let built = String::from_utf8_lossy(&built.stdout).lines().count();
        assert_eq!(built, 2, "one image per successful build, labelled with the app");
        w.platform
            .controller
            .destroy_app(&w.alice, &app)
            .await
            .unwrap();
        let left = Command::new("docker")
            .args(["images", "-q", "--filter", &label])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&left.stdout).trim(), "", "images left");
    })
    .await
    .expect("the test finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_local_scheduler_a_dockerfile_app_is_refused_and_the_release_kept() {
    let w = start(Backends::in_memory()).await;
    tokio::time::timeout(LIMIT, async {
        w.platform
            .controller
            .create_app(&w.alice, Some("local"))
            .await
            .unwrap();
        let repo = w.dir.path().join("src");
        let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/apps/python-env");
        let read = |f: &str| std::fs::read_to_string(sample.join(f)).unwrap();
        // With a Procfile, buildpacks build it and the pusher is told the Dockerfile is
        // ignored.
        commit(
            &repo,
            "first",
            &[
                ("Procfile", Some(&read("Procfile"))),
                ("app.py", Some(&read("app.py"))),
                ("Dockerfile", Some("FROM scratch\nCMD [\"/app\"]\n")),
            ],
        );
        let (ok, output) = push(&w, &repo, "local").await;
        assert!(ok, "{output}");
        assert!(
            output.contains(
                "Dockerfile ignored: Dockerfile builds need the docker or swarm scheduler; \
                 this platform runs apps as local processes"
            ),
            "{output}"
        );
        let version = latest_version(&w, "local").await;
        // Without one, nothing can run it here: refused with the reason.
        commit(&repo, "dockerfile only", &[("Procfile", None)]);
        let (ok, output) = push(&w, &repo, "local").await;
        assert!(!ok, "{output}");
        assert!(
            output.contains(
                "remote: deis: build failed: rejected: this app has a Dockerfile: Dockerfile \
                 builds need the docker or swarm scheduler; this platform runs apps as local \
                 processes"
            ),
            "{output}"
        );
        assert_eq!(latest_version(&w, "local").await, version);
    })
    .await
    .expect("the test finished in time");
}
