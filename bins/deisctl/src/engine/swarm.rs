//! [`SwarmEngine`]: units as Docker Swarm services, placed by node labels as Deis v1's
//! topologies describe.
//!
//! - **Planes**: a node carries `deis.control=true` (etcd aside: logger, database,
//!   controller, builder), `deis.etcd=true`, `deis.router=true` (the router mesh) and/or
//!   `deis.data=true` (apps). Every unit's service is constrained to its plane; apps are
//!   constrained to the data plane by the controller's scheduler. When no node carries any
//!   of these labels, `install` labels every node with all four: Deis v1's *small*
//!   topology (everything on every node). Label nodes yourself for the *large* one (planes
//!   and etcd isolated): `docker node update --label-add deis.router=true <node>`.
//! - **Services** are named like the containers (`deis-controller`, `deis-router-1`,
//!   `deis-etcd-2`), labelled `io.deis.platform`/`io.deis.unit`/`io.deis.component`, and
//!   joined to the attachable overlay network `<prefix>` under their name; their endpoint
//!   mode is DNS round robin (a VIP needs IPVS, which this kind of host may lack). Ports
//!   an operator needs (controller API, builder SSH, routers, etcd clients) are published in
//!   host mode on every node that runs the task.
//! - **Networks**: with one engine there is one host, so the planes are kept apart by
//!   network instead, as separate hosts would be: four attachable overlays,
//!   `<prefix>-control` (database, registry, logger, controller, builder), `<prefix>-etcd`
//!   (the members, and their clients: controller and routers), `<prefix>-router` (the
//!   router mesh) and `<prefix>-data` (apps, which the controller's scheduler attaches
//!   there, and the routers that serve them). An app reaches neither PostgreSQL nor etcd;
//!   a router reaches etcd and the apps but not the control plane.
//! - **Routers** are global services: one task per router-mesh node. `router@2` is a second
//!   mesh (another host port), which is how one node shows a router surviving another.
//! - **Install** creates a service at zero replicas (global ones constrained away with a
//!   `node.labels.io.deis.stopped==<unit>` no node has); **start** scales it to one (lifts
//!   the constraint), **stop** back to zero; **uninstall** removes it.
//! - Data: the shared volume `<prefix>-data` (etcd members, logger, controller and builder:
//!   the builder hands the controller a slug path, so those two must share a node until
//!   slugs live in blob storage), the database's own `<prefix>-database` and the registry's
//!   `<prefix>-registry`. Swarm volumes are per node: on several nodes, pin the control
//!   plane to one node.
//! - The **registry** (`docker-registry` from the image, control plane) publishes its port
//!   in host mode; app images are named `127.0.0.1:<port>/<app>:<tag>` (Docker trusts
//!   loopback registries without TLS), pushed by the builder (Dockerfile builds, through
//!   the engine's socket) and the controller (`deis pull`). A node other than the
//!   registry's reaches `127.0.0.1:<port>` only through Swarm's ingress routing mesh
//!   (which needs IPVS, absent on hosts like the CI machine) or a registry of its own
//!   in front of shared storage; `--registry host:port` points the platform at such a
//!   registry instead of running one.

use super::docker::{
    build_platform_image, failed, status_code, LABEL_COMPONENT, LABEL_PLATFORM, LABEL_UNIT,
};
use super::{PlatformEngine, UnitStatus};
use crate::components::{Component, UnitSpec, DATA_MOUNT};
use crate::image::ImageSource;
use crate::{CtlError, CtlResult};
use async_trait::async_trait;
use bollard::models::{
    EndpointPortConfig, EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum,
    EndpointSpec, EndpointSpecModeEnum, LocalNodeState, Mount, MountType, NetworkAttachmentConfig,
    NetworkCreateRequest, NodeSpec, Service, ServiceSpec, ServiceSpecMode,
    ServiceSpecModeReplicated, TaskSpec, TaskSpecContainerSpec, TaskSpecPlacement,
    TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum, TaskState, VolumeCreateRequest,
};
use bollard::query_parameters::{
    ListNodesOptions, ListServicesOptionsBuilder, ListTasksOptionsBuilder,
    RemoveImageOptionsBuilder, UpdateNodeOptionsBuilder, UpdateServiceOptionsBuilder,
};
use bollard::Docker;
use std::collections::HashMap;

