//! The nginx backend: renders a configuration from the route table, checks it with
//! `nginx -t` and reloads the running master. A failed check leaves the previous
//! configuration (and [`Router::current`]) in force.
//!
//! Everything lives under one prefix directory: `nginx.conf`, `nginx.conf.candidate`,
//! `nginx.pid`, `logs/`, `temp/` and `certs/` (keys written with mode 0600).

mod render;

pub use render::{render, Rendered};

use crate::config::Hsts;
use async_trait::async_trait;
use deis_core::route::{CertificatePair, RouteTable};
use deis_core::{Error, Result, Router};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

const BACKEND: &str = "nginx";

/// Where nginx lives and how the rendered configuration behaves.
#[derive(Debug, Clone)]
pub struct NginxConfig {
    /// The nginx binary.
    pub binary: PathBuf,
    /// The prefix directory (`nginx -p`); the configuration, pid file, logs, temporary files
    /// and certificates are kept in it.
    pub prefix: PathBuf,
    /// The plain-http `listen` address, e.g. `80` or `127.0.0.1:8080`.
    pub listen: String,
    /// The https `listen` address; servers with a certificate (platform or per domain)
    /// listen on it too.
    pub https_listen: Option<String>,
    /// The platform certificate, used by every app server without its own.
    pub platform_certificate: Option<CertificatePair>,
    /// `worker_processes` (`auto` or a number).
    pub worker_processes: String,
    /// `worker_connections` (Deis default 768).
    pub worker_connections: u32,
    /// `user` for the workers (needed when the master runs as root and the prefix is private).
    pub user: Option<String>,
    /// `client_max_body_size` in bytes; `None` for no limit.
    pub max_body_size: Option<u64>,
    /// `keepalive_timeout` for clients.
    pub keepalive_timeout: Duration,
    /// `proxy_connect_timeout`.
    pub connect_timeout: Duration,
    /// `proxy_read_timeout` and `proxy_send_timeout`.
    pub read_timeout: Duration,
    /// Expects PROXY protocol on the listeners and takes the client address from it.
    pub proxy_protocol: bool,
    /// Sends `Strict-Transport-Security` on https responses of apps.
    pub hsts: Option<Hsts>,
    /// Answers plain-http requests for apps with a 301 to the https URL.
    pub redirect_to_https: bool,
}

impl NginxConfig {
    /// Deis-like defaults for a prefix directory, listening on `listen`.
    pub fn new(prefix: impl Into<PathBuf>, listen: impl Into<String>) -> Self {
        Self {
            binary: PathBuf::from("nginx"),
            prefix: prefix.into(),
            listen: listen.into(),
            https_listen: None,
            platform_certificate: None,
            worker_processes: "auto".into(),
            worker_connections: 768,
            user: None,
            max_body_size: Some(1 << 20),
            keepalive_timeout: Duration::from_secs(1300),
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(1300),
            proxy_protocol: false,
            hsts: None,
            redirect_to_https: false,
        }
    }

    /// The configuration file in force.
    pub fn config_path(&self) -> PathBuf {
        self.prefix.join("nginx.conf")
    }

    fn candidate_path(&self) -> PathBuf {
        self.prefix.join("nginx.conf.candidate")
    }

    fn pid_path(&self) -> PathBuf {
        self.prefix.join("nginx.pid")
    }
}

#[derive(Debug, Default)]
struct State {
    table: RouteTable,
    rendered: Option<String>,
    master: Option<Child>,
}

/// A [`Router`] that drives an nginx master process through its configuration file.
#[derive(Debug)]
pub struct NginxRouter {
    config: NginxConfig,
    state: Mutex<State>,
}

fn io_error(what: &str, path: &Path, error: std::io::Error) -> Error {
    Error::backend(BACKEND, format!("{what} {}: {error}", path.display()))
}

impl NginxRouter {
    /// A router for `config`; nothing is written until [`NginxRouter::start`] or an apply.
    pub fn new(config: NginxConfig) -> Self {
        Self {
            config,
            state: Mutex::default(),
        }
    }

    /// The options in use.
    pub fn config(&self) -> &NginxConfig {
        &self.config
    }

