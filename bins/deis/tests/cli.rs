//! The `deis` command line against a real controller on loopback (in-memory backends):
//! every message and table is snapshot-tested, errors are one line with a non-zero exit.

use deis_api::controller::{Controller, Settings};
use deis_api::secrets::PasswordCost;
use deis_cli::CliEnv;
use std::path::Path;
use std::sync::Arc;

struct Harness {
    controller: String,
    env: CliEnv,
    _home: tempfile::TempDir,
}

impl Harness {
    async fn start() -> Harness {
        Self::start_with(None).await
    }

    /// A controller over in-memory backends and `scheduler` (by default the in-memory one).
    async fn start_with(scheduler: Option<deis_core::DynScheduler>) -> Harness {
        let settings = Settings {
            platform_domain: "example.test".into(),
            password_cost: PasswordCost::MINIMAL_FOR_TESTS,
            ..Settings::default()
        };
        let controller = Arc::new(match scheduler {
            None => Controller::in_memory(settings),
            Some(scheduler) => Controller::new(
                Arc::new(deis_core::memory::MemoryStore::new()),
                scheduler,
                Arc::new(deis_core::memory::MemoryDiscovery::new()),
                Arc::new(deis_api::MemoryLogs::default()),
                settings,
            ),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, deis_api::http::router(controller))
                .await
                .unwrap();
        });
        let home = tempfile::tempdir().unwrap();
        let cwd = home.path().join("demo");
        std::fs::create_dir_all(&cwd).unwrap();
        Harness {
            controller: format!("http://{address}"),
            env: CliEnv {
                home: home.path().to_path_buf(),
                profile: "client".into(),
                cwd,
                ssh_port: 2222,
                drink: "coffee".into(),
            },
            _home: home,
        }
    }

    /// Runs `deis <args>` and returns (exit code, stdout, stderr).
    async fn deis(&self, args: &[&str]) -> (i32, String, String) {
        let mut argv = vec!["deis".to_string()];
        argv.extend(
            args.iter()
                .map(|a| a.replace("{controller}", &self.controller)),
        );
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = deis_cli::run(argv, &self.env, &mut out, &mut err).await;
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    /// Runs a command that must succeed and returns its output.
    async fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.deis(args).await;
        assert_eq!(code, 0, "deis {args:?} failed: {err}{out}");
        assert!(err.is_empty(), "deis {args:?} wrote to stderr: {err}");
        out
    }

    /// Runs a command that must fail with one line on stderr and returns that line.
    async fn fails(&self, args: &[&str]) -> (i32, String) {
        let (code, _, err) = self.deis(args).await;
        assert_ne!(code, 0, "deis {args:?} should fail");
        assert_eq!(err.lines().count(), 1, "one error line: {err:?}");
        assert!(err.starts_with("Error: "), "{err}");
        (code, err.trim_end().to_string())
    }
}

fn filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dUTC", "[TIME]"),
        (
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "[UUID]",
        ),
        (r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]"),
        (r"done in \d+s", "done in [N]s"),
    ]
}

macro_rules! snapshot {
    ($name:expr, $value:expr) => {{
        let value = $value;
        insta::with_settings!({ filters => filters(), prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!($name, value);
        })
    }};
}

