//! The platform's components as Deis v1 named its units (`deis-controller`,
//! `deis-router@1`…), the order `platform` installs and starts them in, and what each one
//! runs: one image built from the project's binaries, a different command per component.
//!
//! A [`Topology`] says what `platform` means on an engine: on one Docker Engine one etcd
//! member and the controller's SQLite store in the data volume; on Swarm three etcd
//! members (`etcd@1`…`etcd@3`, one cluster), PostgreSQL (`database`) as the store and a
//! private Docker registry (`registry`, Debian's `docker-registry`) that app images are
//! pushed to so that every node can fetch them.

use crate::{CtlError, CtlResult};
use std::collections::BTreeMap;
use std::fmt;

/// A platform component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    /// An etcd member: the platform's discovery (Deis v1 ran etcd on every host); on Swarm
    /// three numbered members form one cluster.
    Etcd,
    /// PostgreSQL, the controller's store (Swarm topology).
    Database,
    /// The private Docker registry app images are pushed to (Swarm topology): Debian's
    /// `docker-registry`, storage on its own volume.
    Registry,
    /// The logger (`deisd --role logger`).
    Logger,
    /// The controller (`deisd --role controller`).
    Controller,
    /// The builder (`deisd --role builder`).
    Builder,
    /// A router of the mesh (`deisd --role router`), numbered from 1.
    Router,
}

impl Component {
    /// Every component, in start order.
    pub const ALL: [Component; 7] = [
        Component::Etcd,
        Component::Database,
        Component::Registry,
        Component::Logger,
        Component::Controller,
        Component::Builder,
        Component::Router,
    ];

    /// The component's name (`controller`).
    pub fn name(self) -> &'static str {
        match self {
            Component::Etcd => "etcd",
            Component::Database => "database",
            Component::Registry => "registry",
            Component::Logger => "logger",
            Component::Controller => "controller",
            Component::Builder => "builder",
            Component::Router => "router",
        }
    }

    fn parse(name: &str) -> Option<Component> {
        Component::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// One unit: a component and, for routers, its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Unit {
    /// The component.
    pub component: Component,
    /// The router's or etcd member's number (`router@2`, `etcd@3`); `None` for single
    /// components.
    pub number: Option<u32>,
}

impl Unit {
    /// A single component's unit.
    pub fn single(component: Component) -> Unit {
        Unit {
            component,
            number: None,
        }
    }

    /// Router number `n`.
    pub fn router(n: u32) -> Unit {
        Unit {
            component: Component::Router,
            number: Some(n),
        }
    }

    /// The unit name as Deis v1 showed it: `deis-controller`, `deis-router@1`, with the
    /// platform's prefix in place of `deis`.
    pub fn unit_name(&self, prefix: &str) -> String {
        match self.number {
            Some(n) => format!("{prefix}-{}@{n}", self.component.name()),
            None => format!("{prefix}-{}", self.component.name()),
        }
    }

    /// Etcd member `n` of a cluster.
    pub fn etcd_member(n: u32) -> Unit {
        Unit {
            component: Component::Etcd,
            number: Some(n),
        }
    }

    /// The container (or service) name, also its host name on the platform's network:
    /// Docker names cannot hold `@` (and Swarm service names no dots), so `deis-router-1`.
    pub fn container_name(&self, prefix: &str) -> String {
        match self.number {
            Some(n) => format!("{prefix}-{}-{n}", self.component.name()),
            None => format!("{prefix}-{}", self.component.name()),
        }
    }

    /// Parses a unit back from its unit name (`deis-router@2`).
    pub fn from_unit_name(prefix: &str, name: &str) -> Option<Unit> {
        let rest = name.strip_prefix(prefix)?.strip_prefix('-')?;
        let (component, number) = match rest.split_once('@') {
            Some((c, n)) => (c, Some(n.parse().ok()?)),
            None => (rest, None),
        };
        let component = Component::parse(component)?;
        if number.is_some() && !matches!(component, Component::Router | Component::Etcd) {
            return None;
        }
        if component == Component::Router && number.is_none() {
            return None;
        }
        Some(Unit { component, number })
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.number {
            Some(n) => write!(f, "{}@{n}", self.component.name()),
            None => f.write_str(self.component.name()),
        }
    }
}

/// The most routers a mesh may have (Deis v1 allowed 1–255).
pub const MAX_ROUTERS: u32 = 255;

