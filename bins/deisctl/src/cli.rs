//! The command line: `deisctl config …`, and the unit commands on an engine.

use crate::components::{self, Component, PlatformSettings, Topology, Unit};
use crate::config::{self, ConfigAction};
use crate::engine::{DockerEngine, PlatformEngine, SwarmEngine, UnitStatus};
use crate::image::{ImageSource, PostgresFiles};
use crate::output;
use crate::{CtlError, CtlResult};
use clap::{Parser, Subcommand, ValueEnum};
use deis_core::DynDiscovery;
use rand::TryRngCore;
use std::time::{Duration, Instant};

/// The engines deisctl can run the platform on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineKind {
    /// One Docker Engine: units are containers on a private bridge network.
    Docker,
    /// Docker Swarm services placed by node labels (control plane, etcd, router mesh, data
    /// plane), each on the overlay networks of the planes it talks on; three etcd members,
    /// PostgreSQL as the store, a registry for app images, apps as Swarm services.
    Swarm,
}

impl Args {
    /// What `platform` is made of: the engine's topology, less the `registry` unit when
    /// `--registry` names another registry.
    pub fn topology(&self) -> Topology {
        let mut topology = self.engine.topology();
        if self.registry.is_some() {
            topology.registry = false;
        }
        topology
    }
}

impl EngineKind {
    /// What `platform` is made of on this engine.
    pub fn topology(self) -> Topology {
        match self {
            EngineKind::Docker => Topology::DOCKER,
            EngineKind::Swarm => Topology::SWARM,
        }
    }
}

/// The operator's command line of Deis.
#[derive(Debug, Parser)]
#[command(
    name = "deisctl",
    version,
    about = "Manage a Deis platform: settings and components"
)]
pub struct Args {
    /// The platform's discovery as this machine reaches it.
    #[arg(
        long,
        env = "DEIS_DISCOVERY",
        default_value = "etcd://127.0.0.1:4001",
        global = true
    )]
    pub discovery: String,
    /// The discovery URL the components use inside the platform's network (default: the
    /// `etcd` unit, `etcd://<prefix>-etcd:2379`).
    #[arg(long, env = "DEISCTL_PLATFORM_DISCOVERY", global = true)]
    pub platform_discovery: Option<String>,
    /// The engine the components run on.
    #[arg(
        long,
        env = "DEISCTL_ENGINE",
        value_enum,
        default_value = "docker",
        global = true
    )]
    pub engine: EngineKind,
    /// The Docker Engine's unix socket.
    #[arg(
        long,
        env = "DOCKER_SOCKET",
        default_value = "/var/run/docker.sock",
        global = true
    )]
    pub docker_socket: String,
    /// The prefix of unit, container, network, volume and image names.
    #[arg(long, env = "DEISCTL_PREFIX", default_value = "deis", global = true)]
    pub prefix: String,
    /// The host port the etcd unit's client port is published on (on 127.0.0.1 with
    /// Docker; with Swarm on every etcd node, member N on this port + N - 1).
    #[arg(long, env = "DEISCTL_ETCD_PORT", default_value_t = 4001, global = true)]
    pub etcd_port: u16,
    /// A Docker registry (`host:port`) for app images that every node reaches, instead of
    /// the `registry` unit the Swarm topology runs (published on `127.0.0.1:<hostPort>`,
    /// `deisctl config registry set hostPort=N`, default 5000).
    #[arg(long, env = "DEISCTL_REGISTRY", global = true)]
    pub registry: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: CommandArgs,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum CommandArgs {
    /// Read, write or remove settings: `config platform set domain=example.com`.
    Config {
        /// The component (`platform`, `controller`, `router`…).
        component: String,
        /// `get`, `set` or `rm`.
        action: String,
        /// Keys (`get`, `rm`) or `key=value` pairs (`set`).
        args: Vec<String>,
    },
    /// Install units: `platform`, `etcd`, `logger`, `controller`, `builder`, `router@N`.
    Install {
        /// Targets.
        targets: Vec<String>,
        /// How many routers `platform` and `router` mean.
        #[arg(long, default_value_t = 1)]
        router_mesh_size: u32,
    },
    /// Remove units (their data stays in the data volume).
    Uninstall {
        /// Targets.
        targets: Vec<String>,
    },
    /// Start units in order, each after the previous one runs.
    Start {
        /// Targets.
        targets: Vec<String>,
    },
    /// Stop units, in reverse order.
    Stop {
        /// Targets.
        targets: Vec<String>,
    },
    /// Stop, then start units.
    Restart {
        /// Targets.
        targets: Vec<String>,
    },
    /// The state of units (all installed ones without targets).
    Status {
        /// Targets.
        targets: Vec<String>,
    },
    /// Every installed unit.
    List,
    /// Resize the router mesh: `scale router=N`.
    Scale {
        /// `router=N`.
        target: String,
    },
}

