//! The platform's parts as separate processes, for multi-host topologies (Deis v1's
//! `deis-controller`, `deis-builder`, `deis-logger` and `deis-router@N` units). Each role
//! is a thin composition of library pieces; `deisd --role <role>` runs one of them.
//!
//! - [`ControllerRole`]: the API over the store, discovery and scheduler (with the
//!   publisher), reading logs from a remote logger ([`RemoteLogs`]) and shipping app output
//!   and `<app>[deis-controller]` events to it.
//! - [`BuilderRole`]: git over SSH and smart HTTP (`/<app>.git`, HTTP basic auth with the
//!   user name and API token) and the build pipeline; it talks to the controller only
//!   through the builder hooks over HTTP ([`ControllerHooks`]), with the builder key, and
//!   deletes the repositories and build caches of destroyed apps ([`crate::repo_gc`]).
//! - The logger is [`crate::logger::Logger`]; the router is `deis_router::BuiltinRouter`
//!   with a `deis_discovery::RouteSync`.
//!
//! The builder hands the controller the slug's path (as the in-process platform does), so
//! until slugs live in shared blob storage the builder and the controller must share that
//! file system path (one host, or a shared volume mounted at the same place).

use crate::client::{ControllerHooks, RemoteLogs};
use crate::controller::{Controller, Settings};
use crate::logs::LogSource;
use crate::platform::{chosen_scheduler, restore_apps, Backends, HttpServer, StoredLogs};
use crate::repo_gc::{BuilderDisk, RepoCollector};
use crate::slugs::BlobSlugFetcher;
use deis_builder::git::GitRepos;
use deis_builder::hook::HookServer;
use deis_builder::slug_store::SlugStore;
use deis_builder::ssh::{host_key, SshServer};
use deis_builder::{Builder, BuilderSettings};
use deis_core::discovery::keys;
use deis_core::{DynScheduler, Error, Result};
use deis_scheduler::{
    LocalConfig, LocalScheduler, LogSink, Publisher, PublisherConfig, SlugFetcher,
};
use deis_store::blob::BlobStore;
use deis_store::logs::{LogSettings, LogStore};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

fn invalid(field: &str, message: &str) -> Error {
    Error::Invalid(deis_core::error::ValidationError::new(
        field, "required", message,
    ))
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    move |e| {
        Error::backend(
            "platform",
            std::io::Error::new(e.kind(), format!("{what}: {e}")),
        )
    }
}

fn built(what: &'static str) -> impl FnOnce(deis_builder::BuildError) -> Error {
    move |e| Error::backend("builder", std::io::Error::other(format!("{what}: {e}")))
}

/// How a controller reaches its logger.
#[derive(Clone)]
pub struct LoggerLink {
    /// The logger's HTTP URL, e.g. `http://10.0.0.5:8088`.
    pub url: String,
    /// The logger key.
    pub key: String,
}

impl fmt::Debug for LoggerLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoggerLink")
            .field("url", &self.url)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Where the controller listens and keeps its data.
#[derive(Debug, Clone)]
pub struct ControllerRoleConfig {
    /// The data directory: the local scheduler's state (and logs when there is no logger).
    pub data_dir: PathBuf,
    /// The API address.
    pub api_addr: SocketAddr,
    /// The remote logger; `None` keeps the logs in `data_dir/logs`.
    pub logger: Option<LoggerLink>,
    /// The blob storage the builder uploads slugs to (`file:///dir`, `s3://…`), from which
    /// the local scheduler fetches them; `None` is `data_dir/blobs`, which only a builder on
    /// the same host with the same directory can share.
    pub blob_url: Option<String>,
    /// The controller's settings; `builder_key` must be set, or no builder could deploy.
    pub settings: Settings,
}

/// Where app output and platform events go: a remote logger or a local log store.
#[derive(Debug, Clone)]
enum Logs {
    Remote(RemoteLogs),
    Local(LogStore),
}

#[derive(Debug, Clone)]
struct LocalSink(LogStore);

impl LogSink for LocalSink {
    fn line(&self, app: &str, source: &str, line: &str) {
        self.0.append(app, source, line);
    }
}

/// A running controller.
#[derive(Debug)]
pub struct ControllerRole {
    /// The controller, for embedding programs.
    pub controller: Arc<Controller>,
    api: HttpServer,
    publisher: Publisher,
    local: Option<LocalScheduler>,
    logs: Logs,
}

