//! The whole platform in one process: the controller and its API, the builder (git over
//! smart HTTP and SSH), the scheduler and its publisher, discovery, the built-in router
//! following discovery, and the logger. `deisd` is a thin shell around [`Platform::start`];
//! a Rust program can embed the platform the same way, most simply with
//! [`Platform::embedded`], deploying from a directory with [`Platform::deploy_dir`] and
//! reaching apps through the router with [`Platform::get`] (module [`embed`]).

pub mod embed;

pub use embed::DeployError;

use crate::controller::{Controller, Settings};
use crate::git::{self, ControllerPushHandler, ControllerSshAuthorizer};
use crate::logs::LogSource;
use crate::slugs::{BlobSlugFetcher, BuilderStorage};
use async_trait::async_trait;
use deis_builder::git::GitRepos;
use deis_builder::hook::HookServer;
use deis_builder::slug::SlugLimits;
use deis_builder::slug_store::SlugStore;
use deis_builder::ssh::{host_key, SshServer};
use deis_builder::{Builder, BuilderSettings, ImageBuilder};
use deis_core::discovery::keys;
use deis_core::model::PageRequest;
use deis_core::store::AppFilter;
use deis_core::{DynDiscovery, DynScheduler, DynStore, Error, Result};
use deis_discovery::{RouteSync, RouteSyncOptions};
use deis_router::{BuiltinRouter, ListenerKind, ListenerOptions, Listening, RouterConfig};
use deis_scheduler::{
    LocalConfig, LocalScheduler, LogSink, Publisher, PublisherConfig, SlugFetcher,
};
use deis_store::logs::{LogSettings, LogStore, SyslogListener};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where the platform listens and keeps its data.
#[derive(Debug, Clone)]
pub struct PlatformConfig {
    /// The data directory: logs, slugs (`blobs/`), repositories, build caches, the SSH host
    /// key.
    pub data_dir: PathBuf,
    /// The API (and git smart HTTP) address.
    pub api_addr: SocketAddr,
    /// The router's HTTP address.
    pub router_addr: SocketAddr,
    /// The router's admin address (`/metrics`, `/health-check`), if any.
    pub router_admin_addr: Option<SocketAddr>,
    /// The builder's SSH address, if any.
    pub ssh_addr: Option<SocketAddr>,
    /// The syslog listener's address (UDP and TCP), if any.
    pub syslog_addr: Option<SocketAddr>,
    /// Buildpack directories tried in order before the built-in procfile buildpack.
    pub buildpacks: Vec<PathBuf>,
    /// How large a pushed app may be (per file and in total); larger pushes are rejected.
    pub build_limits: SlugLimits,
    /// The controller's settings (platform domain, registration mode…).
    pub settings: Settings,
    /// How often the repositories, build caches and slugs of destroyed apps are looked for
    /// and deleted ([`crate::repo_gc`]).
    pub repo_gc_interval: Duration,
}

impl PlatformConfig {
    /// Everything on free loopback ports (SSH and syslog off), data under `data_dir`, apps
    /// at `<app>.<platform_domain>`: for tests and embedding programs.
    pub fn ephemeral(data_dir: impl Into<PathBuf>, platform_domain: &str) -> Self {
        let any: SocketAddr = ([127, 0, 0, 1], 0).into();
        PlatformConfig {
            data_dir: data_dir.into(),
            api_addr: any,
            router_addr: any,
            router_admin_addr: None,
            ssh_addr: None,
            syslog_addr: None,
            buildpacks: Vec::new(),
            build_limits: SlugLimits::default(),
            repo_gc_interval: crate::repo_gc::DEFAULT_INTERVAL,
            settings: Settings {
                platform_domain: platform_domain.into(),
                ..Settings::default()
            },
        }
    }
}

/// The backends the platform runs on; the scheduler defaults to local processes.
#[derive(Debug, Clone)]
pub struct Backends {
    /// The platform database.
    pub store: DynStore,
    /// The discovery key space.
    pub discovery: DynDiscovery,
    /// The scheduler; `None` takes `connect_scheduler`, or runs apps as local processes.
    pub scheduler: Option<DynScheduler>,
    /// Connects the scheduler once the platform's log sink exists, so app output reaches
    /// `deis logs` (how `deisd` opens the Docker and Swarm schedulers).
    pub connect_scheduler: Option<Arc<dyn SchedulerFactory>>,
}