/// Runs the command; the text to print, or a one-line error.
pub async fn run(args: Args) -> CtlResult<String> {
    crate::config::check_name("prefix", &args.prefix)?;
    if let Some(registry) = &args.registry {
        crate::config::check_registry(registry)?;
    }
    match &args.command {
        CommandArgs::Config {
            component,
            action,
            args: rest,
        } => {
            let action = config::parse_action(action, rest)?;
            let discovery = config::open(&args.discovery).await?;
            let lines = config::run(&discovery, component, &action).await?;
            Ok(match action {
                ConfigAction::Get(_) | ConfigAction::Set(_) => {
                    lines.iter().map(|l| format!("{l}\n")).collect()
                }
                ConfigAction::Rm(_) => lines.iter().map(|l| format!("{l}\n")).collect(),
            })
        }
        _ => {
            let engine = connect(&args).await?;
            run_units(&args, engine.as_ref()).await
        }
    }
}

async fn connect(args: &Args) -> CtlResult<Box<dyn PlatformEngine>> {
    match args.engine {
        EngineKind::Docker => {
            let image = ImageSource::from_environment()?;
            Ok(Box::new(
                DockerEngine::connect(&args.docker_socket, &args.prefix, image).await?,
            ))
        }
        EngineKind::Swarm => {
            let mut image = ImageSource::from_environment()?;
            image.postgres = Some(PostgresFiles::installed()?);
            if args.topology().registry {
                image.add_registry()?;
            }
            Ok(Box::new(
                SwarmEngine::connect(&args.docker_socket, &args.prefix, image).await?,
            ))
        }
    }
}

/// The routers installed now.
fn installed_routers(prefix: &str, units: &[UnitStatus]) -> Vec<u32> {
    units
        .iter()
        .filter_map(|u| Unit::from_unit_name(prefix, &u.unit))
        .filter(|u| u.component == Component::Router)
        .filter_map(|u| u.number)
        .collect()
}

/// Targets for commands on installed units: `router`/`platform` mean the installed routers.
fn installed_targets(
    args: &Args,
    targets: &[String],
    units: &[UnitStatus],
) -> CtlResult<Vec<Unit>> {
    let routers = installed_routers(&args.prefix, units);
    let mesh = routers.iter().copied().max().unwrap_or(0);
    let mut parsed = components::parse_targets(targets, mesh, args.topology())?;
    parsed.retain(|u| {
        u.component != Component::Router
            || u.number.is_none_or(|n| {
                routers.contains(&n) || !targets.iter().any(|t| t == "platform" || t == "router")
            })
    });
    Ok(parsed)
}