    /// Writes the configuration of the current table and starts an nginx master in the
    /// foreground (`daemon off`) as a child, waiting until it has written its pid file.
    pub async fn start(&self) -> Result<()> {
        let mut state = self.state.lock().await;
        if state.master.is_some() {
            return Ok(());
        }
        let table = state.table.clone();
        let text = self.write_checked(&table).await?;
        state.rendered = Some(text);
        let _ = tokio::fs::remove_file(self.config.pid_path()).await;
        let child = Command::new(&self.config.binary)
            .arg("-p")
            .arg(&self.config.prefix)
            .arg("-c")
            .arg(self.config.config_path())
            .args(["-e", "logs/error.log", "-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| io_error("cannot start", &self.config.binary, e))?;
        state.master = Some(child);
        for _ in 0..100 {
            if tokio::fs::metadata(self.config.pid_path()).await.is_ok() {
                return Ok(());
            }
            if let Some(master) = state.master.as_mut() {
                if let Ok(Some(status)) = master.try_wait() {
                    state.master = None;
                    return Err(Error::Unavailable {
                        backend: BACKEND,
                        message: format!("nginx exited at start ({status}); see logs/error.log"),
                    });
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(Error::Unavailable {
            backend: BACKEND,
            message: "nginx wrote no pid file within 5 s".into(),
        })
    }

    /// Stops the master started by [`NginxRouter::start`] (fast shutdown) and waits for it.
    pub async fn stop(&self) -> Result<()> {
        let mut state = self.state.lock().await;
        if let Some(mut master) = state.master.take() {
            let _ = self.signal("stop").await;
            if tokio::time::timeout(Duration::from_secs(5), master.wait())
                .await
                .is_err()
            {
                let _ = master.kill().await;
            }
        }
        Ok(())
    }

    async fn run(&self, args: &[&str], config: &Path) -> Result<()> {
        let output = Command::new(&self.config.binary)
            .arg("-p")
            .arg(&self.config.prefix)
            .arg("-c")
            .arg(config)
            .args(["-e", "logs/error.log"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| io_error("cannot run", &self.config.binary, e))?;
        if output.status.success() {
            Ok(())
        } else {
            let stderr = String::from_utf8_lossy(&output.stderr);
            Err(Error::backend(
                BACKEND,
                format!("nginx {} failed: {}", args.join(" "), stderr.trim()),
            ))
        }
    }

    async fn signal(&self, signal: &str) -> Result<()> {
        self.run(&["-s", signal], &self.config.config_path()).await
    }

    /// Renders `table`, writes its certificates and the candidate, checks the candidate with
    /// `nginx -t`, then moves it into place. Returns the text now in force.
    async fn write_checked(&self, table: &RouteTable) -> Result<String> {
        let rendered = render(&self.config, table)?;
        let prefix = &self.config.prefix;
        for dir in ["logs", "temp", "certs"] {
            let path = prefix.join(dir);
            tokio::fs::create_dir_all(&path)
                .await
                .map_err(|e| io_error("cannot create", &path, e))?;
        }
        for (relative, contents, secret) in &rendered.files {
            let path = prefix.join(relative);
            if tokio::fs::metadata(&path).await.is_ok() {
                continue; // content-addressed: the same name means the same bytes
            }
            write_file(&path, contents.as_bytes(), *secret).await?;
        }
        let candidate = self.config.candidate_path();
        write_file(&candidate, rendered.config.as_bytes(), false).await?;
        self.run(&["-t", "-q"], &candidate).await?;
        let target = self.config.config_path();
        tokio::fs::rename(&candidate, &target)
            .await
            .map_err(|e| io_error("cannot move into place", &target, e))?;
        Ok(rendered.config)
    }
}

impl Drop for NginxRouter {
    /// Stops a master that [`NginxRouter::start`] started and nobody stopped: a fast
    /// shutdown (SIGTERM) so that the master takes its workers down with it, where killing
    /// it outright would leave them serving.
    fn drop(&mut self) {
        let master = self.state.get_mut().master.take();
        if let Some(pid) = master.as_ref().and_then(Child::id) {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

async fn write_file(path: &Path, contents: &[u8], secret: bool) -> Result<()> {
    let temporary = path.with_extension("tmp");
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    if secret {
        options.mode(0o600);
    }
    let write = async {
        use tokio::io::AsyncWriteExt;
        let mut file = options.open(&temporary).await?;
        file.write_all(contents).await?;
        file.sync_all().await?;
        tokio::fs::rename(&temporary, path).await
    };
    write.await.map_err(|e| io_error("cannot write", path, e))
}

#[async_trait]
impl Router for NginxRouter {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn apply(&self, table: &RouteTable) -> Result<()> {
        let mut state = self.state.lock().await;
        if state.table == *table && state.rendered.is_some() {
            return Ok(());
        }
        let text = self.write_checked(table).await?;
        let running =
            state.master.is_some() || tokio::fs::metadata(self.config.pid_path()).await.is_ok();
        if running && state.rendered.as_deref() != Some(text.as_str()) {
            self.signal("reload").await?;
        }
        state.rendered = Some(text);
        state.table = table.clone();
        Ok(())
    }

    async fn current(&self) -> Result<RouteTable> {
        Ok(self.state.lock().await.table.clone())
    }
}
