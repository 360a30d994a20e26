//! The path a new user takes, driven through the real binaries: `deisd` on its embedded
//! defaults (own ports and data directory), the `deis` CLI, a stock `git push` over SSH,
//! and `curl` through the router.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `deis` binary next to `deisd` in the target directory (the workspace test run
/// builds both).
fn deis_binary() -> PathBuf {
    let deisd = PathBuf::from(env!("CARGO_BIN_EXE_deisd"));
    let deis = deisd.with_file_name("deis");
    assert!(
        deis.is_file(),
        "{} is missing: build the workspace (cargo build --bins)",
        deis.display()
    );
    deis
}

struct Daemon {
    child: Child,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct World {
    root: tempfile::TempDir,
    api: u16,
    router: u16,
    ssh: u16,
    deis: PathBuf,
}

impl World {
    fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }

    fn app_dir(&self) -> PathBuf {
        self.root.path().join("demo")
    }

    /// Runs `deis` as the profile `profile` in the app directory.
    fn deis_as(&self, profile: &str, args: &[&str]) -> Output {
        Command::new(&self.deis)
            .args(args)
            .current_dir(self.app_dir())
            .env("HOME", self.home())
            .env("DEIS_PROFILE", profile)
            .env("DEIS_SSH_PORT", self.ssh.to_string())
            .output()
            .unwrap()
    }

    fn deis(&self, args: &[&str]) -> String {
        let output = self.deis_as("client", args);
        let text = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(
            output.status.success(),
            "deis {args:?} failed: {}{text}",
            String::from_utf8_lossy(&output.stderr)
        );
        text
    }

    fn git(&self, args: &[&str]) -> Output {
        let key = self.home().join(".ssh/id_ed25519");
        Command::new("git")
            .args(["-c", "user.email=alice@example.com", "-c", "user.name=Alice"])
            .args(args)
            .current_dir(self.app_dir())
            .env("HOME", self.home())
            .env(
                "GIT_SSH_COMMAND",
                format!(
                    "ssh -i {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes -o BatchMode=yes -o LogLevel=ERROR",
                    key.display()
                ),
            )
            .output()
            .unwrap()
    }

    /// `curl -H 'Host: <host>' http://127.0.0.1:<router>/`: (status, body).
    fn curl(&self, host: &str) -> (u16, String) {
        self.curl_path(host, "/")
    }