impl ControllerRole {
    /// Starts the API, the publisher and (without a scheduler in `backends`) the local
    /// scheduler, then brings back the apps' formations from the store.
    pub async fn start(config: ControllerRoleConfig, backends: Backends) -> Result<ControllerRole> {
        if config
            .settings
            .builder_key
            .as_deref()
            .is_none_or(str::is_empty)
        {
            return Err(invalid(
                "builder_key",
                "the controller needs a builder key, or no builder could deploy",
            ));
        }
        let data = config.data_dir.clone();
        tokio::fs::create_dir_all(&data)
            .await
            .map_err(io("creating the data directory"))?;
        let logs = match &config.logger {
            Some(link) => Logs::Remote(RemoteLogs::new(&link.url, &link.key)),
            None => Logs::Local(
                LogStore::new(LogSettings {
                    directory: Some(data.join("logs")),
                    ..LogSettings::default()
                })
                .map_err(io("opening the log directory"))?,
            ),
        };
        let (source, sink): (Arc<dyn LogSource>, Arc<dyn LogSink>) = match &logs {
            Logs::Remote(remote) => (Arc::new(remote.clone()), Arc::new(remote.clone())),
            Logs::Local(store) => (
                Arc::new(StoredLogs(store.clone())),
                Arc::new(LocalSink(store.clone())),
            ),
        };
        let slugs = open_slugs(config.blob_url.as_deref(), &data)?;
        let fetcher: Arc<dyn SlugFetcher> = Arc::new(BlobSlugFetcher::new(slugs));
        let chosen = chosen_scheduler(
            backends.scheduler,
            backends.connect_scheduler,
            sink.clone(),
            fetcher.clone(),
        )
        .await?;
        let (scheduler, local): (DynScheduler, Option<LocalScheduler>) = match chosen {
            Some(scheduler) => (scheduler, None),
            None => {
                let mut local_config = LocalConfig::new(data.join("scheduler"));
                local_config.slug_fetcher = Some(fetcher);
                let local = LocalScheduler::with_sink(local_config, sink);
                (Arc::new(local.clone()), Some(local))
            }
        };
        backends
            .discovery
            .put(
                keys::PLATFORM_DOMAIN,
                &config.settings.platform_domain,
                None,
            )
            .await?;
        let publisher = Publisher::spawn(
            scheduler.clone(),
            backends.discovery.clone(),
            PublisherConfig::default(),
        );
        let controller = Arc::new(Controller::new(
            backends.store,
            scheduler,
            backends.discovery,
            source.clone(),
            config.settings,
        ));
        let api =
            HttpServer::start(config.api_addr, crate::http::router(controller.clone())).await?;
        restore_apps(&controller, &publisher, source.as_ref()).await;
        Ok(ControllerRole {
            controller,
            api,
            publisher,
            local,
            logs,
        })
    }

    /// The API address.
    pub fn api_addr(&self) -> SocketAddr {
        self.api.local_addr()
    }

    /// Stops the API (letting requests finish), the publisher and every app process this
    /// controller started, then ships the last log lines.
    pub async fn shutdown(self) {
        self.api.shutdown(Duration::from_secs(10)).await;
        self.publisher.shutdown().await;
        if let Some(local) = self.local {
            local.shutdown().await;
        }
        if let Logs::Remote(remote) = &self.logs {
            remote.flush(Duration::from_secs(5)).await;
        }
    }
}

/// Where the builder listens and keeps its repositories and caches.
#[derive(Clone)]
pub struct BuilderRoleConfig {
    /// The data directory: repositories, build caches, slugs, the SSH host key.
    pub data_dir: PathBuf,
    /// The SSH address.
    pub ssh_addr: SocketAddr,
    /// The git smart HTTP address (`http://<addr>/<app>.git`), if any.
    pub http_addr: Option<SocketAddr>,
    /// How often to look for the repositories and build caches of destroyed apps
    /// ([`crate::repo_gc::DEFAULT_INTERVAL`] is a sensible value).
    pub gc_interval: Duration,
    /// The controller's URL, e.g. `http://10.0.0.2:8000`.
    pub controller_url: String,
    /// The builder key the controller expects in `X-Deis-Builder-Auth`.
    pub builder_key: String,
    /// Buildpack directories tried in order before the built-in procfile buildpack.
    pub buildpacks: Vec<PathBuf>,
    /// The blob storage slugs are uploaded to (`file:///dir`, `s3://…`), shared with the
    /// controller's scheduler; `None` is `data_dir/blobs`.
    pub blob_url: Option<String>,
    /// Where `Dockerfile` apps are built: the Docker Engine the controller's scheduler runs
    /// images from (see [`crate::platform::image_builder_for`]); `None` refuses them, as
    /// for the local scheduler.
    pub image_builder: Option<deis_builder::ImageBuilder>,
    /// Size limits for an app's source and slug.
    pub limits: deis_builder::slug::SlugLimits,
}