fn ssh_key(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("id_ed25519");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "alice@laptop", "-f"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    path.with_extension("pub")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_session_from_register_to_destroy() {
    let h = Harness::start().await;
    let (_, err) = h.fails(&["apps"]).await;
    snapshot!("not_logged_in", err);
    snapshot!(
        "register",
        h.ok(&[
            "register",
            "{controller}",
            "--username",
            "alice",
            "--password",
            "s3cret",
            "--email",
            "alice@example.com"
        ])
        .await
    );
    snapshot!("whoami", h.ok(&["whoami"]).await);
    snapshot!("create", h.ok(&["create", "demo", "--no-remote"]).await);
    h.ok(&["create", "zeta", "--no-remote"]).await;
    snapshot!("apps", h.ok(&["apps"]).await);
    snapshot!(
        "config_set",
        h.ok(&[
            "config:set",
            "FOO=bar",
            "GREETING=hello world",
            "-a",
            "demo"
        ])
        .await
    );
    snapshot!(
        "config_oneline",
        h.ok(&["config", "--oneline", "-a", "demo"]).await
    );
    let json: serde_json::Value =
        serde_json::from_str(&h.ok(&["config", "--json", "-a", "demo"]).await).unwrap();
    assert_eq!(json["FOO"], "bar");
    snapshot!(
        "config_unset",
        h.ok(&["config:unset", "FOO", "-a", "demo"]).await
    );
    snapshot!(
        "pull",
        h.ok(&["pull", "example/web:v1", "-p", "web: ./serve", "-a", "demo"])
            .await
    );
    snapshot!("scale", h.ok(&["scale", "web=2", "-a", "demo"]).await);
    snapshot!("ps", h.ok(&["ps", "-a", "demo"]).await);
    snapshot!(
        "limits_set",
        h.ok(&["limits:set", "web=512M", "-a", "demo"]).await
    );
    snapshot!(
        "tags_set",
        h.ok(&["tags:set", "env=prod", "-a", "demo"]).await
    );
    snapshot!("releases", h.ok(&["releases", "-a", "demo"]).await);
    snapshot!("rollback", h.ok(&["rollback", "v4", "-a", "demo"]).await);
    snapshot!(
        "domains_add",
        h.ok(&["domains:add", "www.demo.test", "-a", "demo"]).await
    );
    snapshot!("info", h.ok(&["info", "-a", "demo"]).await);
    let key = ssh_key(h.env.home.as_path());
    snapshot!("keys_add", h.ok(&["keys:add", key.to_str().unwrap()]).await);
    let keys = h.ok(&["keys"]).await;
    assert!(
        keys.starts_with("=== alice Keys\nalice@laptop  ssh-ed25519 "),
        "{keys}"
    );
    h.ok(&["logout"]).await;
    h.ok(&[
        "register",
        "{controller}",
        "--username",
        "bob",
        "--password",
        "pw",
        "--email",
        "bob@example.com",
    ])
    .await;
    let (_, denied) = h.fails(&["ps", "-a", "demo"]).await;
    snapshot!("denied", denied);
    h.ok(&[
        "login",
        "{controller}",
        "--username",
        "alice",
        "--password",
        "s3cret",
    ])
    .await;
    snapshot!(
        "perms_create",
        h.ok(&["perms:create", "bob", "-a", "demo"]).await
    );
    snapshot!("perms", h.ok(&["perms", "-a", "demo"]).await);
    let (_, unconfirmed) = h.fails(&["destroy", "-a", "demo"]).await;
    snapshot!("destroy_unconfirmed", unconfirmed);
    snapshot!(
        "destroy",
        h.ok(&["destroy", "-a", "demo", "--confirm=demo"]).await
    );
    let (_, missing) = h.fails(&["info", "-a", "demo"]).await;
    snapshot!("missing_app", missing);
    snapshot!("logout", h.ok(&["logout"]).await);
}

#[tokio::test]
async fn bad_input_is_one_line_and_a_non_zero_exit() {
    let h = Harness::start().await;
    let (code, err) = h.fails(&["no-such-command"]).await;
    assert_eq!(code, 2);
    snapshot!("unknown_command", err);
    let (_, err) = h
        .fails(&[
            "login",
            "ftp://example.test",
            "--username",
            "a",
            "--password",
            "b",
        ])
        .await;
    snapshot!("bad_controller_url", err);
    h.ok(&[
        "register",
        "{controller}",
        "--username",
        "carol",
        "--password",
        "pw",
        "--email",
        "c@example.com",
    ])
    .await;
    h.ok(&["create", "carols", "--no-remote"]).await;
    let (_, err) = h.fails(&["config:set", "NOEQUALS", "-a", "carols"]).await;
    snapshot!("config_set_without_equals", err);
    let (_, err) = h.fails(&["config:set", "1BAD=x", "-a", "carols"]).await;
    snapshot!("config_set_bad_key", err);
    let (_, err) = h.fails(&["scale", "web=many", "-a", "carols"]).await;
    snapshot!("scale_not_a_number", err);
    let (_, err) = h.fails(&["scale", "web=1", "-a", "carols"]).await;
    snapshot!("scale_without_build", err);
    let (_, err) = h.fails(&["rollback", "vX", "-a", "carols"]).await;
    snapshot!("rollback_bad_version", err);
    let (_, err) = h
        .fails(&["domains:add", "*.wild.test", "-a", "carols"])
        .await;
    snapshot!("wildcard_domain", err);
    let help = h.ok(&["help"]).await;
    assert!(
        help.contains("apps:create") && help.contains("config:set"),
        "{help}"
    );
}

#[tokio::test]
async fn the_app_comes_from_the_deis_git_remote() {
    let h = Harness::start().await;
    h.ok(&[
        "register",
        "{controller}",
        "--username",
        "dave",
        "--password",
        "pw",
        "--email",
        "d@example.com",
    ])
    .await;
    let git = |args: &[&str]| {
        assert!(std::process::Command::new("git")
            .args(args)
            .current_dir(&h.env.cwd)
            .status()
            .unwrap()
            .success());
    };
    git(&["init", "-q"]);
    let created = h.ok(&["create", "remote-app"]).await;
    snapshot!("create_with_remote", created);
    let remotes = std::process::Command::new("git")
        .args(["remote", "-v"])
        .current_dir(&h.env.cwd)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&remotes.stdout)
        .contains("ssh://git@127.0.0.1:2222/remote-app.git"));
    // No -a: the directory is `demo`, but the deis remote names remote-app.
    let info = h.ok(&["open"]).await;
    assert_eq!(info, "http://remote-app.example.test\n");
    h.ok(&["destroy", "--confirm=remote-app"]).await;
    let remotes = std::process::Command::new("git")
        .args(["remote"])
        .current_dir(&h.env.cwd)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&remotes.stdout).trim().is_empty(),
        "destroy removes the remote"
    );
}

/// `deis pull` on a platform that runs apps as local processes: one line saying why.
#[tokio::test]
async fn pull_on_the_local_scheduler_is_one_line_naming_the_problem() {
    let data = tempfile::tempdir().unwrap();
    let local = deis_scheduler::LocalScheduler::new(deis_scheduler::LocalConfig::new(data.path()));
    let h = Harness::start_with(Some(Arc::new(local))).await;
    h.ok(&[
        "register",
        "{controller}",
        "--username",
        "carol",
        "--password",
        "pw",
        "--email",
        "c@example.com",
    ])
    .await;
    h.ok(&["create", "carols", "--no-remote"]).await;
    let (_, err) = h.fails(&["pull", "example/web:v1", "-a", "carols"]).await;
    snapshot!("pull_on_local_scheduler", err);
    let releases = h.ok(&["releases", "-a", "carols"]).await;
    assert!(!releases.contains("v2"), "no release was made: {releases}");
}
