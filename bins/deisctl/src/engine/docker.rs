//! [`DockerEngine`]: units as containers of one Docker Engine, on a private bridge network,
//! labelled `io.deis.platform=<prefix>` and `io.deis.unit=<unit name>`.

use super::{PlatformEngine, UnitStatus};
use crate::components::{UnitSpec, DATA_MOUNT};
use crate::image::ImageSource;
use crate::{CtlError, CtlResult};
use async_trait::async_trait;
use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, ContainerSummaryStateEnum, EndpointSettings, HostConfig, Mount, MountType,
    NetworkCreateRequest, NetworkingConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
    VolumeCreateRequest,
};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, ListContainersOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder, StopContainerOptionsBuilder,
};
use bollard::Docker;
use futures::StreamExt;
use std::collections::HashMap;

/// The label naming the platform (its prefix) a container belongs to.
pub const LABEL_PLATFORM: &str = "io.deis.platform";
/// The label carrying the unit name (`deis-router@1`).
pub const LABEL_UNIT: &str = "io.deis.unit";
/// The label carrying the component (`router`).
pub const LABEL_COMPONENT: &str = "io.deis.component";

/// The platform's components as containers of one Docker Engine.
#[derive(Debug, Clone)]
pub struct DockerEngine {
    docker: Docker,
    prefix: String,
    image: ImageSource,
    socket: String,
}

pub(crate) fn failed(what: &str) -> impl FnOnce(BollardError) -> CtlError + '_ {
    move |e| {
        let message = match e {
            BollardError::DockerResponseServerError { message, .. } => message,
            other => other.to_string(),
        };
        CtlError(format!("docker: {what}: {message}"))
    }
}

pub(crate) fn status_code(e: &BollardError) -> Option<u16> {
    match e {
        BollardError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

impl DockerEngine {
    /// Connects to the engine at the unix socket `socket`; every name starts with `prefix`
    /// and the units run the image `image` describes.
    pub async fn connect(socket: &str, prefix: &str, image: ImageSource) -> CtlResult<Self> {
        let docker = Docker::connect_with_unix(socket, 120, bollard::API_DEFAULT_VERSION)
            .map_err(failed("connecting"))?;
        docker
            .ping()
            .await
            .map_err(|e| CtlError(format!("docker at {socket}: {e}")))?;
        Ok(DockerEngine {
            docker,
            prefix: prefix.to_string(),
            image,
            socket: socket.to_string(),
        })
    }

    /// The private network's name.
    pub fn network(&self) -> String {
        self.prefix.clone()
    }

    /// The data volume's name.
    pub fn volume(&self) -> String {
        format!("{}-data", self.prefix)
    }

    /// The image's tag.
    pub fn image_tag(&self) -> String {
        format!("{}-platform:{}", self.prefix, env!("CARGO_PKG_VERSION"))
    }

    async fn container_of(&self, unit: &str) -> CtlResult<Option<String>> {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![
                format!("{LABEL_PLATFORM}={}", self.prefix),
                format!("{LABEL_UNIT}={unit}"),
            ],
        )]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let found = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(failed("listing containers"))?;
        Ok(found.into_iter().next().and_then(|c| c.id))
    }

    async fn build_image(&self) -> CtlResult<()> {
        build_platform_image(&self.docker, &self.image_tag(), &self.image, &self.prefix).await
    }
}

/// Builds the platform image `tag` from `image` unless the engine has it.
pub(crate) async fn build_platform_image(
    docker: &Docker,
    tag: &str,
    image: &ImageSource,
    prefix: &str,
) -> CtlResult<()> {
    if docker.inspect_image(tag).await.is_ok() {
        return Ok(());
    }
    let context = image.build_context(prefix)?;
    let options = BuildImageOptionsBuilder::new()
        .t(tag)
        .rm(true)
        .forcerm(true)
        .build();
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    while let Some(item) = stream.next().await {
        let info = item.map_err(failed("building the platform image"))?;
        if let Some(error) = info.error_detail.and_then(|d| d.message) {
            return Err(CtlError(format!(
                "docker: building the platform image: {error}"
            )));
        }
    }
    Ok(())
}

