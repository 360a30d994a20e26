//! The multi-host topology through the real binaries: separate `deisd --role logger`,
//! `--role controller`, `--role builder` and `--role router` processes sharing etcd
//! discovery (`DEIS_TEST_ETCD_ENDPOINTS`, set by scripts/test; a private key namespace per
//! run) and the controller's SQLite store. A new user registers, adds a key, creates an app,
//! pushes it over SSH to the builder, reaches it through the router, and reads its output
//! and the controller's events through the logger; pushes again over the builder's git
//! smart HTTP with the API token; and after `destroy` the builder deletes the app's
//! repository and slugs.

mod support;

use std::path::Path;
use std::process::Command;
use support::{copy_dir, deis_binary, deisd, free_port, wait_http, wait_tcp, World};

fn etcd_discovery_url() -> String {
    let endpoints = std::env::var("DEIS_TEST_ETCD_ENDPOINTS").unwrap_or_default();
    assert!(
        !endpoints.is_empty(),
        "DEIS_TEST_ETCD_ENDPOINTS is not set: this test needs a running etcd \
         (run scripts/test, or start etcd and export DEIS_TEST_ETCD_ENDPOINTS=http://127.0.0.1:PORT)"
    );
    let hosts: Vec<&str> = endpoints
        .split(',')
        .map(|e| e.trim().trim_start_matches("http://"))
        .collect();
    let unique = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "etcd://{}?namespace=/roles-e2e-{}-{unique}",
        hosts.join(","),
        std::process::id()
    )
}

fn s(value: impl ToString) -> String {
    value.to_string()
}

