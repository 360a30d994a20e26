//! The `--scheduler` URL: `local://` (the default: supervised processes on this host),
//! `docker://[socket path][?options]` (containers on one Docker Engine) and
//! `swarm://[socket path][?options]` (services on a Swarm manager).
//!
//! Options (query parameters):
//! - both: `runner=<image>` the stack image slugs run on (without it only image deploys
//!   run), `owner=<label value>` (`deis`), `prefix=<name prefix>`, `port=<PORT of routable
//!   types>` (5000);
//! - docker: `bind=<ip>` the address container ports are published on (127.0.0.1);
//! - swarm: `network=<overlay network>` (`deis`), `endpoints=host|overlay` (host: per-task
//!   host ports on the node address, for routers on the hosts; overlay: task addresses on
//!   the network, for routers that are containers on it), `endpoint_host=<host>` (host mode:
//!   the address put in endpoints instead of the node's), `constraint=<expr>` (repeatable:
//!   placement every app service gets, e.g. `node.labels.deis.data==true`),
//!   `registry=<host:port>` (slug images are pushed there and run from there).

use async_trait::async_trait;
use deis_api::platform::SchedulerFactory;
use deis_core::{DynScheduler, Result};
use deis_scheduler::{LogSink, SlugFetcher};
use std::sync::Arc;

/// A parsed `--scheduler` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchedulerChoice {
    /// Local processes.
    Local,
    /// A Docker Engine.
    #[cfg(feature = "docker")]
    Docker(DockerChoice),
    /// A Swarm manager.
    #[cfg(feature = "swarm")]
    Swarm(SwarmChoice),
}

/// `docker://` settings (a subset of `DockerConfig`, which is not `PartialEq`).
#[cfg(feature = "docker")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerChoice {
    socket: String,
    owner: String,
    prefix: String,
    port: u16,
    bind: String,
    runner: Option<String>,
}

/// `swarm://` settings.
#[cfg(feature = "swarm")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmChoice {
    socket: String,
    owner: String,
    prefix: String,
    port: u16,
    network: String,
    overlay: bool,
    endpoint_host: Option<String>,
    runner: Option<String>,
    placement: Vec<String>,
    registry: Option<String>,
}

/// The options common to both container schedulers, taken out of the query.
struct Common {
    socket: String,
    owner: String,
    prefix: String,
    port: u16,
    runner: Option<String>,
}

fn common(
    url: &url::Url,
    text: &str,
    extra: &[&str],
) -> std::result::Result<(Common, Vec<(String, String)>), String> {
    if url.host_str().is_some_and(|h| !h.is_empty()) {
        return Err(format!(
            "--scheduler {text}: give the engine's unix socket as a path ({}:///var/run/docker.sock), not a host",
            url.scheme()
        ));
    }
    let socket = match url.path() {
        "" | "/" => "/var/run/docker.sock".to_string(),
        path => path.to_string(),
    };
    let mut common = Common {
        socket,
        owner: "deis".into(),
        prefix: String::new(),
        port: 5000,
        runner: None,
    };
    let mut rest = Vec::new();
    for (key, value) in url.query_pairs() {
        let value = value.to_string();
        match key.as_ref() {
            "owner" if !value.is_empty() => common.owner = value,
            "prefix" => common.prefix = value,
            "runner" if !value.is_empty() => common.runner = Some(value),
            "port" => {
                common.port = value
                    .parse()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("--scheduler {text}: port={value} is not a port"))?
            }
            other if extra.contains(&other) => rest.push((other.to_string(), value)),
            other => {
                let mut known = vec!["owner", "prefix", "runner", "port"];
                known.extend_from_slice(extra);
                return Err(format!(
                    "--scheduler {text}: unknown or empty option {other:?} (known: {})",
                    known.join(", ")
                ));
            }
        }
    }
    Ok((common, rest))
}

