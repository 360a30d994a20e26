//! Helpers shared by the end-to-end tests: free ports, daemons stopped with SIGTERM, and a
//! world of one user's home, app directory and the `deis` CLI.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `deis` binary next to `deisd` in the target directory (the workspace test run
/// builds both).
pub fn deis_binary() -> PathBuf {
    let deisd = PathBuf::from(env!("CARGO_BIN_EXE_deisd"));
    let deis = deisd.with_file_name("deis");
    assert!(
        deis.is_file(),
        "{} is missing: build the workspace (cargo build --bins)",
        deis.display()
    );
    deis
}

pub struct Daemon {
    pub child: Child,
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

pub struct World {
    pub root: tempfile::TempDir,
    pub api: u16,
    pub router: u16,
    pub ssh: u16,
    pub deis: PathBuf,
}

impl World {
    pub fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }

    pub fn app_dir(&self) -> PathBuf {
        self.root.path().join("demo")
    }

    /// Runs `deis` as the profile `profile` in the app directory.
    pub fn deis_as(&self, profile: &str, args: &[&str]) -> Output {
        Command::new(&self.deis)
            .args(args)
            .current_dir(self.app_dir())
            .env("HOME", self.home())
            .env("DEIS_PROFILE", profile)
            .env("DEIS_SSH_PORT", self.ssh.to_string())
            .output()
            .unwrap()
    }

    pub fn deis(&self, args: &[&str]) -> String {
        let output = self.deis_as("client", args);
        let text = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(
            output.status.success(),
            "deis {args:?} failed: {}{text}",
            String::from_utf8_lossy(&output.stderr)
        );
        text
    }

    pub fn git(&self, args: &[&str]) -> Output {
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
    pub fn curl(&self, host: &str) -> (u16, String) {
        self.curl_path(host, "/")
    }

    /// `curl -H 'Host: <host>' http://127.0.0.1:<router><path>`: (status, body).
    pub fn curl_path(&self, host: &str, path: &str) -> (u16, String) {
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
    pub fn wait_for(&self, host: &str, what: &str, check: impl Fn(u16, &str) -> bool) -> String {
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

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// Waits until `url` answers 2xx (curl), at most 30 s.
pub fn wait_http(url: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let up = Command::new("curl")
            .args(["-sf", "-m", "2", url])
            .output()
            .is_ok_and(|o| o.status.success());
        if up {
            return;
        }
        assert!(Instant::now() < deadline, "{what} did not answer {url}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`, at most 30 s.
pub fn wait_tcp(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts `deisd` with `args`, its output on the test's stderr, stopped when dropped.
pub fn deisd(args: &[String], home: &Path) -> Daemon {
    let child = Command::new(env!("CARGO_BIN_EXE_deisd"))
        .args(args)
        .env("HOME", home)
        .env_remove("DEIS_DISCOVERY")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    Daemon { child }
}

/// How a sample app tells its instances apart and what the path expects of it.
pub struct SampleApp {
    /// The sample app's directory under `examples/apps`.
    pub dir: &'static str,
    /// The word before the instance's identity in its answer (`port ` for processes on
    /// one host, `instance ` for containers whose host name differs).
    pub instance_key: &'static str,
}

/// Registers `alice`, adds a fresh SSH key, creates `demo` from `sample` and pushes it;
/// returns the controller URL.
pub fn register_and_push(w: &World, sample: &SampleApp) -> String {
    let api = format!("http://127.0.0.1:{}", w.api);
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

    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/apps")
        .join(sample.dir);
    copy_dir(&source, &w.app_dir());
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
    api
}

/// The identities of the instances that answered `host`, polling up to 30 s until `want`
/// different ones did.
pub fn instances_answering(
    w: &World,
    host: &str,
    sample: &SampleApp,
    want: usize,
) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.len() < want && Instant::now() < deadline {
        let (code, body) = w.curl(host);
        if code == 200 {
            if let Some(id) = body
                .split(sample.instance_key)
                .nth(1)
                .and_then(|r| r.split(' ').next())
            {
                seen.insert(id.to_string());
            }
        }
    }
    seen
}

/// The whole path of a new user after `deisd` (or a platform) runs: register, add a key,
/// create, push over SSH, reach the app through the router, scale to three instances that
/// all answer, config:set as a new release, rollback, a custom domain, logs (and `logs
/// -f`), a one-off run, a second user denied then shared with, and destroy (404).
pub fn new_user_path(w: &World, sample: &SampleApp) {
    new_user_path_with(w, sample, |_| {});
}

/// [`new_user_path`] with `before_destroy` run while the app is up (three web instances,
/// release v4, shared with bob), just before it is destroyed.
pub fn new_user_path_with(w: &World, sample: &SampleApp, before_destroy: impl FnOnce(&World)) {
    let api = register_and_push(w, sample);

    // It answers through the router at <app>.localhost.
    let body = w.wait_for("demo.localhost", "the first deploy", |code, body| {
        code == 200 && body.contains("hello from demo")
    });
    assert!(body.contains("v2"), "{body}");

    // Three instances answer.
    w.deis(&["scale", "web=3"]);
    let ps = w.deis(&["ps"]);
    assert_eq!(ps.matches(" up (v2)").count(), 3, "{ps}");
    let seen = instances_answering(w, "demo.localhost", sample, 3);
    assert_eq!(
        seen.len(),
        3,
        "three different instances answered: {seen:?}"
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
    let deadline = Instant::now() + Duration::from_secs(15);
    let logs = loop {
        let logs = w.deis(&["logs", "-n", "5000"]);
        if logs.contains("demo[web.1]: starting on port") || Instant::now() > deadline {
            break logs;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
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
            if line.contains("/followed-live") && line.contains("demo[web.") {
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

    before_destroy(w);

    // Destroy: the host answers 404.
    w.deis(&["destroy", "--confirm=demo"]);
    w.wait_for("demo.localhost", "the destroyed app", |code, _| code == 404);
}