#[async_trait]
impl PlatformEngine for DockerEngine {
    fn name(&self) -> &'static str {
        "docker"
    }

    async fn prepare(&self) -> CtlResult<Vec<String>> {
        self.build_image().await?;
        if self
            .docker
            .inspect_network(
                &self.network(),
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await
            .is_err()
        {
            let labels = HashMap::from([(LABEL_PLATFORM.to_string(), self.prefix.clone())]);
            let created = self
                .docker
                .create_network(NetworkCreateRequest {
                    name: self.network(),
                    driver: Some("bridge".into()),
                    labels: Some(labels),
                    ..Default::default()
                })
                .await;
            if let Err(e) = created {
                if status_code(&e) != Some(409) {
                    return Err(failed("creating the network")(e));
                }
            }
        }
        self.docker
            .create_volume(VolumeCreateRequest {
                name: Some(self.volume()),
                labels: Some(HashMap::from([(
                    LABEL_PLATFORM.to_string(),
                    self.prefix.clone(),
                )])),
                ..Default::default()
            })
            .await
            .map_err(failed("creating the data volume"))?;
        Ok(Vec::new())
    }

    async fn install(&self, spec: &UnitSpec) -> CtlResult<bool> {
        if self.container_of(&spec.unit_name).await?.is_some() {
            return Ok(false);
        }
        let labels = HashMap::from([
            (LABEL_PLATFORM.to_string(), self.prefix.clone()),
            (LABEL_UNIT.to_string(), spec.unit_name.clone()),
            (
                LABEL_COMPONENT.to_string(),
                spec.unit.component.name().to_string(),
            ),
        ]);
        let mut bindings = HashMap::new();
        let mut exposed = Vec::new();
        for port in &spec.ports {
            let key = format!("{}/tcp", port.container);
            exposed.push(key.clone());
            bindings.insert(
                key,
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some(port.host.to_string()),
                }]),
            );
        }
        let mut mounts = Vec::new();
        if spec.data_volume {
            mounts.push(Mount {
                target: Some(DATA_MOUNT.into()),
                source: Some(self.volume()),
                typ: Some(MountType::VOLUME),
                ..Default::default()
            });
        }
        if let Some(target) = &spec.own_volume {
            mounts.push(Mount {
                target: Some(target.clone()),
                source: Some(format!("{}-{}", self.prefix, spec.unit.component.name())),
                typ: Some(MountType::VOLUME),
                ..Default::default()
            });
        }
        if spec.docker_socket {
            mounts.push(Mount {
                target: Some("/var/run/docker.sock".into()),
                source: Some(self.socket.clone()),
                typ: Some(MountType::BIND),
                ..Default::default()
            });
        }
        let mounts = (!mounts.is_empty()).then_some(mounts);
        let body = ContainerCreateBody {
            image: Some(self.image_tag()),
            cmd: Some(spec.command.clone()),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(labels),
            user: spec.user.clone(),
            exposed_ports: Some(exposed),
            hostname: Some(spec.container_name.clone()),
            host_config: Some(HostConfig {
                port_bindings: Some(bindings),
                mounts,
                network_mode: Some(self.network()),
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                    maximum_retry_count: None,
                }),
                init: Some(true),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    self.network(),
                    EndpointSettings {
                        aliases: Some(vec![spec.container_name.clone()]),
                        ..Default::default()
                    },
                )])),
            }),
            stop_timeout: Some(15),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::new()
            .name(&spec.container_name)
            .build();
        self.docker
            .create_container(Some(options), body)
            .await
            .map_err(failed(&format!("creating {}", spec.unit_name)))?;
        Ok(true)
    }

    async fn start(&self, unit: &str) -> CtlResult<()> {
        let Some(id) = self.container_of(unit).await? else {
            return Err(CtlError(format!("{unit} is not installed")));
        };
        match self.docker.start_container(&id, None).await {
            Ok(()) => Ok(()),
            Err(e) if status_code(&e) == Some(304) => Ok(()),
            Err(e) => Err(failed(&format!("starting {unit}"))(e)),
        }
    }

    async fn stop(&self, unit: &str) -> CtlResult<()> {
        let Some(id) = self.container_of(unit).await? else {
            return Err(CtlError(format!("{unit} is not installed")));
        };
        let options = StopContainerOptionsBuilder::new().t(15).build();
        match self.docker.stop_container(&id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if status_code(&e) == Some(304) => Ok(()),
            Err(e) => Err(failed(&format!("stopping {unit}"))(e)),
        }
    }

    async fn uninstall(&self, unit: &str) -> CtlResult<bool> {
        let Some(id) = self.container_of(unit).await? else {
            return Ok(false);
        };
        self.stop(unit).await?;
        let options = RemoveContainerOptionsBuilder::new().force(true).build();
        self.docker
            .remove_container(&id, Some(options))
            .await
            .map_err(failed(&format!("removing {unit}")))?;
        Ok(true)
    }

    async fn units(&self) -> CtlResult<Vec<UnitStatus>> {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("{LABEL_PLATFORM}={}", self.prefix)],
        )]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let containers = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(failed("listing containers"))?;
        let host = self
            .docker
            .info()
            .await
            .ok()
            .and_then(|i| i.name)
            .unwrap_or_else(|| "docker".into());
        let mut units: Vec<UnitStatus> = containers
            .into_iter()
            .filter_map(|c| {
                let unit = c.labels.as_ref()?.get(LABEL_UNIT)?.clone();
                let state = match c.state {
                    Some(ContainerSummaryStateEnum::RUNNING) => "running",
                    Some(ContainerSummaryStateEnum::CREATED) => "created",
                    Some(ContainerSummaryStateEnum::EXITED) => "exited",
                    Some(ContainerSummaryStateEnum::RESTARTING) => "restarting",
                    Some(ContainerSummaryStateEnum::PAUSED) => "paused",
                    Some(ContainerSummaryStateEnum::DEAD) => "dead",
                    _ => "unknown",
                }
                .to_string();
                let mut ports: Vec<String> = c
                    .ports
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|p| {
                        Some(format!(
                            "{}:{}->{}/tcp",
                            p.ip.unwrap_or_default(),
                            p.public_port?,
                            p.private_port
                        ))
                    })
                    .collect();
                ports.sort();
                ports.dedup();
                Some(UnitStatus {
                    unit,
                    state,
                    detail: c.status.unwrap_or_default(),
                    ports,
                    host: host.clone(),
                })
            })
            .collect();
        units.sort_by(|a, b| a.unit.cmp(&b.unit));
        Ok(units)
    }

    async fn remove_shared(&self) -> CtlResult<()> {
        if !self.units().await?.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.docker.remove_network(&self.network()).await {
            if status_code(&e) != Some(404) {
                return Err(failed("removing the network")(e));
            }
        }
        let options = RemoveImageOptionsBuilder::new().force(true).build();
        if let Err(e) = self
            .docker
            .remove_image(&self.image_tag(), Some(options), None)
            .await
        {
            if status_code(&e) != Some(404) {
                return Err(failed("removing the image")(e));
            }
        }
        Ok(())
    }
}