impl SchedulerChoice {
    /// Parses a `--scheduler` URL; the error is one line naming the problem.
    pub fn parse(text: &str) -> std::result::Result<SchedulerChoice, String> {
        if matches!(text, "local" | "local://") {
            return Ok(SchedulerChoice::Local);
        }
        let url = url::Url::parse(text).map_err(|e| format!("--scheduler {text}: {e}"))?;
        match url.scheme() {
            "local" => Ok(SchedulerChoice::Local),
            #[cfg(feature = "docker")]
            "docker" => {
                let (c, rest) = common(&url, text, &["bind"])?;
                let mut bind = "127.0.0.1".to_string();
                for (key, value) in rest {
                    if key == "bind" {
                        value.parse::<std::net::IpAddr>().map_err(|_| {
                            format!("--scheduler {text}: bind={value} is not an IP address")
                        })?;
                        bind = value;
                    }
                }
                Ok(SchedulerChoice::Docker(DockerChoice {
                    socket: c.socket,
                    owner: c.owner,
                    prefix: c.prefix,
                    port: c.port,
                    bind,
                    runner: c.runner,
                }))
            }
            #[cfg(feature = "swarm")]
            "swarm" => {
                let (c, rest) = common(
                    &url,
                    text,
                    &[
                        "network",
                        "endpoints",
                        "endpoint_host",
                        "constraint",
                        "registry",
                    ],
                )?;
                let mut choice = SwarmChoice {
                    socket: c.socket,
                    owner: c.owner,
                    prefix: c.prefix,
                    port: c.port,
                    network: "deis".into(),
                    overlay: false,
                    endpoint_host: None,
                    runner: c.runner,
                    placement: Vec::new(),
                    registry: None,
                };
                for (key, value) in rest {
                    match key.as_str() {
                        "network" if !value.is_empty() => choice.network = value,
                        "endpoints" => {
                            choice.overlay = match value.as_str() {
                                "overlay" => true,
                                "host" => false,
                                _ => {
                                    return Err(format!(
                                "--scheduler {text}: endpoints={value}: expected host or overlay"
                            ))
                                }
                            }
                        }
                        "endpoint_host" if !value.is_empty() => choice.endpoint_host = Some(value),
                        "registry" if !value.is_empty() => {
                            deis_builder::check_registry(&value)
                                .map_err(|e| format!("--scheduler {text}: {e}"))?;
                            choice.registry = Some(value)
                        }
                        "constraint" if value.contains("==") || value.contains("!=") => {
                            choice.placement.push(value)
                        }
                        "constraint" => {
                            return Err(format!(
                                "--scheduler {text}: constraint={value}: expected <key>==<value> or <key>!=<value>"
                            ))
                        }
                        _ => return Err(format!("--scheduler {text}: {key} is empty")),
                    }
                }
                if choice.overlay && choice.endpoint_host.is_some() {
                    return Err(format!(
                        "--scheduler {text}: endpoint_host only applies to endpoints=host"
                    ));
                }
                Ok(SchedulerChoice::Swarm(choice))
            }
            other => Err(format!(
                "--scheduler {text}: unknown scheduler {other:?}; this deisd knows {}",
                known_schedulers()
            )),
        }
    }

    /// The factory that connects the chosen scheduler; `None` for local processes.
    pub fn factory(&self) -> Option<Arc<dyn SchedulerFactory>> {
        match self {
            SchedulerChoice::Local => None,
            #[cfg(feature = "docker")]
            SchedulerChoice::Docker(choice) => Some(Arc::new(choice.clone())),
            #[cfg(feature = "swarm")]
            SchedulerChoice::Swarm(choice) => Some(Arc::new(choice.clone())),
        }
    }
}

/// The schedulers compiled into this deisd, for messages.
fn known_schedulers() -> &'static str {
    if cfg!(feature = "swarm") {
        "local://, docker:// and swarm://"
    } else if cfg!(feature = "docker") {
        "local:// and docker:// (built without the swarm feature)"
    } else {
        "local:// only (built without the docker and swarm features)"
    }
}

#[cfg(feature = "docker")]
#[async_trait]
impl SchedulerFactory for DockerChoice {
    async fn connect(
        &self,
        sink: Arc<dyn LogSink>,
        slugs: Arc<dyn SlugFetcher>,
    ) -> Result<DynScheduler> {
        let config = deis_scheduler::DockerConfig {
            slug_fetcher: Some(slugs),
            socket: self.socket.clone(),
            owner: self.owner.clone(),
            name_prefix: self.prefix.clone(),
            container_port: self.port,
            bind_ip: self.bind.clone(),
            slug_runner: self.runner.clone(),
            ..deis_scheduler::DockerConfig::default()
        };
        Ok(Arc::new(
            deis_scheduler::DockerScheduler::connect_with_sink(config, sink).await?,
        ))
    }
}

