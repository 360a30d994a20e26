//! `deisd`, the platform daemon. With no arguments it runs the whole platform on its
//! embedded defaults: SQLite and logs in the user's data directory, in-memory discovery,
//! local processes, the built-in router, the builder (git over HTTP and SSH) and the logger.
//!
//! Settings come from flags, then `DEIS_*` variables, then a TOML file (`--config`), then
//! the defaults. `--role controller|builder|logger|router` runs one part for multi-host
//! topologies (see `deis_api::roles`); `--scheduler docker://…` or `swarm://…` runs the
//! apps as containers or Swarm services instead of local processes (see `scheduler`): the controller reads and ships logs through a remote
//! logger, the builder deploys through the controller's hooks, routers follow discovery.

mod scheduler;
mod settings;

use clap::Parser;
use deis_api::logger::Logger;
use deis_api::platform::{Backends, Platform};
use deis_api::roles::{BuilderRole, ControllerRole};
use settings::{Cli, Role, Settings};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DEIS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let settings = match Settings::resolve(cli) {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("deisd: {message}");
            return ExitCode::from(2);
        }
    };
    let result = match settings.role {
        Role::All => run_platform(settings).await,
        Role::Router => run_router(settings).await,
        Role::Controller => run_controller(settings).await,
        Role::Builder => run_builder(settings).await,
        Role::Logger => run_logger(settings).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("deisd: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

async fn open_backends(settings: &Settings) -> Result<Backends, String> {
    let store = deis_store::open_store(&settings.store)
        .await
        .map_err(|e| format!("store {}: {e}", settings.store_display()))?;
    let discovery = deis_discovery::open_discovery(&settings.discovery)
        .await
        .map_err(|e| format!("discovery {}: {e}", settings.discovery))?;
    Ok(Backends {
        store,
        discovery,
        scheduler: None,
        connect_scheduler: settings.scheduler_choice.factory(),
    })
}

async fn run_platform(settings: Settings) -> Result<(), String> {
    let backends = open_backends(&settings).await?;
    let platform = Platform::start(settings.platform_config(), backends)
        .await
        .map_err(|e| format!("starting the platform: {e}"))?;
    print_banner(&settings, &platform);
    shutdown_signal().await;
    println!("deisd: shutting down");
    platform.shutdown().await;
    Ok(())
}

fn print_banner(settings: &Settings, platform: &Platform) {
    let api = platform.api_addr();
    println!("deisd is running (data in {})", settings.data_dir.display());
    println!("  controller API  http://{api}");
    println!(
        "  router          http://{} (apps at http://<app>.{}:{})",
        platform.router_addr(),
        settings.domain,
        platform.router_addr().port()
    );
    if let Some(ssh) = platform.ssh_addr() {
        println!("  builder (SSH)   ssh://git@{ssh}/<app>.git");
    }
    println!("  builder (HTTP)  http://{api}/<app>.git");
    if let Some((udp, tcp)) = platform.syslog_addrs() {
        println!("  syslog          udp://{udp} tcp://{tcp}");
    }
    println!("  store           {}", settings.store_display());
    println!("  discovery       {}", settings.discovery);
    println!("  scheduler       {}", settings.scheduler);
    println!();
    println!("Next steps:");
    println!("  deis register http://{api} --username <you> --password <secret> --email <you@example.com>");
    println!("  deis keys:add ~/.ssh/id_ed25519.pub");
    println!("  deis create myapp && git push deis master");
    println!(
        "  curl http://myapp.{}:{}/",
        settings.domain,
        platform.router_addr().port()
    );
}

async fn run_router(settings: Settings) -> Result<(), String> {
    use deis_router::{BuiltinRouter, ListenerKind, ListenerOptions, RouterConfig};
    use std::sync::Arc;
    let discovery = deis_discovery::open_discovery(&settings.discovery)
        .await
        .map_err(|e| format!("discovery {}: {e}", settings.discovery))?;
    let router = Arc::new(BuiltinRouter::new(RouterConfig::default()).map_err(|e| e.to_string())?);
    let http = router
        .listen(
            ListenerOptions::new(ListenerKind::Http, settings.router_addr)
                .with_proxy_protocol(settings.proxy_protocol),
        )
        .await
        .map_err(|e| format!("binding {}: {e}", settings.router_addr))?;
    let admin = match settings.router_admin_addr {
        Some(addr) => Some(
            router
                .listen(ListenerOptions::new(ListenerKind::Admin, addr))
                .await
                .map_err(|e| format!("binding {addr}: {e}"))?,
        ),
        None => None,
    };
    let sync = deis_discovery::RouteSync::spawn(
        discovery,
        router,
        deis_discovery::RouteSyncOptions::default(),
    )
    .map_err(|e| e.to_string())?;
    println!("deisd router is running");
    println!("  router  http://{}", http.local_addr());
    if let Some(admin) = &admin {
        println!("  admin   http://{}/metrics", admin.local_addr());
    }
    println!("  following {}", settings.discovery);
    shutdown_signal().await;
    sync.stop().await;
    http.shutdown(std::time::Duration::from_secs(10)).await;
    if let Some(admin) = admin {
        admin.shutdown(std::time::Duration::from_secs(1)).await;
    }
    Ok(())
}

async fn run_controller(settings: Settings) -> Result<(), String> {
    let config = settings.controller_config()?;
    let backends = open_backends(&settings).await?;
    let role = ControllerRole::start(config, backends)
        .await
        .map_err(|e| format!("starting the controller: {e}"))?;
    println!("deisd controller is running");
    println!("  controller API  http://{}", role.api_addr());
    match &settings.logger_url {
        Some(url) => println!("  logger          {url}"),
        None => println!(
            "  logs            {} (no --logger-url)",
            settings.data_dir.join("logs").display()
        ),
    }
    println!("  store           {}", settings.store_display());
    println!("  discovery       {}", settings.discovery);
    println!("  scheduler       {}", settings.scheduler);
    shutdown_signal().await;
    println!("deisd: shutting down");
    role.shutdown().await;
    Ok(())
}

async fn run_builder(settings: Settings) -> Result<(), String> {
    let config = settings.builder_config()?;
    let role = BuilderRole::start(config)
        .await
        .map_err(|e| format!("starting the builder: {e}"))?;
    println!("deisd builder is running");
    println!("  builder (SSH)   ssh://git@{}/<app>.git", role.ssh_addr());
    if let Some(http) = role.http_addr() {
        println!("  builder (HTTP)  http://{http}/<app>.git (user name and API token)");
    }
    println!("  controller      {}", settings.controller_url);
    shutdown_signal().await;
    println!("deisd: shutting down");
    role.shutdown().await;
    Ok(())
}

async fn run_logger(settings: Settings) -> Result<(), String> {
    let config = settings.logger_config()?;
    let logger = Logger::start(config)
        .await
        .map_err(|e| format!("starting the logger: {e}"))?;
    println!("deisd logger is running");
    println!("  logger API      http://{}", logger.http_addr());
    if let Some((udp, tcp)) = logger.syslog_addrs() {
        println!("  syslog          udp://{udp} tcp://{tcp}");
    }
    shutdown_signal().await;
    println!("deisd: shutting down");
    logger.shutdown().await;
    Ok(())
}