/// Connects a scheduler whose instances' output goes to the platform's log sink.
#[async_trait]
pub trait SchedulerFactory: std::fmt::Debug + Send + Sync {
    /// Connects the scheduler; app output goes to `sink`, and slugs stored by the builder
    /// (`blob://` locations) are read through `slugs`.
    async fn connect(
        &self,
        sink: Arc<dyn LogSink>,
        slugs: Arc<dyn SlugFetcher>,
    ) -> Result<DynScheduler>;
}

/// The scheduler `backends` names: theirs, a connected one, or (`None`) the local one.
pub(crate) async fn chosen_scheduler(
    scheduler: Option<DynScheduler>,
    factory: Option<Arc<dyn SchedulerFactory>>,
    sink: Arc<dyn LogSink>,
    slugs: Arc<dyn SlugFetcher>,
) -> Result<Option<DynScheduler>> {
    match (scheduler, factory) {
        (Some(scheduler), _) => Ok(Some(scheduler)),
        (None, Some(factory)) => Ok(Some(factory.connect(sink, slugs).await?)),
        (None, None) => Ok(None),
    }
}

impl Backends {
    /// An in-memory store and discovery, and local processes.
    pub fn in_memory() -> Self {
        Backends {
            store: Arc::new(deis_core::memory::MemoryStore::new()),
            discovery: Arc::new(deis_core::memory::MemoryDiscovery::new()),
            scheduler: None,
            connect_scheduler: None,
        }
    }
}

/// A running platform.
#[derive(Debug)]
pub struct Platform {
    /// The controller, for embedding programs.
    pub controller: Arc<Controller>,
    /// The app logs.
    pub logs: LogStore,
    api_addr: SocketAddr,
    router_addr: SocketAddr,
    router_admin_addr: Option<SocketAddr>,
    ssh: Option<SshServer>,
    syslog: Option<SyslogListener>,
    api: HttpServer,
    listening: Vec<Listening>,
    route_sync: RouteSync,
    publisher: Publisher,
    local: Option<LocalScheduler>,
    hooks: Arc<HookServer>,
    _collector: crate::repo_gc::RepoCollector,
    embed: embed::EmbedParts,
}

/// Sends scheduler output to the log store.
#[derive(Debug, Clone)]
struct SchedulerLogs(LogStore);

impl LogSink for SchedulerLogs {
    fn line(&self, app: &str, source: &str, line: &str) {
        self.0.append(app, source, line);
    }
}

/// Serves `deis logs` from the log store.
#[derive(Debug, Clone)]
pub struct StoredLogs(pub LogStore);

#[async_trait]
impl LogSource for StoredLogs {
    async fn tail(&self, app: &str, lines: usize) -> Result<Option<String>> {
        let tail = self.0.tail(app, lines);
        if tail.is_empty() {
            return Ok(None);
        }
        Ok(Some(tail.join("\n") + "\n"))
    }

    async fn delete(&self, app: &str) -> Result<()> {
        self.0.delete(app);
        Ok(())
    }

    async fn follow(
        &self,
        app: &str,
        lines: usize,
    ) -> Result<Option<futures::stream::BoxStream<'static, String>>> {
        Ok(Some(self.0.tail_and_follow(app, lines)))
    }

    fn record(&self, app: &str, source: &str, line: &str) {
        self.0.append(app, source, line);
    }
}

fn io(what: &str) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| {
        Error::backend(
            "platform",
            std::io::Error::new(e.kind(), format!("{what}: {e}")),
        )
    }
}

fn built(what: &str) -> impl FnOnce(deis_builder::BuildError) -> Error + '_ {
    move |e| Error::backend("builder", std::io::Error::other(format!("{what}: {e}")))
}

/// The builder's Dockerfile builds follow the scheduler: on the engine it runs images from
/// (Docker, Swarm), or none (local processes), when Dockerfile apps are refused.
pub fn image_builder_for(scheduler: &dyn deis_core::scheduler::Scheduler) -> Option<ImageBuilder> {
    scheduler
        .image_engine()
        .map(|engine| ImageBuilder::new(engine.socket))
}