async fn run_units(args: &Args, engine: &dyn PlatformEngine) -> CtlResult<String> {
    let mut out = String::new();
    match &args.command {
        CommandArgs::Config { .. } => unreachable!("handled by run"),
        CommandArgs::Install {
            targets,
            router_mesh_size,
        } => {
            if !(1..=components::MAX_ROUTERS).contains(router_mesh_size) {
                return Err(CtlError(format!(
                    "--router-mesh-size {router_mesh_size}: from 1 to {}",
                    components::MAX_ROUTERS
                )));
            }
            let units = components::parse_targets(targets, *router_mesh_size, args.topology())?;
            install(args, engine, &units, &mut out).await?;
        }
        CommandArgs::Uninstall { targets } => {
            let installed = engine.units().await?;
            let mut units = installed_targets(args, targets, &installed)?;
            units.reverse();
            for unit in units {
                let name = unit.unit_name(&args.prefix);
                if engine.uninstall(&name).await? {
                    out.push_str(&format!("{name}: uninstalled\n"));
                } else {
                    out.push_str(&format!("{name}: not installed\n"));
                }
            }
            engine.remove_shared().await?;
        }
        CommandArgs::Start { targets } => {
            let installed = engine.units().await?;
            let units = installed_targets(args, targets, &installed)?;
            start(args, engine, &units, &mut out).await?;
        }
        CommandArgs::Stop { targets } => {
            let installed = engine.units().await?;
            let mut units = installed_targets(args, targets, &installed)?;
            units.reverse();
            for unit in units {
                let name = unit.unit_name(&args.prefix);
                engine.stop(&name).await?;
                out.push_str(&format!("{name}: stopped\n"));
            }
        }
        CommandArgs::Restart { targets } => {
            let installed = engine.units().await?;
            let units = installed_targets(args, targets, &installed)?;
            for unit in units.iter().rev() {
                engine.stop(&unit.unit_name(&args.prefix)).await?;
            }
            start(args, engine, &units, &mut out).await?;
        }
        CommandArgs::Status { targets } => {
            let installed = engine.units().await?;
            if targets.is_empty() {
                return Ok(output::units_table(&installed));
            }
            let units = installed_targets(args, targets, &installed)?;
            let mut shown = Vec::new();
            for unit in units {
                let name = unit.unit_name(&args.prefix);
                match installed.iter().find(|u| u.unit == name) {
                    Some(status) => shown.push(status.clone()),
                    None => shown.push(UnitStatus {
                        unit: name,
                        state: "not installed".into(),
                        detail: String::new(),
                        ports: Vec::new(),
                        host: "-".into(),
                    }),
                }
            }
            return Ok(output::units_table(&shown));
        }
        CommandArgs::List => return Ok(output::units_table(&engine.units().await?)),
        CommandArgs::Scale { target } => {
            let wanted = components::parse_scale(target)?;
            let installed = engine.units().await?;
            let routers = installed_routers(&args.prefix, &installed);
            let new: Vec<Unit> = (1..=wanted)
                .filter(|n| !routers.contains(n))
                .map(Unit::router)
                .collect();
            install(args, engine, &new, &mut out).await?;
            start(args, engine, &new, &mut out).await?;
            for n in routers.into_iter().filter(|n| *n > wanted) {
                let name = Unit::router(n).unit_name(&args.prefix);
                engine.uninstall(&name).await?;
                out.push_str(&format!("{name}: uninstalled\n"));
            }
        }
    }
    Ok(out)
}

fn random_key() -> CtlResult<String> {
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| CtlError(format!("generating a key: {e}")))?;
    Ok(hex::encode(bytes))
}

/// Reads a setting, writing `default()` first when it is missing (Deis v1's `mk`).
async fn setting_or_create(
    discovery: &DynDiscovery,
    component: &str,
    key: &str,
    default: impl FnOnce() -> CtlResult<String>,
) -> CtlResult<String> {
    let full = deis_core::discovery::keys::component_setting(component, key);
    let failed = |e: deis_core::Error| CtlError(format!("discovery: {e}"));
    if let Some(kv) = discovery.get(&full).await.map_err(failed)? {
        return Ok(kv.value);
    }
    let value = default()?;
    discovery.put(&full, &value, None).await.map_err(failed)?;
    Ok(value)
}

async fn optional_setting(
    discovery: &DynDiscovery,
    component: &str,
    key: &str,
) -> CtlResult<Option<String>> {
    let full = deis_core::discovery::keys::component_setting(component, key);
    Ok(discovery
        .get(&full)
        .await
        .map_err(|e| CtlError(format!("discovery: {e}")))?
        .map(|kv| kv.value))
}

