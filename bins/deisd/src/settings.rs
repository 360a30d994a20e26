//! deisd's settings: flags, `DEIS_*` variables, a TOML file, then the defaults.

use clap::{Parser, ValueEnum};
use deis_api::controller::{RegistrationMode, Settings as ControllerSettings};
use deis_api::logger::LoggerConfig;
use deis_api::platform::PlatformConfig;
use deis_api::roles::{BuilderRoleConfig, ControllerRoleConfig, LoggerLink};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Which part of the platform this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything (the default).
    All,
    /// Only a router that follows discovery.
    Router,
    /// Only the controller: the API, the scheduler and the publisher.
    Controller,
    /// Only the builder: git over SSH and builds, deploying through the controller's hooks.
    Builder,
    /// Only the logger: the log store, syslog and the HTTP API controllers read logs from.
    Logger,
}

/// The command line; every flag also reads a `DEIS_*` variable.
#[derive(Debug, Parser)]
#[command(name = "deisd", version, about = "The Deis platform daemon")]
pub struct Cli {
    /// A TOML file with any of the settings below (flag names with `_`, e.g. `api_addr`).
    #[arg(long, env = "DEIS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Which part to run.
    #[arg(long, value_enum, env = "DEIS_ROLE")]
    pub role: Option<Role>,
    /// The data directory (default: `$XDG_DATA_HOME/deis` or `~/.local/share/deis`).
    #[arg(long, env = "DEIS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The controller API address.
    #[arg(long, env = "DEIS_API_ADDR")]
    pub api_addr: Option<SocketAddr>,
    /// The router address.
    #[arg(long, env = "DEIS_ROUTER_ADDR")]
    pub router_addr: Option<SocketAddr>,
    /// The router's admin address (`/metrics`).
    #[arg(long, env = "DEIS_ROUTER_ADMIN_ADDR")]
    pub router_admin_addr: Option<SocketAddr>,
    /// Accept the PROXY protocol on the router (behind a load balancer).
    #[arg(long, env = "DEIS_PROXY_PROTOCOL")]
    pub proxy_protocol: Option<bool>,
    /// The builder's SSH address.
    #[arg(long, env = "DEIS_SSH_ADDR")]
    pub ssh_addr: Option<SocketAddr>,
    /// The builder role's git smart HTTP address (`http://<addr>/<app>.git`); the whole
    /// platform serves git over HTTP on the API address instead.
    #[arg(long, env = "DEIS_GIT_HTTP_ADDR")]
    pub git_http_addr: Option<SocketAddr>,
    /// Seconds between two looks for the repositories and build caches of destroyed apps.
    #[arg(long, env = "DEIS_REPO_GC_INTERVAL")]
    pub repo_gc_interval: Option<u64>,
    /// The largest an app's source or slug may be, in bytes (default 1 GiB); a larger push
    /// is refused.
    #[arg(long, env = "DEIS_MAX_APP_BYTES")]
    pub max_app_bytes: Option<u64>,
    /// The largest one file of an app may be, in bytes (default 256 MiB).
    #[arg(long, env = "DEIS_MAX_FILE_BYTES")]
    pub max_file_bytes: Option<u64>,
    /// How many builds' slugs are kept per app (those most recently released; default 5,
    /// at least 1): older ones are deleted, and rolling back to them is refused.
    #[arg(long, env = "DEIS_SLUGS_KEPT")]
    pub slugs_kept: Option<usize>,
    /// The syslog listener's address (UDP and TCP).
    #[arg(long, env = "DEIS_SYSLOG_ADDR")]
    pub syslog_addr: Option<SocketAddr>,
    /// The platform domain: apps answer at `<app>.<domain>`.
    #[arg(long, env = "DEIS_DOMAIN")]
    pub domain: Option<String>,
    /// The store URL: `sqlite:///path`, `postgres://…` or `memory://`.
    #[arg(long, env = "DEIS_STORE")]
    pub store: Option<String>,
    /// The discovery URL: `memory://` or `etcd://host:2379,…`.
    #[arg(long, env = "DEIS_DISCOVERY")]
    pub discovery: Option<String>,
    /// The scheduler URL: `local://`, `docker://[socket][?runner=<image>&bind=<ip>]` or
    /// `swarm://[socket][?network=<overlay>&endpoints=host|overlay&runner=<image>]`.
    #[arg(long, env = "DEIS_SCHEDULER")]
    pub scheduler: Option<String>,
    /// Who may register: enabled, admin_only or disabled.
    #[arg(long, env = "DEIS_REGISTRATION")]
    pub registration: Option<String>,
    /// A buildpack directory to try before the built-in procfile buildpack (repeatable).
    #[arg(long = "buildpack")]
    pub buildpacks: Vec<PathBuf>,
    /// The logger role's HTTP address.
    #[arg(long, env = "DEIS_LOGGER_ADDR")]
    pub logger_addr: Option<SocketAddr>,
    /// The logger the controller role reads logs from and ships lines to (`http://host:port`).
    #[arg(long, env = "DEIS_LOGGER_URL")]
    pub logger_url: Option<String>,
    /// The shared key of the logger's HTTP API (logger and controller roles).
    #[arg(long, env = "DEIS_LOGGER_KEY", hide_env_values = true)]
    pub logger_key: Option<String>,
    /// The controller the builder role deploys through (`http://host:port`).
    #[arg(long, env = "DEIS_CONTROLLER_URL")]
    pub controller_url: Option<String>,
    /// The shared key of the builder hooks (controller and builder roles).
    #[arg(long, env = "DEIS_BUILDER_KEY", hide_env_values = true)]
    pub builder_key: Option<String>,
    /// Where slugs live, shared by the builder and the controller roles: `file:///dir`
    /// (default: `blobs` in the data directory) or `s3://bucket/prefix` (feature `s3`).
    #[arg(long, env = "DEIS_BLOB_STORE")]
    pub blob_store: Option<String>,
    /// The Docker Engine (unix socket) the builder role builds `Dockerfile` apps on; the
    /// controller role publishes `deis pull` images through its scheduler's engine.
    #[arg(long, env = "DEIS_IMAGE_ENGINE")]
    pub image_engine: Option<String>,
    /// The Docker registry (`host:port`, e.g. `127.0.0.1:5000`) app images are pushed to,
    /// so that every node can fetch them: the builder role pushes what it builds, the
    /// controller role publishes `deis pull` images there.
    #[arg(long, env = "DEIS_REGISTRY")]
    pub registry: Option<String>,
}