impl Platform {
    /// Starts every component and brings back the apps' formations from the store.
    pub async fn start(config: PlatformConfig, backends: Backends) -> Result<Platform> {
        let data = config.data_dir.clone();
        tokio::fs::create_dir_all(&data)
            .await
            .map_err(io("creating the data directory"))?;
        let logs = LogStore::new(LogSettings {
            directory: Some(data.join("logs")),
            ..LogSettings::default()
        })
        .map_err(io("opening the log directory"))?;
        let slugs =
            SlugStore::local(data.join("blobs")).map_err(built("opening the slug store"))?;
        let fetcher: Arc<dyn SlugFetcher> = Arc::new(BlobSlugFetcher::new(slugs.clone()));
        let sink: Arc<dyn LogSink> = Arc::new(SchedulerLogs(logs.clone()));
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
        let discovery = backends.discovery;
        discovery
            .put(
                keys::PLATFORM_DOMAIN,
                &config.settings.platform_domain,
                None,
            )
            .await?;
        let publisher = Publisher::spawn(
            scheduler.clone(),
            discovery.clone(),
            PublisherConfig::default(),
        );

        let router = Arc::new(BuiltinRouter::new(RouterConfig::default())?);
        let mut listening = vec![
            router
                .listen(ListenerOptions::new(ListenerKind::Http, config.router_addr))
                .await?,
        ];
        let router_addr = listening[0].local_addr();
        let mut router_admin_addr = None;
        if let Some(addr) = config.router_admin_addr {
            let admin = router
                .listen(ListenerOptions::new(ListenerKind::Admin, addr))
                .await?;
            router_admin_addr = Some(admin.local_addr());
            listening.push(admin);
        }
        let route_sync = RouteSync::spawn(
            discovery.clone(),
            router.clone(),
            RouteSyncOptions::default(),
        )?;

        let controller = Arc::new(Controller::new(
            backends.store,
            scheduler.clone(),
            discovery,
            Arc::new(StoredLogs(logs.clone())),
            config.settings.clone(),
        ));

        let mut builder_settings = BuilderSettings::new(data.join("builder"), slugs);
        builder_settings.buildpacks = config.buildpacks.clone();
        builder_settings.limits = config.build_limits;
        builder_settings.image_builder = image_builder_for(scheduler.as_ref()).map(|builder| {
            match &config.settings.registry {
                // Dockerfile builds go to the registry `deis pull` publishes to.
                Some(registry) => builder.with_registry(registry.clone()),
                None => builder,
            }
        });
        let builder = Builder::new(builder_settings);
        let hooks = HookServer::start(
            data.join("builder.sock"),
            builder.clone(),
            Arc::new(ControllerPushHandler::new(controller.clone())),
        )
        .await
        .map_err(built("starting the builder"))?;
        let repos = GitRepos::new(data.join("repos"), hooks.clone());
        controller.attach_build_storage(Arc::new(BuilderStorage::new(
            hooks.builder().clone(),
            repos.root(),
        )));
        let collector = crate::repo_gc::RepoCollector::spawn(
            controller.clone(),
            crate::repo_gc::BuilderDisk {
                repos: repos.clone(),
                repos_dir: data.join("repos"),
                builder: builder.clone(),
            },
            config.repo_gc_interval,
        );

        let api = crate::http::router(controller.clone())
            .merge(git::routes(controller.clone(), repos.clone()));
        let api = HttpServer::start(config.api_addr, api).await?;
        let api_addr = api.local_addr();

        let ssh = match config.ssh_addr {
            Some(addr) => {
                let key = host_key(&data.join("ssh_host_ed25519_key"))
                    .await
                    .map_err(built("loading the SSH host key"))?;
                let authorizer = Arc::new(ControllerSshAuthorizer::new(controller.clone()));
                Some(
                    SshServer::start(addr, key, repos, authorizer)
                        .await
                        .map_err(built("starting the SSH server"))?,
                )
            }
            None => None,
        };
        let syslog = match config.syslog_addr {
            Some(addr) => Some(
                SyslogListener::start(addr, logs.clone())
                    .await
                    .map_err(io("binding the syslog listener"))?,
            ),
            None => None,
        };

        let platform = Platform {
            controller,
            logs,
            api_addr,
            router_addr,
            router_admin_addr,
            ssh,
            syslog,
            api,
            listening,
            route_sync,
            publisher,
            local,
            hooks,
            _collector: collector,
            embed: embed::EmbedParts::new(router, builder),
        };
        platform.restore().await;
        Ok(platform)
    }