    /// `curl -H 'Host: <host>' http://127.0.0.1:<router><path>`: (status, body).
    fn curl_path(&self, host: &str, path: &str) -> (u16, String) {
        let output = Command::new("curl")
            .args(["-s", "-m", "5", "-w", "\n%{http_code}", "-H"])
            .arg(format!("Host: {host}"))
            .arg(format!("http://127.0.0.1:{}{path}", self.router))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    /// Polls the router until `check` accepts an answer for `host`.
    fn wait_for(&self, host: &str, what: &str, check: impl Fn(u16, &str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = (0, String::new());
        while Instant::now() < deadline {
            last = self.curl(host);
            if check(last.0, &last.1) {
                return last.1;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("{what}: {host} last answered {} {:?}", last.0, last.1);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn start() -> (World, Daemon) {
    let root = tempfile::tempdir().unwrap();
    let world = World {
        api: free_port(),
        router: free_port(),
        ssh: free_port(),
        deis: deis_binary(),
        root,
    };
    std::fs::create_dir_all(world.home().join(".ssh")).unwrap();
    std::fs::create_dir_all(world.app_dir()).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_deisd"))
        .args(["--data-dir"])
        .arg(world.root.path().join("data"))
        .args(["--api-addr", &format!("127.0.0.1:{}", world.api)])
        .args(["--router-addr", &format!("127.0.0.1:{}", world.router)])
        .args(["--ssh-addr", &format!("127.0.0.1:{}", world.ssh)])
        .env("HOME", world.home())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let daemon = Daemon { child };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let up = Command::new("curl")
            .args(["-sf", &format!("http://127.0.0.1:{}/healthz", world.api)])
            .output()
            .is_ok_and(|o| o.status.success());
        if up {
            break;
        }
        assert!(Instant::now() < deadline, "deisd did not answer /healthz");
        std::thread::sleep(Duration::from_millis(100));
    }
    (world, daemon)
}

#[test]
fn a_new_user_deploys_scales_configures_rolls_back_shares_and_destroys() {
    let (w, _daemon) = start();
    let api = format!("http://127.0.0.1:{}", w.api);

    // Register (the first user is the administrator) and add an SSH key.
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

    // Create the app in a git repository of the sample app, and push it.
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
    assert!(push_text.contains("deployed to Deis"), "{push_text}");

    // It answers through the router at <app>.localhost.
    let body = w.wait_for("demo.localhost", "the first deploy", |code, body| {
        code == 200 && body.contains("hello from demo")
    });
    assert!(body.contains("v2"), "{body}");

    // Three instances answer.
    w.deis(&["scale", "web=3"]);
    let ps = w.deis(&["ps"]);
    assert_eq!(ps.matches(" up (v2)").count(), 3, "{ps}");
    let mut ports = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while ports.len() < 3 && Instant::now() < deadline {
        let (code, body) = w.curl("demo.localhost");
        if code == 200 {
            if let Some(port) = body.split("port ").nth(1).and_then(|r| r.split(' ').next()) {
                ports.insert(port.to_string());
            }
        }
    }
    assert_eq!(
        ports.len(),
        3,
        "three different instances answered: {ports:?}"
    );

    // A config change is a new release the app sees; rollback brings the old value back.
    let set = w.deis(&["config:set", "GREETING=bonjour"]);
    assert!(set.contains("done, v3"), "{set}");
    w.wait_for("demo.localhost", "the new config", |code, body| {
        code == 200 && body.contains("greeting=bonjour")
    });
    let releases = w.deis(&["releases"]);
    assert!(
        releases.contains("v3") && releases.contains("alice added GREETING"),
        "{releases}"
    );
    let rolled = w.deis(&["rollback", "v2"]);
    assert!(rolled.contains("done, v4"), "{rolled}");
    w.wait_for("demo.localhost", "the rollback", |code, body| {
        code == 200 && body.contains("greeting=\n")
    });

    // A custom domain routes too.
    w.deis(&["domains:add", "www.demo-example.test"]);
    w.wait_for(
        "www.demo-example.test",
        "the custom domain",
        |code, body| code == 200 && body.contains("hello from demo"),
    );

    // The app's output is in its logs; a one-off command runs.
    let logs = w.deis(&["logs", "-n", "5000"]);
    assert!(logs.contains("demo[web.1]: starting on port"), "{logs}");
    assert!(
        logs.contains("demo[deis-controller]: alice deployed"),
        "{logs}"
    );
    assert!(
        logs.contains("demo[deis-controller]: alice scaled containers web=3"),
        "{logs}"
    );
    // `deis logs -f` follows live output.
    let mut follower = Command::new(&w.deis)
        .args(["logs", "-f", "-n", "1"])
        .current_dir(w.app_dir())
        .env("HOME", w.home())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follower.stdout.take().unwrap();
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(|l| l.ok())
        {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut followed = false;
    while !followed && Instant::now() < deadline {
        w.curl_path("demo.localhost", "/followed-live");
        while let Ok(line) = received.recv_timeout(Duration::from_millis(300)) {
            if line.contains("GET /followed-live") && line.contains("demo[web.") {
                followed = true;
                break;
            }
        }
    }
    let _ = follower.kill();
    let _ = follower.wait();
    assert!(
        followed,
        "deis logs -f showed the request made while following"
    );
    let run = w.deis(&["run", "echo", "one-off", "$DEIS_APP"]);
    assert!(run.contains("one-off demo"), "{run}");

    // A second user is denied until the owner shares the app.
    let bob_register = w.deis_as(
        "bob",
        &[
            "register",
            &api,
            "--username",
            "bob",
            "--password",
            "bob-pw-1",
            "--email",
            "bob@example.com",
        ],
    );
    assert!(bob_register.status.success());
    let denied = w.deis_as("bob", &["ps", "-a", "demo"]);
    assert!(!denied.status.success());
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("permission"),
        "{denied:?}"
    );
    w.deis(&["perms:create", "bob"]);
    let allowed = w.deis_as("bob", &["ps", "-a", "demo"]);
    assert!(allowed.status.success(), "{allowed:?}");

    // Destroy: the host answers 404.
    w.deis(&["destroy", "--confirm=demo"]);
    w.wait_for("demo.localhost", "the destroyed app", |code, _| code == 404);
}