/// The same settings, as a TOML file holds them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    role: Option<Role>,
    data_dir: Option<PathBuf>,
    api_addr: Option<SocketAddr>,
    router_addr: Option<SocketAddr>,
    router_admin_addr: Option<SocketAddr>,
    proxy_protocol: Option<bool>,
    ssh_addr: Option<SocketAddr>,
    git_http_addr: Option<SocketAddr>,
    repo_gc_interval: Option<u64>,
    max_app_bytes: Option<u64>,
    max_file_bytes: Option<u64>,
    slugs_kept: Option<usize>,
    syslog_addr: Option<SocketAddr>,
    domain: Option<String>,
    store: Option<String>,
    discovery: Option<String>,
    scheduler: Option<String>,
    registration: Option<String>,
    #[serde(default)]
    buildpacks: Vec<PathBuf>,
    logger_addr: Option<SocketAddr>,
    logger_url: Option<String>,
    logger_key: Option<String>,
    controller_url: Option<String>,
    builder_key: Option<String>,
    blob_store: Option<String>,
    image_engine: Option<String>,
    registry: Option<String>,
}

/// The resolved settings.
#[derive(Clone)]
pub struct Settings {
    pub role: Role,
    pub data_dir: PathBuf,
    pub api_addr: SocketAddr,
    pub router_addr: SocketAddr,
    pub router_admin_addr: Option<SocketAddr>,
    pub proxy_protocol: bool,
    pub ssh_addr: SocketAddr,
    pub git_http_addr: SocketAddr,
    pub repo_gc_interval: std::time::Duration,
    pub build_limits: deis_builder::slug::SlugLimits,
    pub slugs_kept: usize,
    pub syslog_addr: Option<SocketAddr>,
    pub domain: String,
    pub store: String,
    pub discovery: String,
    pub scheduler: String,
    pub scheduler_choice: crate::scheduler::SchedulerChoice,
    pub registration: RegistrationMode,
    pub buildpacks: Vec<PathBuf>,
    pub logger_addr: SocketAddr,
    pub logger_url: Option<String>,
    pub logger_key: Option<String>,
    pub controller_url: String,
    pub builder_key: Option<String>,
    pub blob_store: Option<String>,
    pub image_engine: Option<String>,
    pub registry: Option<String>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("role", &self.role)
            .field("data_dir", &self.data_dir)
            .field("store", &self.store_display())
            .field("discovery", &self.discovery)
            .field("scheduler", &self.scheduler)
            .finish_non_exhaustive()
    }
}