/// What `platform` is made of on an engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Topology {
    /// etcd members: 1 is the unnumbered `etcd` unit, more are `etcd@1`…`etcd@N`.
    pub etcd_members: u32,
    /// Whether PostgreSQL (`database`) is the controller's store.
    pub database: bool,
    /// Whether the platform runs its own registry (`registry`) for app images.
    pub registry: bool,
}

impl Topology {
    /// One Docker Engine: one etcd member, SQLite in the data volume.
    pub const DOCKER: Topology = Topology {
        etcd_members: 1,
        database: false,
        registry: false,
    };
    /// Docker Swarm: three etcd members, PostgreSQL and a registry.
    pub const SWARM: Topology = Topology {
        etcd_members: 3,
        database: true,
        registry: true,
    };

    /// The etcd units.
    pub fn etcd_units(&self) -> Vec<Unit> {
        if self.etcd_members <= 1 {
            vec![Unit::single(Component::Etcd)]
        } else {
            (1..=self.etcd_members).map(Unit::etcd_member).collect()
        }
    }
}

/// Parses targets (`platform`, `controller`, `router@2`, `router` = every router of the
/// mesh, `etcd` = every member) into units in start order. `routers` is the mesh size
/// `platform` and `router` use.
pub fn parse_targets(targets: &[String], routers: u32, topology: Topology) -> CtlResult<Vec<Unit>> {
    let expected = if topology.database && topology.registry {
        "platform, etcd, etcd@N, database, registry, logger, controller, builder, router or router@N"
    } else if topology.database {
        "platform, etcd, etcd@N, database, logger, controller, builder, router or router@N"
    } else {
        "platform, etcd, logger, controller, builder, router or router@N"
    };
    if targets.is_empty() {
        return Err(CtlError(format!("name a target: {expected}")));
    }
    let mut units = Vec::new();
    for target in targets {
        match target.as_str() {
            "platform" => {
                units.extend(topology.etcd_units());
                if topology.database {
                    units.push(Unit::single(Component::Database));
                }
                if topology.registry {
                    units.push(Unit::single(Component::Registry));
                }
                units.extend(
                    [Component::Logger, Component::Controller, Component::Builder]
                        .map(Unit::single),
                );
                units.extend((1..=routers).map(Unit::router));
            }
            "router" | "router@*" => units.extend((1..=routers).map(Unit::router)),
            "etcd" | "etcd@*" => units.extend(topology.etcd_units()),
            "database" if !topology.database => {
                return Err(CtlError(
                    "database: PostgreSQL runs in the Swarm topology (--engine swarm); on one Docker Engine the controller keeps SQLite in the data volume".into(),
                ))
            }
            "registry" if !topology.registry => {
                return Err(CtlError(
                    "registry: the platform's own registry runs in the Swarm topology (--engine swarm) unless --registry names another one".into(),
                ))
            }
            other => {
                let unit = match other.split_once('@') {
                    Some(("router", n)) => match n.parse::<u32>() {
                        Ok(n) if (1..=MAX_ROUTERS).contains(&n) => Unit::router(n),
                        _ => {
                            return Err(CtlError(format!(
                                "{other}: a router number is from 1 to {MAX_ROUTERS}"
                            )))
                        }
                    },
                    Some(("etcd", n)) if topology.etcd_members > 1 => match n.parse::<u32>() {
                        Ok(n) if (1..=topology.etcd_members).contains(&n) => Unit::etcd_member(n),
                        _ => {
                            return Err(CtlError(format!(
                                "{other}: an etcd member number is from 1 to {}",
                                topology.etcd_members
                            )))
                        }
                    },
                    Some(_) => {
                        return Err(CtlError(format!(
                            "{other}: only routers{} are numbered",
                            if topology.etcd_members > 1 { " and etcd members" } else { "" }
                        )))
                    }
                    None => match Component::parse(other) {
                        Some(c) => Unit::single(c),
                        None => {
                            return Err(CtlError(format!(
                                "unknown target {other:?}; expected {expected}"
                            )))
                        }
                    },
                };
                units.push(unit);
            }
        }
    }
    units.sort();
    units.dedup();
    Ok(units)
}

/// Parses `scale router=N`.
pub fn parse_scale(arg: &str) -> CtlResult<u32> {
    let Some((component, count)) = arg.split_once('=') else {
        return Err(CtlError(format!("scale {arg}: expected router=N")));
    };
    if component != "router" {
        return Err(CtlError(format!(
            "scale {component}: only the router mesh scales (router=N)"
        )));
    }
    match count.parse::<u32>() {
        Ok(n) if (1..=MAX_ROUTERS).contains(&n) => Ok(n),
        _ => Err(CtlError(format!(
            "scale router={count}: N is from 1 to {MAX_ROUTERS}"
        ))),
    }
}