async fn port_setting(discovery: &DynDiscovery, component: &str, default: u16) -> CtlResult<u16> {
    match optional_setting(discovery, component, "hostPort").await? {
        None => Ok(default),
        Some(text) => text.parse().map_err(|_| {
            CtlError(format!(
                "/deis/{component}/hostPort {text:?} is not a port number"
            ))
        }),
    }
}

/// The settings of the components, from discovery (keys created on first use).
async fn platform_settings(args: &Args) -> CtlResult<PlatformSettings> {
    let discovery = config::open(&args.discovery).await.map_err(|e| {
        CtlError(format!(
            "{e} (is the platform's etcd running? deisctl install etcd && deisctl start etcd)"
        ))
    })?;
    let topology = args.topology();
    let members: Vec<String> = topology
        .etcd_units()
        .iter()
        .map(|u| format!("{}:2379", u.container_name(&args.prefix)))
        .collect();
    let swarm = args.engine == EngineKind::Swarm;
    let registry_port = port_setting(&discovery, "registry", 5000).await?;
    let registry = match &args.registry {
        Some(registry) => Some(registry.clone()),
        None if topology.registry => Some(format!("127.0.0.1:{registry_port}")),
        None => None,
    };
    let (store, scheduler, database_password, postgres_dir) = if swarm {
        let password = setting_or_create(&discovery, "database", "password", random_key).await?;
        let postgres = PostgresFiles::installed()?;
        let p = &args.prefix;
        (
            Some(format!("postgres://deis:{password}@{p}-database:5432/deis")),
            Some(format!(
                "swarm:///var/run/docker.sock?network={p}-data&endpoints=overlay&owner={p}&prefix={p}-&runner={}&constraint=node.labels.deis.data==true{}",
                crate::engine::runner_tag(p),
                registry
                    .as_ref()
                    .map(|r| format!("&registry={r}"))
                    .unwrap_or_default()
            )),
            password,
            postgres.lib_dir.display().to_string(),
        )
    } else {
        (None, None, String::new(), String::new())
    };
    Ok(PlatformSettings {
        prefix: args.prefix.clone(),
        discovery: args
            .platform_discovery
            .clone()
            .unwrap_or_else(|| format!("etcd://{}", members.join(","))),
        etcd_port: args.etcd_port,
        etcd_members: topology.etcd_members,
        store,
        scheduler,
        database_password,
        postgres_dir,
        domain: optional_setting(&discovery, "platform", "domain").await?,
        registration: optional_setting(&discovery, "controller", "registrationMode").await?,
        builder_key: setting_or_create(&discovery, "controller", "builderKey", random_key).await?,
        logger_key: setting_or_create(&discovery, "logger", "authKey", random_key).await?,
        controller_port: port_setting(&discovery, "controller", 8000).await?,
        builder_port: port_setting(&discovery, "builder", 2222).await?,
        router_port: port_setting(&discovery, "router", 8080).await?,
        registry,
        registry_port,
    })
}

async fn install(
    args: &Args,
    engine: &dyn PlatformEngine,
    units: &[Unit],
    out: &mut String,
) -> CtlResult<()> {
    if units.is_empty() {
        return Ok(());
    }
    for note in engine.prepare().await? {
        out.push_str(&note);
        out.push('\n');
    }
    // etcd comes first and needs no settings: it is where they live.
    let etcd: Vec<Unit> = units
        .iter()
        .copied()
        .filter(|u| u.component == Component::Etcd)
        .collect();
    for unit in &etcd {
        let bare = PlatformSettings {
            prefix: args.prefix.clone(),
            discovery: String::new(),
            etcd_port: args.etcd_port,
            etcd_members: args.topology().etcd_members,
            domain: None,
            registration: None,
            builder_key: String::new(),
            logger_key: String::new(),
            controller_port: 0,
            builder_port: 0,
            router_port: 0,
            store: None,
            scheduler: None,
            database_password: String::new(),
            postgres_dir: String::new(),
            registry: None,
            registry_port: 0,
        };
        let spec = components::spec(*unit, &bare);
        report_install(engine.install(&spec).await?, &spec.unit_name, out);
    }
    // The other units' settings live in it: run it now.
    if !etcd.is_empty() && units.len() > etcd.len() {
        start(args, engine, &etcd, out).await?;
    }
    let mut settings: Option<PlatformSettings> = None;
    for unit in units.iter().filter(|u| u.component != Component::Etcd) {
        if settings.is_none() {
            settings = Some(platform_settings(args).await?);
        }
        let spec = components::spec(*unit, settings.as_ref().expect("just set"));
        report_install(engine.install(&spec).await?, &spec.unit_name, out);
    }
    Ok(())
}