#[test]
fn separate_roles_deploy_route_and_log_a_pushed_app() {
    let discovery = etcd_discovery_url();
    let world = World {
        root: tempfile::tempdir().unwrap(),
        api: free_port(),
        router: free_port(),
        ssh: free_port(),
        deis: deis_binary(),
    };
    let w = &world;
    let root = w.root.path().to_path_buf();
    std::fs::create_dir_all(w.home().join(".ssh")).unwrap();
    std::fs::create_dir_all(w.app_dir()).unwrap();
    let (logger_port, syslog_port) = (free_port(), free_port());
    let git_http = free_port();
    let logger_key = "logger-secret-for-the-test";
    let builder_key = "builder-secret-for-the-test";
    let api = format!("http://127.0.0.1:{}", w.api);
    let logger_url = format!("http://127.0.0.1:{logger_port}");
    // The builder uploads slugs where the controller's scheduler fetches them.
    let blob_store = format!("--blob-store=file://{}", root.join("blobs").display());

    let _logger = deisd(
        &[
            s("--role=logger"),
            s("--data-dir"),
            s(root.join("logger").display()),
            format!("--logger-addr=127.0.0.1:{logger_port}"),
            format!("--syslog-addr=127.0.0.1:{syslog_port}"),
            format!("--logger-key={logger_key}"),
        ],
        &w.home(),
    );
    wait_http(&format!("{logger_url}/healthz"), "the logger");
    let _controller = deisd(
        &[
            s("--role=controller"),
            s("--data-dir"),
            s(root.join("controller").display()),
            format!("--api-addr=127.0.0.1:{}", w.api),
            format!(
                "--store=sqlite://{}",
                root.join("controller/deis.db").display()
            ),
            format!("--discovery={discovery}"),
            format!("--logger-url={logger_url}"),
            format!("--logger-key={logger_key}"),
            format!("--builder-key={builder_key}"),
            blob_store.clone(),
        ],
        &w.home(),
    );
    let _builder = deisd(
        &[
            s("--role=builder"),
            s("--data-dir"),
            s(root.join("builder").display()),
            format!("--ssh-addr=127.0.0.1:{}", w.ssh),
            format!("--git-http-addr=127.0.0.1:{git_http}"),
            s("--repo-gc-interval=1"),
            format!("--controller-url={api}"),
            format!("--builder-key={builder_key}"),
            blob_store,
        ],
        &w.home(),
    );
    let _router = deisd(
        &[
            s("--role=router"),
            format!("--router-addr=127.0.0.1:{}", w.router),
            format!("--discovery={discovery}"),
        ],
        &w.home(),
    );
    wait_http(&format!("{api}/healthz"), "the controller");
    wait_tcp(w.ssh, "the builder");
    wait_http(
        &format!("http://127.0.0.1:{git_http}/healthz"),
        "the builder's git HTTP",
    );
    wait_tcp(w.router, "the router");

    // The internal APIs refuse callers without their keys.
    let status = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert_eq!(status(&[&format!("{logger_url}/v1/logs/demo/")]), "401");
    assert_eq!(
        status(&[
            "-H",
            "X-Deis-Builder-Auth: wrong",
            &format!("{api}/v1/hooks/key/aa:bb/")
        ]),
        "401"
    );

    // Register, add a key, create the app and push it over SSH to the builder.
    w.deis(&[
        "register",
        &api,
        "--username",
        "alice",
        "--password",
        "s3cret-pw",
        "--email",
        "alice@example.com",
    ]);
    let key = w.home().join(".ssh/id_ed25519");
    assert!(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "alice@laptop", "-f"])
        .arg(&key)
        .status()
        .unwrap()
        .success());
    w.deis(&["keys:add", key.with_extension("pub").to_str().unwrap()]);
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/apps/python-env");
    copy_dir(&sample, &w.app_dir());
    assert!(w.git(&["init", "-q", "-b", "master"]).status.success());
    assert!(w.git(&["add", "."]).status.success());
    assert!(w.git(&["commit", "-qm", "sample app"]).status.success());
    let created = w.deis(&["create", "demo"]);
    assert!(created.contains("Git remote deis added"), "{created}");
    let push = w.git(&["push", "deis", "master"]);
    let push_text = format!(
        "{}{}",
        String::from_utf8_lossy(&push.stdout),
        String::from_utf8_lossy(&push.stderr)
    );
    assert!(push.status.success(), "git push failed: {push_text}");
    assert!(
        push_text.contains("demo:v2 deployed to Deis"),
        "{push_text}"
    );

    // The app answers through the separate router.
    let body = w.wait_for("demo.localhost", "the deploy", |code, body| {
        code == 200 && body.contains("hello from demo")
    });
    assert!(body.contains("v2"), "{body}");

    // Its output and the controller's events reach the logger, and `deis logs` reads them
    // back through the controller.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let logs = loop {
        let logs = w.deis(&["logs", "-n", "1000"]);
        let complete = logs.contains("demo[web.1]: starting on port")
            && logs.contains("demo[deis-controller]: alice deployed");
        if complete || std::time::Instant::now() > deadline {
            break logs;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(logs.contains("demo[web.1]: starting on port"), "{logs}");
    assert!(
        logs.contains("demo[deis-controller]: alice deployed"),
        "{logs}"
    );
    // The logger holds them (not the controller): ask it directly.
    let direct = Command::new("curl")
        .args(["-sf", "-H", &format!("X-Deis-Logger-Auth: {logger_key}")])
        .arg(format!("{logger_url}/v1/logs/demo/?lines=1000"))
        .output()
        .unwrap();
    let direct = String::from_utf8_lossy(&direct.stdout);
    assert!(direct.contains("demo[deis-controller]: alice"), "{direct}");
    assert!(
        !root.join("controller/logs").exists(),
        "the controller kept logs of its own"
    );

    // A push by a key nobody registered is refused by the builder (asked the controller).
    let stranger = w.home().join(".ssh/stranger");
    assert!(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&stranger)
        .status()
        .unwrap()
        .success());
    let refused = Command::new("git")
        .args(["push", "deis", "master"])
        .current_dir(w.app_dir())
        .env("HOME", w.home())
        .env(
            "GIT_SSH_COMMAND",
            format!(
                "ssh -i {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes -o BatchMode=yes -o LogLevel=ERROR",
                stranger.display()
            ),
        )
        .output()
        .unwrap();
    assert!(!refused.status.success(), "{refused:?}");

    // Git smart HTTP on the builder, with the user name and API token (checked by the
    // controller through /v1/hooks/auth/): a wrong token is refused, the right one deploys.
    let profile: serde_json::Value = serde_json::from_slice(
        &std::fs::read(w.home().join(".deis/client.json")).expect("the CLI profile"),
    )
    .unwrap();
    let token = profile["token"].as_str().expect("a token in the profile");
    assert!(w
        .git(&["commit", "-q", "--allow-empty", "-m", "over HTTP"])
        .status
        .success());
    let wrong = w.git(&[
        "push",
        &format!("http://alice:not-the-token@127.0.0.1:{git_http}/demo.git"),
        "master",
    ]);
    assert!(!wrong.status.success(), "{wrong:?}");
    let http_push = w.git(&[
        "push",
        &format!("http://alice:{token}@127.0.0.1:{git_http}/demo.git"),
        "master",
    ]);
    let http_text = format!(
        "{}{}",
        String::from_utf8_lossy(&http_push.stdout),
        String::from_utf8_lossy(&http_push.stderr)
    );
    assert!(
        http_push.status.success(),
        "git push over HTTP failed: {http_text}"
    );
    assert!(
        http_text.contains("demo:v3 deployed to Deis"),
        "{http_text}"
    );
    w.wait_for("demo.localhost", "the HTTP deploy", |code, body| {
        code == 200 && body.contains("hello from demo v3")
    });

    // Destroy: the router stops routing it, and the builder deletes its repository and
    // slugs (a Procfile app has no build cache); it asks the controller which apps
    // exist, every second here.
    let repository = root.join("builder/repos/demo.git");
    let slugs = root.join("blobs/slugs/demo");
    let has_slugs = || std::fs::read_dir(&slugs).is_ok_and(|mut dir| dir.next().is_some());
    assert!(repository.join("HEAD").is_file() && has_slugs());
    w.deis(&["destroy", "--confirm=demo"]);
    w.wait_for("demo.localhost", "the destroyed app", |code, _| code == 404);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while (repository.exists() || has_slugs()) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        !repository.exists(),
        "the builder kept the destroyed app's repository"
    );
    assert!(!has_slugs(), "the builder kept the destroyed app's slugs");
}
