//! Fixtures shared by the integration tests: a slug directory with a tiny web server, a
//! fast-reacting scheduler configuration, and process checks through /proc.

use deis_core::model::{Formation, InstanceState};
use deis_core::scheduler::{AppSpec, Artifact};
use deis_scheduler::{LocalConfig, LocalScheduler, MemoryLogSink};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;

/// `web`: busybox httpd on $PORT serving `www/`; `worker`: a shell loop.
pub const WEB: &str = "exec busybox httpd -f -p 127.0.0.1:$PORT -h www";
pub const WORKER: &str = "while true; do sleep 1; done";

/// A scheduler over a fresh slug directory, with its log sink; everything dies with it.
pub struct Fixture {
    pub scheduler: LocalScheduler,
    pub sink: MemoryLogSink,
    pub dir: TempDir,
}

pub fn fast_config(data_dir: &Path) -> LocalConfig {
    let mut config = LocalConfig::new(data_dir);
    config.stop_grace = Duration::from_secs(2);
    config.drain_delay = Duration::ZERO;
    config.settle = Duration::from_millis(200);
    // Generous: the whole workspace may be testing on two cores at once.
    config.health_grace = Duration::from_secs(5);
    config.backoff_initial = Duration::from_millis(300);
    config.backoff_max = Duration::from_secs(2);
    config.stable_after = Duration::from_secs(5);
    config.run_timeout = Duration::from_secs(10);
    config
}

impl Fixture {
    pub fn new() -> Fixture {
        Self::with_config(fast_config)
    }

    /// A fixture whose new instances get `grace` to become healthy (tests that expect a
    /// rollout to fail use a short one).
    pub fn with_health_grace(grace: Duration) -> Fixture {
        Self::with_config(|dir| {
            let mut config = fast_config(dir);
            config.health_grace = grace;
            config
        })
    }

    pub fn with_config(config: impl FnOnce(&Path) -> LocalConfig) -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let slug = dir.path().join("slug");
        std::fs::create_dir_all(slug.join("www")).unwrap();
        std::fs::write(slug.join("www/index.html"), "hello\n").unwrap();
        std::fs::write(slug.join("Procfile"), format!("web: {WEB}\n")).unwrap();
        let sink = MemoryLogSink::new(10_000);
        let scheduler =
            LocalScheduler::with_sink(config(&dir.path().join("data")), Arc::new(sink.clone()));
        Fixture {
            scheduler,
            sink,
            dir,
        }
    }

    pub fn artifact(&self) -> Artifact {
        Artifact::Slug {
            location: self.dir.path().join("slug").to_string_lossy().into_owned(),
        }
    }

    pub fn processes(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("web".to_string(), WEB.to_string()),
            ("worker".to_string(), WORKER.to_string()),
        ])
    }

    pub fn spec(&self, app: &str, release: u64, formation: &[(&str, u32)]) -> AppSpec {
        let mut spec = AppSpec::new(app, release);
        spec.artifact = self.artifact();
        spec.processes = self.processes();
        spec.formation = formation
            .iter()
            .map(|(t, n)| (t.to_string(), *n))
            .collect::<Formation>();
        spec.env.insert("DEIS_APP".into(), app.into());
        spec.env
            .insert("DEIS_RELEASE".into(), format!("v{release}"));
        spec
    }
}

/// Polls `check` every 20 ms until it holds or `limit` passes; says whether it held.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether any live (non-zombie) process belongs to process group `pgid`.
pub fn group_alive(pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        // pid (comm) state ppid pgrp …; comm may hold spaces, so split after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            return false;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string()
    })
}

/// An HTTP/1.0 GET on 127.0.0.1 that returns the status code.
pub async fn http_status(endpoint: &str, path: &str) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(endpoint).await.ok()?;
        stream
            .write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.ok()?;
        let text = String::from_utf8_lossy(&answer);
        text.split_whitespace().nth(1)?.parse().ok()
    };
    tokio::time::timeout(Duration::from_secs(2), attempt)
        .await
        .ok()
        .flatten()
}

/// The states an app's instances are in, by short name.
pub async fn states(scheduler: &LocalScheduler, app: &str) -> Vec<(String, u64, InstanceState)> {
    use deis_core::scheduler::Scheduler;
    scheduler
        .instances(app)
        .await
        .unwrap()
        .into_iter()
        .map(|i| (i.short_name(), i.release, i.state))
        .collect()
}

/// Whether every process of group `pgid` is gone within a second (a killed process takes a
/// moment to die).
pub async fn group_gone(pgid: u32) -> bool {
    eventually(Duration::from_secs(1), || async { !group_alive(pgid) }).await
}