/// The slug store a role uses: `url`, or `blobs` under the data directory.
fn open_slugs(url: Option<&str>, data: &std::path::Path) -> Result<SlugStore> {
    match url {
        Some(url) => Ok(SlugStore::new(BlobStore::open(url)?)),
        None => SlugStore::local(data.join("blobs")).map_err(built("opening the slug store")),
    }
}

impl fmt::Debug for BuilderRoleConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuilderRoleConfig")
            .field("data_dir", &self.data_dir)
            .field("ssh_addr", &self.ssh_addr)
            .field("http_addr", &self.http_addr)
            .field("gc_interval", &self.gc_interval)
            .field("controller_url", &self.controller_url)
            .field("builder_key", &"<redacted>")
            .field("buildpacks", &self.buildpacks)
            .field("image_builder", &self.image_builder)
            .field("limits", &self.limits)
            .finish()
    }
}

/// A running builder.
#[derive(Debug)]
pub struct BuilderRole {
    ssh: SshServer,
    http: Option<HttpServer>,
    _collector: RepoCollector,
    _hooks: Arc<HookServer>,
}

impl BuilderRole {
    /// Starts the hook socket, the SSH server, git smart HTTP (when `http_addr` is set) and
    /// the collector of destroyed apps' leftovers; pushes are checked, recorded and
    /// deployed through the controller's hooks.
    pub async fn start(config: BuilderRoleConfig) -> Result<BuilderRole> {
        if config.builder_key.is_empty() {
            return Err(invalid(
                "builder_key",
                "the builder needs the controller's builder key",
            ));
        }
        let data = config.data_dir;
        tokio::fs::create_dir_all(&data)
            .await
            .map_err(io("creating the data directory"))?;
        let controller = ControllerHooks::new(config.controller_url, config.builder_key);
        let slugs = open_slugs(config.blob_url.as_deref(), &data)?;
        let mut settings = BuilderSettings::new(data.join("builder"), slugs);
        settings.buildpacks = config.buildpacks;
        settings.image_builder = config.image_builder;
        settings.limits = config.limits;
        let builder = Builder::new(settings);
        let hooks = HookServer::start(
            data.join("builder.sock"),
            builder.clone(),
            Arc::new(controller.clone()),
        )
        .await
        .map_err(built("starting the hook server"))?;
        let repos = GitRepos::new(data.join("repos"), hooks.clone());
        let collector = RepoCollector::spawn(
            Arc::new(controller.clone()),
            BuilderDisk {
                repos: repos.clone(),
                repos_dir: data.join("repos"),
                builder,
            },
            config.gc_interval,
        );
        let http = match config.http_addr {
            Some(addr) => {
                let routes = crate::git::routes_with(Arc::new(controller.clone()), repos.clone())
                    .route("/healthz", axum::routing::get(|| async { "OK" }));
                Some(HttpServer::start(addr, routes).await?)
            }
            None => None,
        };
        let key = host_key(&data.join("ssh_host_ed25519_key"))
            .await
            .map_err(built("loading the SSH host key"))?;
        let ssh = SshServer::start(config.ssh_addr, key, repos, Arc::new(controller))
            .await
            .map_err(built("starting the SSH server"))?;
        Ok(BuilderRole {
            ssh,
            http,
            _collector: collector,
            _hooks: hooks,
        })
    }

    /// The SSH address.
    pub fn ssh_addr(&self) -> SocketAddr {
        self.ssh.address()
    }

    /// The git smart HTTP address, if started.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(HttpServer::local_addr)
    }

    /// Stops accepting connections (letting git HTTP requests finish) and the collector.
    pub async fn shutdown(self) {
        drop(self.ssh);
        if let Some(http) = self.http {
            http.shutdown(Duration::from_secs(10)).await;
        }
    }
}
