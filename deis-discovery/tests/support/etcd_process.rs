//! Private etcd processes for tests: single members and clusters on loopback ports, in a
//! temporary directory, killed when dropped.

use deis_core::discovery::Discovery;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `count` distinct free TCP ports on loopback (all bound at once, then released; good
/// enough for tests).
pub fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..count)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("binding a loopback port"))
        .collect();
    listeners
        .iter()
        .map(|listener| listener.local_addr().expect("a bound address").port())
        .collect()
}

/// One etcd member run by a test, on loopback ports, killed when dropped.
#[derive(Debug)]
pub struct EtcdMember {
    pub name: String,
    pub client_port: u16,
    pub peer_port: u16,
    data_dir: PathBuf,
    log: PathBuf,
    initial_cluster: String,
    cluster_token: String,
    child: Option<Child>,
}

impl EtcdMember {
    fn new(name: &str, dir: &Path, client_port: u16, peer_port: u16) -> Self {
        EtcdMember {
            name: name.to_string(),
            client_port,
            peer_port,
            data_dir: dir.join(format!("{name}.etcd")),
            log: dir.join(format!("{name}.log")),
            initial_cluster: String::new(),
            cluster_token: String::new(),
            child: None,
        }
    }

    /// The member's client URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }

    /// Starts (or restarts, on the same data directory and ports) the etcd process.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("opening the etcd log");
        let child = Command::new("etcd")
            .arg("--name")
            .arg(&self.name)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--listen-client-urls")
            .arg(self.endpoint())
            .arg("--advertise-client-urls")
            .arg(self.endpoint())
            .arg("--listen-peer-urls")
            .arg(self.peer_url())
            .arg("--initial-advertise-peer-urls")
            .arg(self.peer_url())
            .arg("--initial-cluster")
            .arg(&self.initial_cluster)
            .arg("--initial-cluster-token")
            .arg(&self.cluster_token)
            .arg("--initial-cluster-state")
            .arg("new")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "starting `etcd` failed ({error}); these tests need etcd on the PATH \
                     (Debian package etcd-server, installed by scripts/test)"
                )
            });
        self.child = Some(child);
    }

    /// Kills the process at once (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes (`SIGSTOP`) or thaws (`SIGCONT`) the process: a member that hangs with its
    /// connections open, rather than one that is gone.
    pub fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("the member is running");
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// The last lines of the member's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for EtcdMember {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A private etcd (one member or a cluster) in a temporary directory, killed when dropped.
#[derive(Debug)]
pub struct EtcdCluster {
    pub members: Vec<EtcdMember>,
    _dir: tempfile::TempDir,
}

impl EtcdCluster {
    /// Starts `size` members that form one cluster, and waits until it accepts writes.
    pub async fn start(size: usize) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let ports = free_ports(2 * size);
        let mut members: Vec<EtcdMember> = (0..size)
            .map(|i| EtcdMember::new(&format!("m{i}"), dir.path(), ports[2 * i], ports[2 * i + 1]))
            .collect();
        let token = format!("deis-test-{}", members[0].peer_port);
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url()))
            .collect::<Vec<_>>()
            .join(",");
        for member in &mut members {
            member.initial_cluster = initial_cluster.clone();
            member.cluster_token = token.clone();
            member.start();
        }
        let cluster = EtcdCluster { members, _dir: dir };
        cluster.wait_ready(Duration::from_secs(20)).await;
        cluster
    }

    /// Every member's client URL.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(EtcdMember::endpoint).collect()
    }

    /// Waits until every running member answers a read through the cluster's quorum.
    pub async fn wait_ready(&self, limit: Duration) {
        let start = Instant::now();
        for member in self.members.iter().filter(|m| m.child.is_some()) {
            loop {
                let config = deis_discovery::EtcdConfig::new([member.endpoint()])
                    .with_connect_timeout(Duration::from_millis(500));
                if let Ok(discovery) = deis_discovery::EtcdDiscovery::connect(config).await {
                    if discovery.snapshot("/ready-check/").await.is_ok() {
                        break;
                    }
                }
                assert!(
                    start.elapsed() < limit,
                    "etcd member {} did not come up within {limit:?}; its log:\n{}",
                    member.name,
                    member.log_tail()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
