//! `git push` to a whole platform (`Platform::start` on in-memory backends, local processes,
//! the built-in router) with a stock git client over smart HTTP and SSH: the failure cases
//! the builder issue names, slugs in blob storage, slug garbage collection and the clean-up
//! when an app is destroyed.

use deis_api::controller::ServiceError;
use deis_api::platform::{Backends, Platform, PlatformConfig};
use deis_api::secrets::PasswordCost;
use deis_api::wire::{KeyRequest, RegisterRequest};
use deis_builder::slug::SlugLimits;
use deis_core::model::User;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

struct World {
    platform: Platform,
    alice: User,
    alice_token: String,
    bob: User,
    bob_token: String,
    dir: tempfile::TempDir,
}

async fn start(tune: impl FnOnce(&mut PlatformConfig)) -> World {
    let dir = tempfile::tempdir().unwrap();
    let mut config = PlatformConfig::ephemeral(dir.path().join("data"), "push.test");
    config.ssh_addr = Some(([127, 0, 0, 1], 0).into());
    config.settings.password_cost = PasswordCost::MINIMAL_FOR_TESTS;
    config.settings.apply_timeout = Duration::from_secs(30);
    tune(&mut config);
    let platform = Platform::start(config, Backends::in_memory())
        .await
        .unwrap();
    let deis = platform.controller.clone();
    let mut users = Vec::new();
    for name in ["alice", "bob"] {
        let user = deis
            .register(
                None,
                &RegisterRequest {
                    username: name.into(),
                    password: format!("pw-{name}"),
                    email: format!("{name}@example.com"),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let token = deis.login(name, &format!("pw-{name}")).await.unwrap();
        users.push((user, token));
    }
    let (bob, bob_token) = users.pop().unwrap();
    let (alice, alice_token) = users.pop().unwrap();
    World {
        platform,
        alice,
        alice_token,
        bob,
        bob_token,
        dir,
    }
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

/// A git repository of the sample Python app (plus `files`), committed on master.
fn sample_repo(root: &Path, name: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/apps/python-env");
    for file in ["Procfile", "app.py"] {
        std::fs::copy(sample.join(file), dir.join(file)).unwrap();
    }
    for (file, bytes) in files {
        std::fs::write(dir.join(file), bytes).unwrap();
    }
    assert!(git(&dir, &["init", "-q", "-b", "master"]).status.success());
    assert!(git(&dir, &["add", "."]).status.success());
    assert!(git(&dir, &["commit", "-qm", "first"]).status.success());
    dir
}

/// A clone of `base` with `files` added in one more commit (so its push is a fast-forward).
fn variant(base: &Path, name: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let dir = base.parent().unwrap().join(name);
    let out = git(
        base.parent().unwrap(),
        &["clone", "-q", base.to_str().unwrap(), name],
    );
    assert!(out.status.success(), "{}", text(&out));
    for (file, bytes) in files {
        std::fs::write(dir.join(file), bytes).unwrap();
    }
    assert!(git(&dir, &["add", "."]).status.success());
    assert!(git(&dir, &["commit", "-q", "--allow-empty", "-m", name])
        .status
        .success());
    dir
}

fn commit(repo: &Path, message: &str) {
    std::fs::write(repo.join("version.txt"), message).unwrap();
    assert!(git(repo, &["add", "."]).status.success());
    assert!(git(repo, &["commit", "-qm", message]).status.success());
}

/// `git push` over smart HTTP as `user` with `token`; returns (success, output).
async fn push_http(w: &World, repo: &Path, user: &str, token: &str, app: &str) -> (bool, String) {
    let url = format!("http://{user}:{token}@{}/{app}.git", w.platform.api_addr());
    let repo = repo.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let out = git(&repo, &["push", &url, "master"]);
        (out.status.success(), text(&out))
    })
    .await
    .unwrap()
}

fn keygen(path: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test@laptop", "-f"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::read_to_string(path.with_extension("pub")).unwrap()
}

async fn push_ssh(w: &World, repo: &Path, key: &Path, app: &str) -> (bool, String) {
    let port = w.platform.ssh_addr().unwrap().port();
    let ssh = format!(
        "ssh -i {} -p {port} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
         -o IdentitiesOnly=yes -o BatchMode=yes -o LogLevel=ERROR",
        key.display()
    );
    let (repo, url) = (
        repo.to_path_buf(),
        format!("ssh://git@127.0.0.1:{port}/{app}.git"),
    );
    tokio::task::spawn_blocking(move || {
        let out = Command::new("git")
            .args(["push", &url, "master"])
            .current_dir(&repo)
            .env("GIT_SSH_COMMAND", ssh)
            .output()
            .unwrap();
        (out.status.success(), text(&out))
    })
    .await
    .unwrap()
}

/// Polls the router until `app` answers 200 with a body containing `expect`.
async fn wait_for_app(w: &World, app: &str, expect: &str) -> String {
    let url = format!("http://{}/", w.platform.router_addr());
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = client
            .get(&url)
            .header("Host", format!("{app}.push.test"))
            .send()
            .await;
        if let Ok(answer) = answer {
            if answer.status() == 200 {
                let body = answer.text().await.unwrap();
                if body.contains(expect) {
                    return body;
                }
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

fn blob_dir(w: &World, app: &str) -> PathBuf {
    w.dir.path().join("data/blobs/slugs").join(app)
}

fn stored_slugs(w: &World, app: &str) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(blob_dir(w, app)) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_to_a_missing_app_or_without_permission_are_refused_over_http_and_ssh() {
    let w = start(|_| {}).await;
    let deis = w.platform.controller.clone();
    deis.create_app(&w.alice, Some("mine")).await.unwrap();
    let repo = sample_repo(w.dir.path(), "src", &[]);

    // Smart HTTP: git shows the platform's message and exits non-zero.
    let (ok, output) = push_http(&w, &repo, "alice", &w.alice_token, "nosuch").await;
    assert!(!ok, "{output}");
    assert!(output.contains("remote: deis:"), "{output}");
    assert!(output.to_lowercase().contains("not found"), "{output}");
    let (ok, output) = push_http(&w, &repo, "bob", &w.bob_token, "mine").await;
    assert!(!ok, "{output}");
    assert!(
        output.contains("bob does not have permission to use mine"),
        "{output}"
    );
    let (ok, output) = push_http(&w, &repo, "bob", "not-a-token", "mine").await;
    assert!(!ok, "{output}");

    // SSH, with bob's registered key.
    let key = w.dir.path().join("id_bob");
    let public = keygen(&key);
    deis.add_key(
        &w.bob,
        &KeyRequest {
            id: "bob@laptop".into(),
            public: public.trim().into(),
        },
    )
    .await
    .unwrap();
    let (ok, output) = push_ssh(&w, &repo, &key, "nosuch").await;
    assert!(!ok, "{output}");
    assert!(output.contains("deis:"), "{output}");
    assert!(output.to_lowercase().contains("not found"), "{output}");
    let (ok, output) = push_ssh(&w, &repo, &key, "mine").await;
    assert!(!ok, "{output}");
    assert!(
        output.contains("bob does not have permission to use mine"),
        "{output}"
    );
    assert!(
        w.platform
            .controller
            .store()
            .latest_release("mine")
            .await
            .unwrap()
            .build
            .is_none(),
        "no refused push made a build"
    );

    // Once bob is a collaborator, his push over SSH deploys.
    deis.grant_perm(&w.alice, "mine", "bob").await.unwrap();
    let (ok, output) = push_ssh(&w, &repo, &key, "mine").await;
    assert!(ok, "{output}");
    assert!(output.contains("mine:v2 deployed"), "{output}");
    wait_for_app(&w, "mine", "hello from mine v2").await;
    w.platform.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_repositories_are_rejected_and_the_platform_is_unharmed() {
    let w = start(|config| {
        config.build_limits = SlugLimits {
            max_file_bytes: 512 * 1024,
            max_total_bytes: 2 * 1024 * 1024,
        };
    })
    .await;
    w.platform
        .controller
        .create_app(&w.alice, Some("target"))
        .await
        .unwrap();
    let token = w.alice_token.clone();
    let repo = sample_repo(w.dir.path(), "good", &[]);
    let (ok, output) = push_http(&w, &repo, "alice", &token, "target").await;
    assert!(ok, "{output}");
    wait_for_app(&w, "target", "hello from target v2").await;

    // A symlink out of the app.
    let evil = variant(&repo, "evil", &[]);
    std::os::unix::fs::symlink("../../../../etc/passwd", evil.join("passwd")).unwrap();
    assert!(git(&evil, &["add", "."]).status.success());
    assert!(git(&evil, &["commit", "-qm", "link"]).status.success());
    let (ok, output) = push_http(&w, &evil, "alice", &token, "target").await;
    assert!(!ok, "{output}");
    assert!(output.contains("points outside the app"), "{output}");
    assert!(output.contains("the push is rejected"), "{output}");

    // A file over the per-file limit (compressible, so the pack itself is small).
    let big = vec![b'a'; 1024 * 1024];
    let huge = variant(&repo, "huge", &[("big.txt", &big)]);
    let (ok, output) = push_http(&w, &huge, "alice", &token, "target").await;
    assert!(!ok, "{output}");
    assert!(
        output.contains("the limit is 524288 bytes per file"),
        "{output}"
    );

    // A pack larger than the whole app may be is refused by git before it is stored.
    let noise: Vec<u8> = {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        (0..3 * 1024 * 1024)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    };
    let noisy = variant(&repo, "noisy", &[("noise.bin", &noise)]);
    let (ok, output) = push_http(&w, &noisy, "alice", &token, "target").await;
    assert!(!ok, "{output}");
    assert!(
        output.contains("pack exceeds maximum allowed size"),
        "{output}"
    );

    // Unharmed: still v2, still answering, no object of the rejected pushes kept, and a
    // good push still deploys.
    assert_eq!(latest_version(&w, "target").await, 2);
    wait_for_app(&w, "target", "hello from target v2").await;
    let repo_size = dir_size(&w.dir.path().join("data/repos/target.git"));
    assert!(
        repo_size < 512 * 1024,
        "rejected objects were dropped ({repo_size} bytes)"
    );
    commit(&repo, "second");
    let (ok, output) = push_http(&w, &repo, "alice", &token, "target").await;
    assert!(ok, "{output}");
    wait_for_app(&w, "target", "hello from target v3").await;
    w.platform.shutdown().await;
}

fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slugs_live_in_blob_storage_and_old_ones_are_collected() {
    let w = start(|config| config.settings.slugs_kept = 2).await;
    let deis = w.platform.controller.clone();
    deis.create_app(&w.alice, Some("gc")).await.unwrap();
    let token = w.alice_token.clone();
    let repo = sample_repo(w.dir.path(), "src", &[]);

    // Four pushes: v2..v5.
    for n in 2..=5u64 {
        if n > 2 {
            commit(&repo, &format!("change {n}"));
        }
        let (ok, output) = push_http(&w, &repo, "alice", &token, "gc").await;
        assert!(ok, "{output}");
        assert_eq!(latest_version(&w, "gc").await, n);
    }
    wait_for_app(&w, "gc", "hello from gc v5").await;
    let builds = deis
        .store()
        .list_builds("gc", deis_core::model::PageRequest::ALL)
        .await
        .unwrap()
        .items;
    assert_eq!(builds.len(), 4);
    for build in &builds {
        assert!(
            deis_builder::slug_store::is_app_slug("gc", &build.image),
            "a build names its slug in blob storage: {}",
            build.image
        );
    }
    let kept = stored_slugs(&w, "gc");
    assert_eq!(kept.len(), 2, "only the last two slugs are kept: {kept:?}");

    // A config change is a release, not a build: nothing more is collected.
    deis.set_config(
        &w.alice,
        "gc",
        &serde_json::json!({"values": {"GREETING": "hi"}}),
    )
    .await
    .unwrap();
    assert_eq!(stored_slugs(&w, "gc"), kept);

    // v4's slug is kept: a rollback to it deploys (fetched from blob storage again).
    let release = deis.rollback(&w.alice, "gc", Some(4)).await.unwrap();
    assert_eq!(release.version, 7);
    wait_for_app(&w, "gc", "hello from gc v7").await;
    // v2's slug was collected: the rollback is refused with 409 and nothing changes.
    let refused = deis.rollback(&w.alice, "gc", Some(2)).await.unwrap_err();
    assert!(matches!(refused, ServiceError::Conflict(_)), "{refused:?}");
    assert!(
        refused.to_string().contains("garbage collected"),
        "{refused}"
    );
    assert_eq!(latest_version(&w, "gc").await, 7);
    wait_for_app(&w, "gc", "hello from gc v7").await;

    // A new push keeps the current (rolled back) build's slug and the new one.
    commit(&repo, "change 8");
    let (ok, output) = push_http(&w, &repo, "alice", &token, "gc").await;
    assert!(ok, "{output}");
    assert_eq!(stored_slugs(&w, "gc").len(), 2);

    // Destroying the app deletes its slugs, build cache and repository.
    let cache = w.dir.path().join("data/builder/cache/gc");
    std::fs::create_dir_all(&cache).unwrap();
    assert!(w.dir.path().join("data/repos/gc.git").is_dir());
    deis.destroy_app(&w.alice, "gc").await.unwrap();
    assert!(stored_slugs(&w, "gc").is_empty());
    assert!(!cache.exists(), "the build cache is gone");
    assert!(!w.dir.path().join("data/repos/gc.git").exists());

    // A new app of the same name starts from an empty repository.
    deis.create_app(&w.alice, Some("gc")).await.unwrap();
    let fresh = sample_repo(w.dir.path(), "fresh", &[]);
    let (ok, output) = push_http(&w, &fresh, "alice", &token, "gc").await;
    assert!(ok, "{output}");
    wait_for_app(&w, "gc", "hello from gc v2").await;
    w.platform.shutdown().await;
}