/// The planes' overlay networks, `<prefix>-<plane>`.
pub const NETWORKS: [&str; 4] = ["control", "etcd", "router", "data"];

/// The planes' networks a component is attached to: only those it talks on.
pub fn networks_of(component: Component) -> &'static [&'static str] {
    match component {
        Component::Etcd => &["etcd"],
        Component::Database | Component::Registry | Component::Logger | Component::Builder => {
            &["control"]
        }
        Component::Controller => &["control", "etcd"],
        Component::Router => &["router", "etcd", "data"],
    }
}

/// The network of `plane` for the platform `prefix`.
pub fn network_name(prefix: &str, plane: &str) -> String {
    format!("{prefix}-{plane}")
}

/// The slug runner image of the platform `prefix`.
pub fn runner_tag(prefix: &str) -> String {
    format!("{prefix}-runner:{}", env!("CARGO_PKG_VERSION"))
}

/// The node labels of the planes.
pub const PLANE_LABELS: [&str; 4] = ["deis.control", "deis.etcd", "deis.router", "deis.data"];

/// The placement constraint that keeps a stopped global service off every node.
fn stopped_constraint(unit: &str) -> String {
    // Constraint values take no `@`.
    format!("node.labels.io.deis.stopped=={}", unit.replace('@', "-"))
}

/// The plane label a component runs on.
pub fn plane_of(component: Component) -> &'static str {
    match component {
        Component::Etcd => "deis.etcd",
        Component::Router => "deis.router",
        Component::Database
        | Component::Registry
        | Component::Logger
        | Component::Controller
        | Component::Builder => "deis.control",
    }
}

/// The platform's components as services of a Swarm.
#[derive(Debug, Clone)]
pub struct SwarmEngine {
    docker: Docker,
    prefix: String,
    image: ImageSource,
    socket: String,
}

impl SwarmEngine {
    /// Connects to the Swarm manager at the unix socket `socket`; every name starts with
    /// `prefix` and the units run the image `image` describes.
    pub async fn connect(socket: &str, prefix: &str, image: ImageSource) -> CtlResult<Self> {
        let docker = Docker::connect_with_unix(socket, 120, bollard::API_DEFAULT_VERSION)
            .map_err(failed("connecting"))?;
        let info = docker
            .info()
            .await
            .map_err(|e| CtlError(format!("docker at {socket}: {e}")))?;
        let swarm = info.swarm.unwrap_or_default();
        if swarm.local_node_state != Some(LocalNodeState::ACTIVE)
            || swarm.control_available != Some(true)
        {
            return Err(CtlError(format!(
                "the Docker Engine at {socket} is not a Swarm manager; run `docker swarm init` or use --engine docker"
            )));
        }
        Ok(SwarmEngine {
            docker,
            prefix: prefix.to_string(),
            image,
            socket: socket.to_string(),
        })
    }

    /// The overlay networks' names.
    pub fn networks(&self) -> Vec<String> {
        NETWORKS
            .iter()
            .map(|plane| network_name(&self.prefix, plane))
            .collect()
    }

    /// The shared data volume's name.
    pub fn volume(&self) -> String {
        format!("{}-data", self.prefix)
    }

    /// The image's tag.
    pub fn image_tag(&self) -> String {
        format!("{}-platform:{}", self.prefix, env!("CARGO_PKG_VERSION"))
    }

    /// The slug runner's tag (busybox and curl: what slug apps run on).
    pub fn runner_tag(&self) -> String {
        runner_tag(&self.prefix)
    }

