//! `deisctl install/start/status/stop/uninstall` on the real Docker Engine: the platform
//! image is built from this build's `deisd` (with etcd) and the host's etcd, the units run
//! on a private network under a unique prefix, and everything the test made (containers,
//! network, volume, image) is removed at the end, pass or fail.

use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Platform {
    prefix: String,
    etcd_port: u16,
}

impl Platform {
    fn deisctl(&self, args: &[&str]) -> Output {
        let deisd = std::path::PathBuf::from(env!("CARGO_BIN_EXE_deisctl")).with_file_name("deisd");
        assert!(
            deisd.is_file(),
            "{} is missing: build it with etcd (cargo build -p deisd --features etcd)",
            deisd.display()
        );
        Command::new(env!("CARGO_BIN_EXE_deisctl"))
            .args(["--prefix", &self.prefix])
            .args(["--etcd-port", &self.etcd_port.to_string()])
            .args([
                "--discovery",
                &format!("etcd://127.0.0.1:{}", self.etcd_port),
            ])
            .args(args)
            .env("DEISCTL_DEISD", deisd)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.deisctl(args);
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(
            output.status.success(),
            "deisctl {args:?} failed: {}{stdout}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        let docker = |args: &[&str]| {
            let _ = Command::new("docker").args(args).output();
        };
        let listed = Command::new("docker")
            .args(["ps", "-aq", "--filter"])
            .arg(format!("label=io.deis.platform={}", self.prefix))
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default();
        for id in listed.split_whitespace() {
            docker(&["rm", "-f", id]);
        }
        docker(&["network", "rm", &self.prefix]);
        docker(&["volume", "rm", "-f", &format!("{}-data", self.prefix)]);
        docker(&[
            "rmi",
            "-f",
            &format!("{}-platform:{}", self.prefix, env!("CARGO_PKG_VERSION")),
        ]);
    }
}

fn curl_code(url: &str, host: Option<&str>) -> String {
    let mut command = Command::new("curl");
    command.args(["-s", "-m", "3", "-o", "/dev/null", "-w", "%{http_code}"]);
    if let Some(host) = host {
        command.args(["-H", &format!("Host: {host}")]);
    }
    let output = command.arg(url).output().unwrap();
    String::from_utf8_lossy(&output.stdout).to_string()
}

fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn router_and_controller_install_start_report_stop_and_uninstall_on_docker() {
    let platform = Platform {
        prefix: format!("dctl{}", std::process::id()),
        etcd_port: free_port(),
    };
    let p = &platform.prefix;
    let (api_port, router_port) = (free_port(), free_port());

    // etcd first: the other units' settings live in it.
    let installed = platform.ok(&["install", "etcd"]);
    assert_eq!(installed, format!("{p}-etcd: installed\n"));
    assert_eq!(
        platform.ok(&["start", "etcd"]),
        format!("{p}-etcd: started\n")
    );
    platform.ok(&["config", "platform", "set", "domain=deis.test"]);
    platform.ok(&[
        "config",
        "controller",
        "set",
        &format!("hostPort={api_port}"),
    ]);
    platform.ok(&[
        "config",
        "router",
        "set",
        &format!("hostPort={router_port}"),
    ]);

    let installed = platform.ok(&["install", "controller", "router"]);
    assert_eq!(
        installed,
        format!("{p}-controller: installed\n{p}-router@1: installed\n")
    );
    assert_eq!(
        platform.ok(&["install", "controller"]),
        format!("{p}-controller: already installed\n")
    );
    let started = platform.ok(&["start", "controller", "router"]);
    assert_eq!(
        started,
        format!("{p}-controller: started\n{p}-router@1: started\n")
    );

    // They run and answer on their published ports.
    let status = platform.ok(&["status"]);
    for unit in ["etcd", "controller", "router@1"] {
        let line = status
            .lines()
            .find(|l| l.starts_with(&format!("{p}-{unit} ")))
            .unwrap_or_else(|| panic!("{unit} missing from {status}"));
        assert!(line.contains(" running "), "{line}");
    }
    assert!(
        status.contains(&format!("127.0.0.1:{api_port}->8000/tcp")),
        "{status}"
    );
    eventually("the controller answers /healthz", || {
        curl_code(&format!("http://127.0.0.1:{api_port}/healthz"), None) == "200"
    });
    eventually("the router answers (404 for an unknown app)", || {
        curl_code(
            &format!("http://127.0.0.1:{router_port}/"),
            Some("nothing.deis.test"),
        ) == "404"
    });
    // The controller wrote the platform domain it was given through discovery.
    assert_eq!(
        platform.ok(&["config", "platform", "get", "domain"]),
        "deis.test\n"
    );
    let one = platform.ok(&["status", "router@1"]);
    assert_eq!(one.lines().count(), 2, "{one}");

    // Stop: the units stay installed but stop running.
    let stopped = platform.ok(&["stop", "controller", "router"]);
    assert_eq!(
        stopped,
        format!("{p}-router@1: stopped\n{p}-controller: stopped\n")
    );
    let status = platform.ok(&["status", "controller", "router@1"]);
    assert_eq!(status.matches(" exited ").count(), 2, "{status}");

    // Bad targets fail in one line.
    let bad = platform.deisctl(&["start", "database"]);
    assert!(!bad.status.success());
    assert_eq!(String::from_utf8_lossy(&bad.stderr).lines().count(), 1);

    // Uninstall everything: no container, network or image is left.
    let removed = platform.ok(&["uninstall", "platform"]);
    assert!(
        removed.contains(&format!("{p}-controller: uninstalled")),
        "{removed}"
    );
    assert!(
        removed.contains(&format!("{p}-etcd: uninstalled")),
        "{removed}"
    );
    assert_eq!(platform.ok(&["list"]), "No units installed.\n");
    let networks = Command::new("docker")
        .args(["network", "ls", "--format", "{{.Name}}"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&networks.stdout)
        .lines()
        .any(|n| n == p.as_str()));
}