#[cfg(feature = "swarm")]
#[async_trait]
impl SchedulerFactory for SwarmChoice {
    async fn connect(
        &self,
        sink: Arc<dyn LogSink>,
        slugs: Arc<dyn SlugFetcher>,
    ) -> Result<DynScheduler> {
        let config = deis_scheduler::SwarmConfig {
            slug_fetcher: Some(slugs),
            socket: self.socket.clone(),
            owner: self.owner.clone(),
            name_prefix: self.prefix.clone(),
            container_port: self.port,
            network: self.network.clone(),
            endpoints: if self.overlay {
                deis_scheduler::SwarmEndpoints::Overlay
            } else {
                deis_scheduler::SwarmEndpoints::HostPort
            },
            endpoint_host: self.endpoint_host.clone(),
            slug_runner: self.runner.clone(),
            placement: self.placement.clone(),
            registry: self.registry.clone(),
            ..deis_scheduler::SwarmConfig::default()
        };
        Ok(Arc::new(
            deis_scheduler::SwarmScheduler::connect_with_sink(config, sink).await?,
        ))
    }
}

#[cfg(all(test, feature = "swarm"))]
mod tests {
    use super::*;

    #[test]
    fn local_is_the_default_spelling() {
        assert_eq!(
            SchedulerChoice::parse("local://"),
            Ok(SchedulerChoice::Local)
        );
        assert_eq!(SchedulerChoice::parse("local"), Ok(SchedulerChoice::Local));
        assert!(SchedulerChoice::Local.factory().is_none());
    }

    #[test]
    fn docker_takes_a_socket_path_and_options() {
        let SchedulerChoice::Docker(d) = SchedulerChoice::parse("docker://").unwrap() else {
            panic!("not docker")
        };
        assert_eq!(d.socket, "/var/run/docker.sock");
        assert_eq!(d.bind, "127.0.0.1");
        assert_eq!(d.runner, None);
        let SchedulerChoice::Docker(d) =
            SchedulerChoice::parse("docker:///run/other.sock?runner=stack:1&bind=0.0.0.0&owner=t1")
                .unwrap()
        else {
            panic!("not docker")
        };
        assert_eq!(d.socket, "/run/other.sock");
        assert_eq!(d.runner.as_deref(), Some("stack:1"));
        assert_eq!(d.bind, "0.0.0.0");
        assert_eq!(d.owner, "t1");
    }

    #[test]
    fn swarm_takes_network_and_endpoint_mode() {
        let SchedulerChoice::Swarm(s) =
            SchedulerChoice::parse(
                "swarm://?network=deis-net&endpoints=overlay&runner=stack:1&constraint=node.labels.deis.data%3D%3Dtrue&registry=127.0.0.1:5000",
            )
                .unwrap()
        else {
            panic!("not swarm")
        };
        assert_eq!(s.socket, "/var/run/docker.sock");
        assert_eq!(s.network, "deis-net");
        assert!(s.overlay);
        assert_eq!(s.placement, ["node.labels.deis.data==true"]);
        assert_eq!(s.registry.as_deref(), Some("127.0.0.1:5000"));
        let SchedulerChoice::Swarm(s) =
            SchedulerChoice::parse("swarm:///var/run/docker.sock").unwrap()
        else {
            panic!("not swarm")
        };
        assert_eq!(s.network, "deis");
        assert!(!s.overlay);
    }

    #[test]
    fn bad_urls_are_one_line_errors() {
        for bad in [
            "kubernetes://",
            "docker://somehost:2375",
            "docker://?bind=nowhere",
            "docker://?network=x",
            "swarm://?endpoints=vip",
            "swarm://?port=0",
            "swarm://?constraint=anywhere",
            "swarm://?endpoints=overlay&endpoint_host=1.2.3.4",
            "swarm://?registry=http://127.0.0.1:5000",
            "not a url",
        ] {
            let error = SchedulerChoice::parse(bad).unwrap_err();
            assert!(error.starts_with("--scheduler "), "{bad}: {error}");
            assert_eq!(error.lines().count(), 1, "{bad}: {error}");
        }
    }
}