    async fn services(&self) -> CtlResult<Vec<Service>> {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("{LABEL_PLATFORM}={}", self.prefix)],
        )]);
        let options = ListServicesOptionsBuilder::new().filters(&filters).build();
        self.docker
            .list_services(Some(options))
            .await
            .map_err(failed("listing services"))
    }

    async fn service_of(&self, unit: &str) -> CtlResult<Option<Service>> {
        Ok(self
            .services()
            .await?
            .into_iter()
            .find(|s| unit_label(s) == Some(unit)))
    }

    /// Labels every node with every plane when no node has any plane label yet (the small
    /// topology); returns the nodes labelled.
    pub async fn label_nodes_when_unlabelled(&self) -> CtlResult<Vec<String>> {
        let nodes = self
            .docker
            .list_nodes(None::<ListNodesOptions>)
            .await
            .map_err(failed("listing nodes"))?;
        let labelled = nodes.iter().any(|n| {
            n.spec
                .as_ref()
                .and_then(|s| s.labels.as_ref())
                .is_some_and(|l| PLANE_LABELS.iter().any(|p| l.contains_key(*p)))
        });
        if labelled {
            return Ok(Vec::new());
        }
        let mut done = Vec::new();
        for node in nodes {
            let (Some(id), Some(version), Some(spec)) = (
                node.id.clone(),
                node.version.and_then(|v| v.index),
                node.spec,
            ) else {
                continue;
            };
            let mut labels = spec.labels.clone().unwrap_or_default();
            for plane in PLANE_LABELS {
                labels.insert(plane.to_string(), "true".into());
            }
            let options = UpdateNodeOptionsBuilder::new()
                .version(i64::try_from(version).unwrap_or(i64::MAX))
                .build();
            self.docker
                .update_node(
                    &id,
                    NodeSpec {
                        labels: Some(labels),
                        ..spec
                    },
                    options,
                )
                .await
                .map_err(failed("labelling a node"))?;
            done.push(
                node.description
                    .and_then(|d| d.hostname)
                    .unwrap_or_else(|| id.clone()),
            );
        }
        Ok(done)
    }

    fn service_spec(&self, spec: &UnitSpec) -> ServiceSpec {
        service_spec(&self.prefix, &self.socket, spec)
    }

    /// Changes a service's spec: `running` scales a replicated one to 1 (0 when not), or
    /// lifts (sets) the stopped constraint of a global one.
    async fn set_running(&self, unit: &str, running: bool) -> CtlResult<()> {
        let Some(service) = self.service_of(unit).await? else {
            return Err(CtlError(format!("{unit} is not installed")));
        };
        let id = service.id.clone().unwrap_or_default();
        let version = service
            .version
            .as_ref()
            .and_then(|v| v.index)
            .unwrap_or_default();
        let mut spec = service.spec.unwrap_or_default();
        let global = spec.mode.as_ref().is_some_and(|m| m.global.is_some());
        if global {
            let stopped = stopped_constraint(unit);
            let placement = spec
                .task_template
                .get_or_insert_with(Default::default)
                .placement
                .get_or_insert_with(Default::default);
            let constraints = placement.constraints.get_or_insert_with(Vec::new);
            let has = constraints.contains(&stopped);
            if has != running {
                return Ok(());
            }
            if running {
                constraints.retain(|c| *c != stopped);
            } else {
                constraints.push(stopped);
            }
        } else {
            let replicas = spec
                .mode
                .as_ref()
                .and_then(|m| m.replicated.as_ref())
                .and_then(|r| r.replicas)
                .unwrap_or(0);
            let wanted = i64::from(running);
            if replicas == wanted {
                return Ok(());
            }
            spec.mode = Some(ServiceSpecMode {
                replicated: Some(ServiceSpecModeReplicated {
                    replicas: Some(wanted),
                }),
                ..Default::default()
            });
        }
        let options = UpdateServiceOptionsBuilder::new()
            .version(i32::try_from(version).unwrap_or(i32::MAX))
            .build();
        self.docker
            .update_service(&id, spec, options, None)
            .await
            .map_err(failed(&format!(
                "{} {unit}",
                if running { "starting" } else { "stopping" }
            )))?;
        Ok(())
    }
}