/// What the platform's components need to know: names, addresses, secrets and settings
/// read from discovery.
#[derive(Clone)]
pub struct PlatformSettings {
    /// The name prefix of units, containers, the network and the volume (`deis`).
    pub prefix: String,
    /// The discovery URL the components use, from inside the platform's network.
    pub discovery: String,
    /// The host port etcd's client port is published on (on 127.0.0.1); member N of a
    /// cluster publishes on this port + N - 1.
    pub etcd_port: u16,
    /// How many etcd members form the cluster.
    pub etcd_members: u32,
    /// The controller's store URL; `None` keeps SQLite in the data volume.
    pub store: Option<String>,
    /// The controller's scheduler URL; `None` runs apps as processes in the controller.
    /// A container scheduler gets the engine's socket mounted.
    pub scheduler: Option<String>,
    /// The database superuser's password (`database` unit).
    pub database_password: String,
    /// Debian's PostgreSQL directory inside the image (`/usr/lib/postgresql/<version>`).
    pub postgres_dir: String,
    /// `/deis/platform/domain`, if set.
    pub domain: Option<String>,
    /// `/deis/controller/registrationMode`, if set.
    pub registration: Option<String>,
    /// The builder key (`/deis/controller/builderKey`).
    pub builder_key: String,
    /// The logger key (`/deis/logger/authKey`).
    pub logger_key: String,
    /// Host ports (on 127.0.0.1) of the controller, builder and router@1 (router@N adds N-1).
    pub controller_port: u16,
    /// The builder's host port.
    pub builder_port: u16,
    /// router@1's host port.
    pub router_port: u16,
    /// The registry app images are pushed to (`127.0.0.1:<port>`), if any: the builder
    /// pushes Dockerfile builds there and the controller publishes `deis pull` images.
    pub registry: Option<String>,
    /// The `registry` unit's host port.
    pub registry_port: u16,
}

impl fmt::Debug for PlatformSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlatformSettings")
            .field("prefix", &self.prefix)
            .field("discovery", &self.discovery)
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

/// Where every component keeps its data inside the shared volume.
pub const DATA_MOUNT: &str = "/var/lib/deis";

/// A port published on the host's loopback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// The port inside the container.
    pub container: u16,
    /// The port on 127.0.0.1.
    pub host: u16,
}

/// Everything an engine needs to run one unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitSpec {
    /// The unit.
    pub unit: Unit,
    /// The unit name (`deis-router@1`).
    pub unit_name: String,
    /// The container or service name (`deis-router.1`).
    pub container_name: String,
    /// The command (the image has no entrypoint).
    pub command: Vec<String>,
    /// Environment variables (secrets among them).
    pub env: BTreeMap<String, String>,
    /// Published ports.
    pub ports: Vec<Published>,
    /// Whether the shared data volume is mounted at [`DATA_MOUNT`].
    pub data_volume: bool,
    /// A volume of the unit's own (`<prefix>-<component>`) and where it is mounted.
    pub own_volume: Option<String>,
    /// The user the command runs as (`uid:gid`); `None` is root.
    pub user: Option<String>,
    /// Whether the engine's socket is mounted at `/var/run/docker.sock` (the controller
    /// scheduling apps as sibling containers or services).
    pub docker_socket: bool,
}

/// Where the database keeps its cluster (its own volume).
pub const DATABASE_MOUNT: &str = "/var/lib/postgresql";

/// Where the registry keeps its configuration and its storage (its own volume).
pub const REGISTRY_MOUNT: &str = "/var/lib/registry";

/// The registry's configuration (docker/distribution's YAML): filesystem storage on its
/// volume, deletes allowed, HTTP on port 5000 (the platform reaches it through the port
/// published on the node's loopback, which Docker trusts without TLS).
pub fn registry_config() -> String {
    format!(
        "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {REGISTRY_MOUNT}/data\n  delete:\n    enabled: true\nhttp:\n  addr: 0.0.0.0:5000\n"
    )
}