fn default_data_dir() -> PathBuf {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(xdg) = var("XDG_DATA_HOME") {
        return xdg.join("deis");
    }
    var("HOME")
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".local/share/deis")
}

fn read_file(path: &Path) -> Result<FileSettings, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))
}

impl Settings {
    /// Merges flags and variables over the file over the defaults.
    pub fn resolve(cli: Cli) -> Result<Settings, String> {
        let file = match &cli.config {
            Some(path) => read_file(path)?,
            None => FileSettings::default(),
        };
        let data_dir = cli
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(default_data_dir);
        let address = |given: Option<SocketAddr>, from_file: Option<SocketAddr>, default: &str| {
            given
                .or(from_file)
                .unwrap_or_else(|| default.parse().expect("a valid default address"))
        };
        let registration = cli
            .registration
            .or(file.registration)
            .unwrap_or_else(|| "enabled".into());
        let registration: RegistrationMode = registration.parse()?;
        let domain = cli
            .domain
            .or(file.domain)
            .unwrap_or_else(|| "localhost".into());
        deis_core::validation::domain(&domain)
            .map_err(|e| format!("--domain {domain}: {}", e.message))?;
        let mut buildpacks = cli.buildpacks;
        buildpacks.extend(file.buildpacks);
        let secret = |given: Option<String>, from_file: Option<String>, name: &str| match given
            .or(from_file)
        {
            Some(key) if key.trim().is_empty() => Err(format!("--{name} is empty")),
            other => Ok(other),
        };
        let url = |given: Option<String>, from_file: Option<String>, name: &str| {
            given
                .or(from_file)
                .map(|value| {
                    let parsed =
                        url::Url::parse(&value).map_err(|e| format!("--{name} {value}: {e}"))?;
                    if !matches!(parsed.scheme(), "http" | "https") {
                        return Err(format!(
                            "--{name} {value}: expected an http:// or https:// URL"
                        ));
                    }
                    Ok(value.trim_end_matches('/').to_string())
                })
                .transpose()
        };
        let defaults = deis_builder::slug::SlugLimits::default();
        let build_limits = deis_builder::slug::SlugLimits {
            max_total_bytes: cli
                .max_app_bytes
                .or(file.max_app_bytes)
                .unwrap_or(defaults.max_total_bytes),
            max_file_bytes: cli
                .max_file_bytes
                .or(file.max_file_bytes)
                .unwrap_or(defaults.max_file_bytes),
        };
        if build_limits.max_total_bytes == 0 || build_limits.max_file_bytes == 0 {
            return Err("--max-app-bytes and --max-file-bytes must be above 0".into());
        }
        let slugs_kept = cli
            .slugs_kept
            .or(file.slugs_kept)
            .unwrap_or(ControllerSettings::default().slugs_kept);
        if slugs_kept == 0 {
            return Err("--slugs-kept must be at least 1 (the current release's slug)".into());
        }
        let registry = cli.registry.or(file.registry);
        if let Some(registry) = &registry {
            deis_builder::check_registry(registry).map_err(|e| format!("--{e}"))?;
        }
        let image_engine = cli.image_engine.or(file.image_engine);
        if let Some(engine) = &image_engine {
            if !engine.starts_with('/') {
                return Err(format!(
                    "--image-engine {engine}: give the engine's unix socket as a path (/var/run/docker.sock)"
                ));
            }
        }
        let scheduler = cli
            .scheduler
            .or(file.scheduler)
            .unwrap_or_else(|| "local://".into());
        Ok(Settings {
            logger_addr: address(cli.logger_addr, file.logger_addr, "127.0.0.1:8088"),
            logger_url: url(cli.logger_url, file.logger_url, "logger-url")?,
            logger_key: secret(cli.logger_key, file.logger_key, "logger-key")?,
            controller_url: url(cli.controller_url, file.controller_url, "controller-url")?
                .unwrap_or_else(|| "http://127.0.0.1:8000".into()),
            builder_key: secret(cli.builder_key, file.builder_key, "builder-key")?,
            blob_store: cli.blob_store.or(file.blob_store),
            image_engine,
            registry,
            role: cli.role.or(file.role).unwrap_or(Role::All),
            store: cli
                .store
                .or(file.store)
                .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("deis.db").display())),
            data_dir,
            api_addr: address(cli.api_addr, file.api_addr, "127.0.0.1:8000"),
            router_addr: address(cli.router_addr, file.router_addr, "127.0.0.1:8080"),
            router_admin_addr: cli.router_admin_addr.or(file.router_admin_addr),
            proxy_protocol: cli.proxy_protocol.or(file.proxy_protocol).unwrap_or(false),
            ssh_addr: address(cli.ssh_addr, file.ssh_addr, "127.0.0.1:2222"),
            git_http_addr: address(cli.git_http_addr, file.git_http_addr, "127.0.0.1:8001"),
            repo_gc_interval: cli
                .repo_gc_interval
                .or(file.repo_gc_interval)
                .map(|s| std::time::Duration::from_secs(s.max(1)))
                .unwrap_or(deis_api::repo_gc::DEFAULT_INTERVAL),
            build_limits,
            slugs_kept,
            syslog_addr: cli.syslog_addr.or(file.syslog_addr),
            domain,
            discovery: cli
                .discovery
                .or(file.discovery)
                .unwrap_or_else(|| "memory://".into()),
            scheduler_choice: crate::scheduler::SchedulerChoice::parse(&scheduler)?,
            scheduler,
            registration,
            buildpacks,
        })
    }

    /// The store URL without a password, for printing.
    pub fn store_display(&self) -> String {
        match self
            .store
            .split_once("://")
            .and_then(|(s, rest)| rest.split_once('@').map(|(cred, host)| (s, cred, host)))
        {
            Some((scheme, credentials, host)) => {
                let user = credentials.split(':').next().unwrap_or("");
                format!("{scheme}://{user}:***@{host}")
            }
            None => self.store.clone(),
        }
    }

    /// The platform's configuration.
    pub fn platform_config(&self) -> PlatformConfig {
        PlatformConfig {
            data_dir: self.data_dir.clone(),
            api_addr: self.api_addr,
            router_addr: self.router_addr,
            router_admin_addr: self.router_admin_addr,
            ssh_addr: Some(self.ssh_addr),
            syslog_addr: self.syslog_addr,
            buildpacks: self.buildpacks.clone(),
            build_limits: self.build_limits,
            repo_gc_interval: self.repo_gc_interval,
            settings: self.controller_settings(),
        }
    }

    /// The controller's settings.
    pub fn controller_settings(&self) -> ControllerSettings {
        ControllerSettings {
            platform_domain: self.domain.clone(),
            registration_mode: self.registration,
            builder_key: self.builder_key.clone(),
            registry: self.registry.clone(),
            slugs_kept: self.slugs_kept,
            ..ControllerSettings::default()
        }
    }

    /// The controller role's configuration.
    pub fn controller_config(&self) -> Result<ControllerRoleConfig, String> {
        if self.builder_key.is_none() {
            return Err("the controller role needs --builder-key (DEIS_BUILDER_KEY), the secret it shares with the builder".into());
        }
        let logger = match (&self.logger_url, &self.logger_key) {
            (Some(url), Some(key)) => Some(LoggerLink {
                url: url.clone(),
                key: key.clone(),
            }),
            (Some(_), None) => {
                return Err("--logger-url needs --logger-key (DEIS_LOGGER_KEY)".into())
            }
            (None, _) => None,
        };
        Ok(ControllerRoleConfig {
            data_dir: self.data_dir.clone(),
            api_addr: self.api_addr,
            logger,
            blob_url: self.blob_store.clone(),
            settings: self.controller_settings(),
        })
    }

    /// The builder role's configuration.
    pub fn builder_config(&self) -> Result<BuilderRoleConfig, String> {
        let Some(key) = &self.builder_key else {
            return Err("the builder role needs --builder-key (DEIS_BUILDER_KEY), the secret the controller checks".into());
        };
        Ok(BuilderRoleConfig {
            data_dir: self.data_dir.clone(),
            ssh_addr: self.ssh_addr,
            http_addr: Some(self.git_http_addr),
            gc_interval: self.repo_gc_interval,
            controller_url: self.controller_url.clone(),
            builder_key: key.clone(),
            buildpacks: self.buildpacks.clone(),
            blob_url: self.blob_store.clone(),
            // Dockerfile builds need an engine (--image-engine, the one the controller's
            // scheduler runs images from); without one they are refused.
            image_builder: self.image_engine.as_ref().map(|socket| {
                let builder = deis_builder::ImageBuilder::new(socket.clone());
                match &self.registry {
                    Some(registry) => builder.with_registry(registry.clone()),
                    None => builder,
                }
            }),
            limits: self.build_limits,
        })
    }

    /// The logger role's configuration; syslog listens on 127.0.0.1:5514 unless told.
    pub fn logger_config(&self) -> Result<LoggerConfig, String> {
        let Some(key) = &self.logger_key else {
            return Err("the logger role needs --logger-key (DEIS_LOGGER_KEY), the secret controllers present".into());
        };
        Ok(LoggerConfig {
            data_dir: self.data_dir.clone(),
            http_addr: self.logger_addr,
            syslog_addr: Some(
                self.syslog_addr
                    .unwrap_or_else(|| "127.0.0.1:5514".parse().expect("a valid address")),
            ),
            key: key.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(args: &[&str]) -> Result<Settings, String> {
        let mut argv = vec!["deisd", "--data-dir", "/tmp/deisd-settings-test"];
        argv.extend_from_slice(args);
        Settings::resolve(Cli::parse_from(argv))
    }

    #[test]
    fn build_limits_and_slugs_kept_reach_the_builder_and_the_controller() {
        let defaults = resolve(&[]).unwrap();
        assert_eq!(defaults.slugs_kept, 5);
        assert_eq!(
            defaults.platform_config().build_limits,
            deis_builder::slug::SlugLimits::default()
        );
        let settings = resolve(&[
            "--max-app-bytes",
            "1000000",
            "--max-file-bytes",
            "4096",
            "--slugs-kept",
            "2",
            "--builder-key",
            "k",
        ])
        .unwrap();
        let limits = deis_builder::slug::SlugLimits {
            max_total_bytes: 1_000_000,
            max_file_bytes: 4096,
        };
        assert_eq!(settings.platform_config().build_limits, limits);
        assert_eq!(settings.platform_config().settings.slugs_kept, 2);
        assert_eq!(settings.controller_settings().slugs_kept, 2);
        assert_eq!(settings.builder_config().unwrap().limits, limits);
    }

    #[test]
    fn zero_limits_are_refused_in_one_line() {
        let error = resolve(&["--slugs-kept", "0"]).err().unwrap();
        assert!(error.contains("--slugs-kept must be at least 1"), "{error}");
        let error = resolve(&["--max-app-bytes", "0"]).err().unwrap();
        assert!(error.contains("must be above 0"), "{error}");
        assert!(!error.contains('\n'));
    }
}