/// The service of `spec` for the platform `prefix` (`socket` is the engine's socket on the
/// nodes, mounted into the controller).
fn service_spec(prefix: &str, socket: &str, spec: &UnitSpec) -> ServiceSpec {
    let global = spec.unit.component == Component::Router;
    let labels = HashMap::from([
        (LABEL_PLATFORM.to_string(), prefix.to_string()),
        (LABEL_UNIT.to_string(), spec.unit_name.clone()),
        (
            LABEL_COMPONENT.to_string(),
            spec.unit.component.name().to_string(),
        ),
    ]);
    let mut mounts = Vec::new();
    if spec.data_volume {
        mounts.push(Mount {
            target: Some(DATA_MOUNT.into()),
            source: Some(format!("{prefix}-data")),
            typ: Some(MountType::VOLUME),
            ..Default::default()
        });
    }
    if let Some(target) = &spec.own_volume {
        mounts.push(Mount {
            target: Some(target.clone()),
            source: Some(format!("{}-{}", prefix, spec.unit.component.name())),
            typ: Some(MountType::VOLUME),
            ..Default::default()
        });
    }
    if spec.docker_socket {
        mounts.push(Mount {
            target: Some("/var/run/docker.sock".into()),
            source: Some(socket.to_string()),
            typ: Some(MountType::BIND),
            ..Default::default()
        });
    }
    let mut constraints = vec![format!(
        "node.labels.{}==true",
        plane_of(spec.unit.component)
    )];
    if global {
        constraints.push(stopped_constraint(&spec.unit_name));
    }
    let ports: Vec<EndpointPortConfig> = spec
        .ports
        .iter()
        .map(|p| EndpointPortConfig {
            protocol: Some(EndpointPortConfigProtocolEnum::TCP),
            target_port: Some(i64::from(p.container)),
            published_port: Some(i64::from(p.host)),
            publish_mode: Some(EndpointPortConfigPublishModeEnum::HOST),
            ..Default::default()
        })
        .collect();
    ServiceSpec {
        name: Some(spec.container_name.clone()),
        labels: Some(labels.clone()),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(format!("{prefix}-platform:{}", env!("CARGO_PKG_VERSION"))),
                command: Some(spec.command.clone()),
                env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
                labels: Some(labels),
                hostname: Some(spec.container_name.clone()),
                user: spec.user.clone(),
                mounts: (!mounts.is_empty()).then_some(mounts),
                init: Some(true),
                stop_grace_period: Some(15_000_000_000),
                ..Default::default()
            }),
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(TaskSpecRestartPolicyConditionEnum::ANY),
                delay: Some(1_000_000_000),
                max_attempts: Some(0),
                window: None,
            }),
            placement: Some(TaskSpecPlacement {
                constraints: Some(constraints),
                ..Default::default()
            }),
            networks: Some(
                networks_of(spec.unit.component)
                    .iter()
                    .map(|plane| NetworkAttachmentConfig {
                        target: Some(network_name(prefix, plane)),
                        aliases: Some(vec![spec.container_name.clone()]),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        mode: Some(if global {
            ServiceSpecMode {
                global: Some(HashMap::new()),
                ..Default::default()
            }
        } else {
            ServiceSpecMode {
                replicated: Some(ServiceSpecModeReplicated { replicas: Some(0) }),
                ..Default::default()
            }
        }),
        endpoint_spec: Some(EndpointSpec {
            mode: Some(EndpointSpecModeEnum::DNSRR),
            ports: (!ports.is_empty()).then_some(ports),
        }),
        ..Default::default()
    }
}

fn unit_label(service: &Service) -> Option<&str> {
    service
        .spec
        .as_ref()?
        .labels
        .as_ref()?
        .get(LABEL_UNIT)
        .map(String::as_str)
}

#[async_trait]
impl PlatformEngine for SwarmEngine {
    fn name(&self) -> &'static str {
        "swarm"
    }

    async fn prepare(&self) -> CtlResult<Vec<String>> {
        build_platform_image(&self.docker, &self.image_tag(), &self.image, &self.prefix).await?;
        build_platform_image(
            &self.docker,
            &self.runner_tag(),
            &self.image.runner(),
            &self.prefix,
        )
        .await?;
        let notes = self
            .label_nodes_when_unlabelled()
            .await?
            .into_iter()
            .map(|node| {
                format!(
                    "node {node}: labelled {} (small topology: no node had a plane label)",
                    PLANE_LABELS.join("=true, ") + "=true"
                )
            })
            .collect();
        for network in self.networks() {
            match self
                .docker
                .inspect_network(
                    &network,
                    None::<bollard::query_parameters::InspectNetworkOptions>,
                )
                .await
            {
                Ok(found) => {
                    if found.driver.as_deref() != Some("overlay") {
                        return Err(CtlError(format!(
                            "network {network} exists but is not an overlay network; remove it or use another --prefix"
                        )));
                    }
                }
                Err(_) => {
                    let labels = HashMap::from([(LABEL_PLATFORM.to_string(), self.prefix.clone())]);
                    let created = self
                        .docker
                        .create_network(NetworkCreateRequest {
                            name: network.clone(),
                            driver: Some("overlay".into()),
                            attachable: Some(true),
                            labels: Some(labels),
                            ..Default::default()
                        })
                        .await;
                    if let Err(e) = created {
                        if status_code(&e) != Some(409) {
                            return Err(failed("creating a network")(e));
                        }
                    }
                }
            }
        }
        for volume in [
            self.volume(),
            format!("{}-database", self.prefix),
            format!("{}-registry", self.prefix),
        ] {
            self.docker
                .create_volume(VolumeCreateRequest {
                    name: Some(volume),
                    labels: Some(HashMap::from([(
                        LABEL_PLATFORM.to_string(),
                        self.prefix.clone(),
                    )])),
                    ..Default::default()
                })
                .await
                .map_err(failed("creating a volume"))?;
        }
        Ok(notes)
    }

    async fn install(&self, spec: &UnitSpec) -> CtlResult<bool> {
        if self.service_of(&spec.unit_name).await?.is_some() {
            return Ok(false);
        }
        self.docker
            .create_service(self.service_spec(spec), None)
            .await
            .map_err(failed(&format!("creating {}", spec.unit_name)))?;
        Ok(true)
    }

    async fn start(&self, unit: &str) -> CtlResult<()> {
        self.set_running(unit, true).await
    }

    async fn stop(&self, unit: &str) -> CtlResult<()> {
        self.set_running(unit, false).await
    }

    async fn uninstall(&self, unit: &str) -> CtlResult<bool> {
        let Some(service) = self.service_of(unit).await? else {
            return Ok(false);
        };
        let id = service.id.unwrap_or_default();
        self.docker
            .delete_service(&id)
            .await
            .map_err(failed(&format!("removing {unit}")))?;
        Ok(true)
    }

    async fn units(&self) -> CtlResult<Vec<UnitStatus>> {
        let services = self.services().await?;
        let nodes: HashMap<String, String> = self
            .docker
            .list_nodes(None::<ListNodesOptions>)
            .await
            .map_err(failed("listing nodes"))?
            .into_iter()
            .filter_map(|n| Some((n.id?, n.description?.hostname?)))
            .collect();
        // Service specs name their networks by id once created.
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("{LABEL_PLATFORM}={}", self.prefix)],
        )]);
        let network_names: HashMap<String, String> = self
            .docker
            .list_networks(Some(
                bollard::query_parameters::ListNetworksOptionsBuilder::new()
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(failed("listing networks"))?
            .into_iter()
            .filter_map(|n| Some((n.id?, n.name?)))
            .collect();
        let mut units = Vec::new();
        for service in services {
            let Some(unit) = unit_label(&service).map(String::from) else {
                continue;
            };
            let id = service.id.clone().unwrap_or_default();
            let filters = HashMap::from([
                ("service".to_string(), vec![id.clone()]),
                ("desired-state".to_string(), vec!["running".to_string()]),
            ]);
            let tasks = self
                .docker
                .list_tasks(Some(
                    ListTasksOptionsBuilder::new().filters(&filters).build(),
                ))
                .await
                .map_err(failed("listing tasks"))?;
            let spec = service.spec.clone().unwrap_or_default();
            let global = spec.mode.as_ref().is_some_and(|m| m.global.is_some());
            let constraints: Vec<String> = spec
                .task_template
                .as_ref()
                .and_then(|t| t.placement.as_ref())
                .and_then(|p| p.constraints.clone())
                .unwrap_or_default();
            let stopped = if global {
                constraints.contains(&stopped_constraint(&unit))
            } else {
                spec.mode
                    .as_ref()
                    .and_then(|m| m.replicated.as_ref())
                    .and_then(|r| r.replicas)
                    .unwrap_or(0)
                    == 0
            };
            let running: Vec<_> = tasks
                .iter()
                .filter(|t| t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING))
                .collect();
            let state = if stopped {
                if tasks.is_empty() {
                    "stopped"
                } else {
                    "stopping"
                }
            } else if !running.is_empty() && running.len() == tasks.len() {
                "running"
            } else {
                "starting"
            };
            let mut hosts: Vec<String> = running
                .iter()
                .filter_map(|t| t.node_id.as_ref())
                .map(|n| nodes.get(n).cloned().unwrap_or_else(|| n.clone()))
                .collect();
            hosts.sort();
            hosts.dedup();
            let mut ports: Vec<String> = spec
                .endpoint_spec
                .as_ref()
                .and_then(|e| e.ports.clone())
                .unwrap_or_default()
                .into_iter()
                .filter_map(|p| Some(format!("*:{}->{}/tcp", p.published_port?, p.target_port?)))
                .collect();
            ports.sort();
            let placement: Vec<&String> = constraints
                .iter()
                .filter(|c| !c.starts_with("node.labels.io.deis.stopped"))
                .collect();
            let networks: Vec<String> = spec
                .task_template
                .as_ref()
                .and_then(|t| t.networks.as_ref())
                .map(|n| {
                    n.iter()
                        .filter_map(|a| a.target.clone())
                        .map(|t| network_names.get(&t).cloned().unwrap_or(t))
                        .map(|t| {
                            t.strip_prefix(&format!("{}-", self.prefix))
                                .map(String::from)
                                .unwrap_or(t)
                        })
                        .collect()
                })
                .unwrap_or_default();
            let detail = format!(
                "{} {}/{} tasks, placement {}, networks {}",
                if global { "global" } else { "replicated" },
                running.len(),
                tasks.len(),
                placement
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(" && "),
                networks.join(",")
            );
            units.push(UnitStatus {
                unit,
                state: state.to_string(),
                detail,
                ports,
                host: if hosts.is_empty() {
                    "-".into()
                } else {
                    hosts.join(",")
                },
            });
        }
        units.sort_by(|a, b| a.unit.cmp(&b.unit));
        Ok(units)
    }

    async fn remove_shared(&self) -> CtlResult<()> {
        if !self.units().await?.is_empty() {
            return Ok(());
        }
        // Tasks stop after their services are removed; the networks go once they did.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        for network in self.networks() {
            loop {
                match self.docker.remove_network(&network).await {
                    Ok(()) => break,
                    Err(e) if status_code(&e) == Some(404) => break,
                    Err(e) if std::time::Instant::now() > deadline => {
                        return Err(failed(&format!("removing the network {network}"))(e))
                    }
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(500)).await,
                }
            }
        }
        for tag in [self.image_tag(), self.runner_tag()] {
            let options = RemoveImageOptionsBuilder::new().force(true).build();
            if let Err(e) = self.docker.remove_image(&tag, Some(options), None).await {
                if !matches!(status_code(&e), Some(404) | Some(409)) {
                    return Err(failed("removing the image")(e));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::{spec, PlatformSettings, Unit};

    fn settings() -> PlatformSettings {
        PlatformSettings {
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
        }
    }

    fn constraints(service: &ServiceSpec) -> Vec<String> {
        service
            .task_template
            .as_ref()
            .and_then(|t| t.placement.as_ref())
            .and_then(|p| p.constraints.clone())
            .unwrap_or_default()
    }

    #[test]
    fn every_unit_is_placed_on_its_plane() {
        for (unit, plane) in [
            (Unit::etcd_member(1), "node.labels.deis.etcd==true"),
            (
                Unit::single(Component::Database),
                "node.labels.deis.control==true",
            ),
            (
                Unit::single(Component::Controller),
                "node.labels.deis.control==true",
            ),
            (Unit::router(1), "node.labels.deis.router==true"),
        ] {
            let service = service_spec("deis", "/var/run/docker.sock", &spec(unit, &settings()));
            assert_eq!(constraints(&service)[0], plane, "{unit}");
            assert_eq!(
                service.endpoint_spec.as_ref().unwrap().mode,
                Some(EndpointSpecModeEnum::DNSRR)
            );
        }
    }

    fn networks(service: &ServiceSpec) -> Vec<String> {
        service
            .task_template
            .as_ref()
            .and_then(|t| t.networks.as_ref())
            .map(|n| n.iter().filter_map(|a| a.target.clone()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn each_unit_joins_only_the_networks_it_talks_on() {
        let on = |unit| {
            networks(&service_spec(
                "deis",
                "/var/run/docker.sock",
                &spec(unit, &settings()),
            ))
        };
        assert_eq!(on(Unit::etcd_member(1)), ["deis-etcd"]);
        assert_eq!(on(Unit::single(Component::Database)), ["deis-control"]);
        assert_eq!(on(Unit::single(Component::Registry)), ["deis-control"]);
        assert_eq!(on(Unit::single(Component::Builder)), ["deis-control"]);
        assert_eq!(
            on(Unit::single(Component::Controller)),
            ["deis-control", "deis-etcd"]
        );
        assert_eq!(
            on(Unit::router(1)),
            ["deis-router", "deis-etcd", "deis-data"]
        );
    }

    #[test]
    fn routers_are_global_and_installed_stopped_others_at_zero_replicas() {
        let router = service_spec(
            "deis",
            "/var/run/docker.sock",
            &spec(Unit::router(2), &settings()),
        );
        assert!(router.mode.as_ref().unwrap().global.is_some());
        assert!(constraints(&router).contains(&stopped_constraint("deis-router@2")));
        assert_eq!(router.name.as_deref(), Some("deis-router-2"));
        let port = &router
            .endpoint_spec
            .as_ref()
            .unwrap()
            .ports
            .as_ref()
            .unwrap()[0];
        assert_eq!(port.published_port, Some(8081));
        assert_eq!(
            port.publish_mode,
            Some(EndpointPortConfigPublishModeEnum::HOST)
        );
        let controller = service_spec(
            "deis",
            "/var/run/docker.sock",
            &spec(Unit::single(Component::Controller), &settings()),
        );
        assert_eq!(
            controller.mode.unwrap().replicated.unwrap().replicas,
            Some(0)
        );
        let mounts = controller
            .task_template
            .unwrap()
            .container_spec
            .unwrap()
            .mounts
            .unwrap();
        assert!(mounts
            .iter()
            .any(|m| m.target.as_deref() == Some("/var/run/docker.sock")
                && m.typ == Some(MountType::BIND)));
        assert!(mounts
            .iter()
            .any(|m| m.source.as_deref() == Some("deis-data")));
    }
}