/// The spec of `unit` under `settings`.
pub fn spec(unit: Unit, settings: &PlatformSettings) -> UnitSpec {
    let prefix = &settings.prefix;
    let deisd = |role: &str| vec!["/usr/local/bin/deisd".to_string(), format!("--role={role}")];
    let mut env = BTreeMap::new();
    let mut set = |k: &str, v: String| {
        env.insert(k.to_string(), v);
    };
    set("DEIS_LOG", "info".into());
    let (command, ports, data_volume) = match unit.component {
        Component::Etcd => {
            let me = unit.container_name(prefix);
            let members: Vec<Unit> = match unit.number {
                Some(_) => (1..=settings.etcd_members.max(1))
                    .map(Unit::etcd_member)
                    .collect(),
                None => vec![unit],
            };
            let cluster = members
                .iter()
                .map(|m| {
                    let name = m.container_name(prefix);
                    format!("{name}=http://{name}:2380")
                })
                .collect::<Vec<_>>()
                .join(",");
            let mut command: Vec<String> = [
                "/usr/bin/etcd",
                "--name",
                &me,
                "--data-dir",
                &format!("{DATA_MOUNT}/etcd"),
                "--listen-client-urls",
                "http://0.0.0.0:2379",
                "--advertise-client-urls",
                &format!("http://{me}:2379"),
                "--listen-peer-urls",
                "http://0.0.0.0:2380",
                "--initial-advertise-peer-urls",
                &format!("http://{me}:2380"),
                "--initial-cluster",
                &cluster,
            ]
            .map(String::from)
            .to_vec();
            if unit.number.is_some() {
                command.extend(
                    [
                        "--initial-cluster-token",
                        &format!("{prefix}-etcd"),
                        "--initial-cluster-state",
                        "new",
                    ]
                    .map(String::from),
                );
                // Each member keeps its own directory.
                command[4] = format!("{DATA_MOUNT}/{me}");
            }
            let offset = unit.number.unwrap_or(1).saturating_sub(1);
            let ports = vec![Published {
                container: 2379,
                host: settings
                    .etcd_port
                    .saturating_add(u16::try_from(offset).unwrap_or(u16::MAX)),
            }];
            (command, ports, true)
        }
        Component::Database => {
            set("TZ", "UTC".into());
            set("POSTGRES_PASSWORD", settings.database_password.clone());
            let bin = format!("{}/bin", settings.postgres_dir);
            let script = format!(
                r#"set -e
PGDATA={DATABASE_MOUNT}/data
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  umask 077
  printf '%s\n' "$POSTGRES_PASSWORD" > /tmp/pw
  {bin}/initdb -D "$PGDATA" -U deis --pwfile=/tmp/pw --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C >/dev/null
  rm -f /tmp/pw
  echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
  echo "CREATE DATABASE deis" | {bin}/postgres --single -D "$PGDATA" postgres >/dev/null
fi
exec {bin}/postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp"#
            );
            set("DEIS_DATABASE_SCRIPT", script);
            // The volume's root belongs to root until the first start hands it to postgres,
            // which refuses to run as root.
            let uid = crate::image::POSTGRES_UID;
            let command = format!(
                "chown {uid}:{uid} {DATABASE_MOUNT} && chmod 700 {DATABASE_MOUNT} && exec su -s /bin/sh postgres -c \"$DEIS_DATABASE_SCRIPT\""
            );
            (
                vec!["/bin/sh".into(), "-c".into(), command],
                Vec::new(),
                false,
            )
        }
        Component::Registry => {
            set("DEIS_REGISTRY_CONFIG", registry_config());
            let command = format!(
                "printf '%s' \"$DEIS_REGISTRY_CONFIG\" > {REGISTRY_MOUNT}/config.yml && exec /usr/bin/docker-registry serve {REGISTRY_MOUNT}/config.yml"
            );
            let ports = vec![Published {
                container: 5000,
                host: settings.registry_port,
            }];
            (vec!["/bin/sh".into(), "-c".into(), command], ports, false)
        }
        Component::Logger => {
            set("DEIS_DATA_DIR", format!("{DATA_MOUNT}/logger"));
            set("DEIS_LOGGER_ADDR", "0.0.0.0:8088".into());
            set("DEIS_SYSLOG_ADDR", "0.0.0.0:514".into());
            set("DEIS_LOGGER_KEY", settings.logger_key.clone());
            (deisd("logger"), Vec::new(), true)
        }
        Component::Controller => {
            set("DEIS_DATA_DIR", format!("{DATA_MOUNT}/controller"));
            set("DEIS_BLOB_STORE", format!("file://{DATA_MOUNT}/blobs"));
            set("DEIS_API_ADDR", "0.0.0.0:8000".into());
            set("DEIS_DISCOVERY", settings.discovery.clone());
            set(
                "DEIS_LOGGER_URL",
                format!(
                    "http://{}:8088",
                    Unit::single(Component::Logger).container_name(prefix)
                ),
            );
            set("DEIS_LOGGER_KEY", settings.logger_key.clone());
            set("DEIS_BUILDER_KEY", settings.builder_key.clone());
            if let Some(domain) = &settings.domain {
                set("DEIS_DOMAIN", domain.clone());
            }
            if let Some(mode) = &settings.registration {
                set("DEIS_REGISTRATION", mode.clone());
            }
            if let Some(store) = &settings.store {
                set("DEIS_STORE", store.clone());
            }
            if let Some(scheduler) = &settings.scheduler {
                set("DEIS_SCHEDULER", scheduler.clone());
            }
            if let Some(registry) = &settings.registry {
                set("DEIS_REGISTRY", registry.clone());
            }
            let ports = vec![Published {
                container: 8000,
                host: settings.controller_port,
            }];
            (deisd("controller"), ports, true)
        }
        Component::Builder => {
            set("DEIS_DATA_DIR", format!("{DATA_MOUNT}/builder"));
            set("DEIS_BLOB_STORE", format!("file://{DATA_MOUNT}/blobs"));
            set("DEIS_SSH_ADDR", "0.0.0.0:2222".into());
            set(
                "DEIS_CONTROLLER_URL",
                format!(
                    "http://{}:8000",
                    Unit::single(Component::Controller).container_name(prefix)
                ),
            );
            set("DEIS_BUILDER_KEY", settings.builder_key.clone());
            if settings.scheduler.is_some() {
                // Dockerfile apps are built on the engine the scheduler runs images from.
                set("DEIS_IMAGE_ENGINE", "/var/run/docker.sock".into());
            }
            if let Some(registry) = &settings.registry {
                set("DEIS_REGISTRY", registry.clone());
            }
            let ports = vec![Published {
                container: 2222,
                host: settings.builder_port,
            }];
            (deisd("builder"), ports, true)
        }
        Component::Router => {
            set("DEIS_ROUTER_ADDR", "0.0.0.0:80".into());
            set("DEIS_ROUTER_ADMIN_ADDR", "0.0.0.0:9090".into());
            set("DEIS_DISCOVERY", settings.discovery.clone());
            let n = unit.number.unwrap_or(1);
            let host = settings
                .router_port
                .saturating_add(u16::try_from(n - 1).unwrap_or(u16::MAX));
            (
                deisd("router"),
                vec![Published {
                    container: 80,
                    host,
                }],
                false,
            )
        }
    };
    let own_volume = match unit.component {
        Component::Database => Some(DATABASE_MOUNT.to_string()),
        Component::Registry => Some(REGISTRY_MOUNT.to_string()),
        _ => None,
    };
    UnitSpec {
        unit,
        unit_name: unit.unit_name(prefix),
        container_name: unit.container_name(prefix),
        command,
        env,
        ports,
        data_volume,
        own_volume,
        user: None,
        docker_socket: matches!(unit.component, Component::Controller | Component::Builder)
            && settings.scheduler.is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(v: &[&str]) -> CtlResult<Vec<String>> {
        targets_on(v, Topology::DOCKER)
    }

    fn targets_on(v: &[&str], topology: Topology) -> CtlResult<Vec<String>> {
        parse_targets(
            &v.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            2,
            topology,
        )
        .map(|units| units.iter().map(|u| u.unit_name("deis")).collect())
    }

    #[test]
    fn the_swarm_platform_has_three_etcd_members_and_a_database() {
        assert_eq!(
            targets_on(&["platform"], Topology::SWARM).unwrap(),
            [
                "deis-etcd@1",
                "deis-etcd@2",
                "deis-etcd@3",
                "deis-database",
                "deis-registry",
                "deis-logger",
                "deis-controller",
                "deis-builder",
                "deis-router@1",
                "deis-router@2"
            ]
        );
        assert!(targets(&["registry"]).is_err());
        assert_eq!(
            targets_on(&["etcd@2", "database"], Topology::SWARM).unwrap(),
            ["deis-etcd@2", "deis-database"]
        );
        assert!(targets_on(&["etcd@4"], Topology::SWARM).is_err());
        assert!(targets(&["database"]).is_err());
        assert!(targets(&["etcd@1"]).is_err());
        let settings = PlatformSettings {
            prefix: "deis".into(),
            discovery: "etcd://deis-etcd-1:2379".into(),
            etcd_port: 4001,
            etcd_members: 3,
            domain: None,
            registration: None,
            builder_key: "b".into(),
            logger_key: "l".into(),
            controller_port: 8000,
            builder_port: 2222,
            router_port: 8080,
            store: Some("postgres://deis:pw@deis-database:5432/deis".into()),
            scheduler: Some("swarm://?network=deis-data&endpoints=overlay".into()),
            database_password: "pw".into(),
            postgres_dir: "/usr/lib/postgresql/15".into(),
            registry: Some("127.0.0.1:5000".into()),
            registry_port: 5000,
        };
        let registry = spec(Unit::single(Component::Registry), &settings);
        assert_eq!(registry.own_volume.as_deref(), Some(REGISTRY_MOUNT));
        assert_eq!(registry.ports[0].container, 5000);
        assert!(registry.command[2].contains("docker-registry serve"));
        assert!(
            registry.env["DEIS_REGISTRY_CONFIG"].contains("rootdirectory: /var/lib/registry/data")
        );
        let etcd = spec(Unit::etcd_member(2), &settings);
        let command = etcd.command.join(" ");
        assert!(
            command.contains("--initial-cluster deis-etcd-1=http://deis-etcd-1:2380,deis-etcd-2=http://deis-etcd-2:2380,deis-etcd-3=http://deis-etcd-3:2380"),
            "{command}"
        );
        assert!(
            command.contains("--data-dir /var/lib/deis/deis-etcd-2"),
            "{command}"
        );
        assert_eq!(etcd.ports[0].host, 4002);
        let controller = spec(Unit::single(Component::Controller), &settings);
        assert!(controller.docker_socket);
        let builder = spec(Unit::single(Component::Builder), &settings);
        assert!(builder.docker_socket);
        assert_eq!(builder.env["DEIS_REGISTRY"], "127.0.0.1:5000");
        assert_eq!(controller.env["DEIS_REGISTRY"], "127.0.0.1:5000");
        assert_eq!(builder.env["DEIS_IMAGE_ENGINE"], "/var/run/docker.sock");
        assert_eq!(
            controller.env["DEIS_BLOB_STORE"],
            builder.env["DEIS_BLOB_STORE"]
        );
        assert_eq!(
            controller.env["DEIS_STORE"],
            settings.store.clone().unwrap()
        );
        let database = spec(Unit::single(Component::Database), &settings);
        assert_eq!(database.own_volume.as_deref(), Some(DATABASE_MOUNT));
        assert!(database.command[2].contains("su -s /bin/sh postgres"));
        assert!(database.env["DEIS_DATABASE_SCRIPT"].contains("/usr/lib/postgresql/15/bin/initdb"));
    }

    #[test]
    fn targets_expand_in_start_order() {
        assert_eq!(
            targets(&["platform"]).unwrap(),
            [
                "deis-etcd",
                "deis-logger",
                "deis-controller",
                "deis-builder",
                "deis-router@1",
                "deis-router@2"
            ]
        );
        assert_eq!(
            targets(&["router@3", "controller"]).unwrap(),
            ["deis-controller", "deis-router@3"]
        );
        assert!(targets(&["router@0"]).is_err());
        assert!(targets(&["controller@2"]).is_err());
        assert!(targets(&["database"]).is_err());
        assert!(targets(&[]).is_err());
    }

    #[test]
    fn unit_names_round_trip() {
        for unit in [Unit::router(7), Unit::single(Component::Controller)] {
            assert_eq!(
                Unit::from_unit_name("deis", &unit.unit_name("deis")),
                Some(unit)
            );
        }
        assert_eq!(Unit::router(2).container_name("deis"), "deis-router-2");
        assert_eq!(
            Unit::from_unit_name("deis", "deis-etcd@3"),
            Some(Unit::etcd_member(3))
        );
        assert_eq!(Unit::from_unit_name("deis", "deis-router"), None);
    }

    #[test]
    fn scale_takes_routers_only() {
        assert_eq!(parse_scale("router=3").unwrap(), 3);
        assert!(parse_scale("controller=2").is_err());
        assert!(parse_scale("router=0").is_err());
        assert!(parse_scale("router").is_err());
    }
}