fn report_install(created: bool, name: &str, out: &mut String) {
    if created {
        out.push_str(&format!("{name}: installed\n"));
    } else {
        out.push_str(&format!("{name}: already installed\n"));
    }
}

/// Starts units in order; each must be running (etcd: answering) before the next starts.
async fn start(
    args: &Args,
    engine: &dyn PlatformEngine,
    units: &[Unit],
    out: &mut String,
) -> CtlResult<()> {
    let mut index = 0;
    while index < units.len() {
        // The members of an etcd cluster start together: none answers without a quorum.
        let group: Vec<Unit> = if units[index].component == Component::Etcd {
            units[index..]
                .iter()
                .take_while(|u| u.component == Component::Etcd)
                .copied()
                .collect()
        } else {
            vec![units[index]]
        };
        index += group.len();
        for unit in &group {
            engine.start(&unit.unit_name(&args.prefix)).await?;
        }
        for unit in &group {
            wait_running(engine, &unit.unit_name(&args.prefix)).await?;
        }
        if group[0].component == Component::Etcd {
            wait_discovery(&args.discovery).await?;
        }
        for unit in &group {
            out.push_str(&format!("{}: started\n", unit.unit_name(&args.prefix)));
        }
    }
    Ok(())
}

/// Waits until the unit has run for a moment; fails at once when it exits.
async fn wait_running(engine: &dyn PlatformEngine, name: &str) -> CtlResult<()> {
    let limit = Duration::from_secs(if engine.name() == "swarm" { 90 } else { 30 });
    let deadline = Instant::now() + limit;
    let mut running_since: Option<Instant> = None;
    loop {
        let units = engine.units().await?;
        let state = units
            .iter()
            .find(|u| u.unit == name)
            .map(|u| u.state.clone())
            .unwrap_or_else(|| "not installed".into());
        match state.as_str() {
            "running" => {
                let since = *running_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= Duration::from_secs(1) {
                    return Ok(());
                }
            }
            "exited" | "dead" | "restarting" | "not installed" => {
                return Err(CtlError(format!(
                    "{name} did not stay up ({state}); see docker logs for its container"
                )))
            }
            _ => running_since = None,
        }
        if Instant::now() > deadline {
            return Err(CtlError(format!(
                "{name} did not start within {} s ({state})",
                limit.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn wait_discovery(url: &str) -> CtlResult<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reached = match config::open(url).await {
            Ok(discovery) => discovery
                .get("/deis/platform/domain")
                .await
                .map_err(|e| CtlError(e.to_string())),
            Err(e) => Err(e),
        };
        match reached {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => {
                return Err(CtlError(format!(
                    "the platform's etcd did not answer at {url}: {e}"
                )))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names_another_registry_instead_of_the_unit() {
        let own = Args::try_parse_from(["deisctl", "--engine", "swarm", "list"]).unwrap();
        assert!(own.topology().registry);
        let units = components::parse_targets(&["platform".into()], 1, own.topology()).unwrap();
        assert!(units.contains(&Unit::single(Component::Registry)));
        let other = Args::try_parse_from([
            "deisctl",
            "--engine",
            "swarm",
            "--registry",
            "registry.internal:5000",
            "list",
        ])
        .unwrap();
        assert!(!other.topology().registry);
        let units = components::parse_targets(&["platform".into()], 1, other.topology()).unwrap();
        assert!(!units.contains(&Unit::single(Component::Registry)));
        assert!(crate::config::check_registry("registry.internal:5000").is_ok());
        assert!(crate::config::check_registry("https://registry.internal").is_err());
    }
}