    async fn restore(&self) {
        restore_apps(
            &self.controller,
            &self.publisher,
            &StoredLogs(self.logs.clone()),
        )
        .await;
    }

    /// The builder (its slug store holds every app's slugs).
    pub fn builder(&self) -> &Builder {
        self.hooks.builder()
    }

    /// The API address.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// The router's HTTP address.
    pub fn router_addr(&self) -> SocketAddr {
        self.router_addr
    }

    /// The router's admin address, if started.
    pub fn router_admin_addr(&self) -> Option<SocketAddr> {
        self.router_admin_addr
    }

    /// The SSH address, if started.
    pub fn ssh_addr(&self) -> Option<SocketAddr> {
        self.ssh.as_ref().map(SshServer::address)
    }

    /// The syslog addresses (UDP, TCP), if started.
    pub fn syslog_addrs(&self) -> Option<(SocketAddr, SocketAddr)> {
        self.syslog.as_ref().map(|s| (s.udp, s.tcp))
    }

    /// Stops accepting work, lets requests finish, and stops every app process this
    /// platform started.
    pub async fn shutdown(self) {
        self.api.shutdown(Duration::from_secs(10)).await;
        drop(self.ssh);
        drop(self.syslog);
        for listener in self.listening {
            listener.shutdown(Duration::from_secs(5)).await;
        }
        self.route_sync.stop().await;
        self.publisher.shutdown().await;
        if let Some(local) = self.local {
            local.shutdown().await;
        }
    }
}

/// Converges every app to its latest release and formation (after a restart the local
/// scheduler runs nothing) and has the publisher watch it. Failures are logged, recorded in
/// the app's log through `logs`, and left to the next deploy.
pub async fn restore_apps(controller: &Controller, publisher: &Publisher, logs: &dyn LogSource) {
    let store = controller.store();
    let Ok(apps) = store.list_apps(AppFilter::All, PageRequest::ALL).await else {
        return;
    };
    for app in apps.items {
        publisher.watch_app(&app.id);
        if app.structure.values().all(|n| *n == 0) {
            continue;
        }
        if let Err(error) = converge(controller, &app).await {
            tracing::warn!(app = %app.id, %error, "could not bring the app back");
            logs.record(
                &app.id,
                crate::logs::CONTROLLER_SOURCE,
                &format!("could not restart after a platform restart: {error}"),
            );
        }
    }
}

async fn converge(
    controller: &Controller,
    app: &deis_core::model::App,
) -> std::result::Result<(), String> {
    let release = controller
        .store()
        .latest_release(&app.id)
        .await
        .map_err(|e| e.to_string())?;
    let spec = controller
        .spec_for_release(app, &release, app.structure.clone())
        .await
        .map_err(|e| e.to_string())?;
    controller
        .scheduler()
        .apply(&spec)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// An axum server on its own task with graceful shutdown: the controller's API and the
/// logger's HTTP API run on it.
#[derive(Debug)]
pub struct HttpServer {
    local_addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl HttpServer {
    /// Binds `addr` and serves `routes` until [`HttpServer::shutdown`].
    pub async fn start(addr: SocketAddr, routes: axum::Router) -> Result<HttpServer> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(io("binding the HTTP address"))?;
        let local_addr = listener
            .local_addr()
            .map_err(io("reading the HTTP address"))?;
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            if let Err(error) = axum::serve(listener, routes)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(%error, "an HTTP server stopped");
            }
        });
        Ok(HttpServer {
            local_addr,
            stop,
            task,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting connections and lets requests finish for at most `grace` (streams
    /// that never end, such as followed logs, are cut then).
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            task.abort();
        }
    }
}
