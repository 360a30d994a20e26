//! Helpers shared by the end-to-end tests: free ports, daemons stopped with SIGTERM, and a
//! world of one user's home, app directory and the `deis` CLI.

#![allow(dead_code)]

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
