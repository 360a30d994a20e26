//! The container engines the platform's components run on. [`PlatformEngine`] is what
//! `deisctl` needs from one: shared resources (image, private network, data volume), and
//! per unit install (create), start, stop, uninstall (remove) and status. [`DockerEngine`]
//! runs units as containers of one Docker Engine; [`SwarmEngine`] runs them as Swarm
//! services placed by node labels on an overlay network.

mod docker;
mod swarm;

pub use docker::DockerEngine;
pub use swarm::{plane_of, runner_tag, SwarmEngine, PLANE_LABELS};

use crate::components::UnitSpec;
use crate::CtlResult;
use async_trait::async_trait;

/// The state of one installed unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitStatus {
    /// The unit name (`deis-router@1`).
    pub unit: String,
    /// `running`, `created`, `exited`, `restarting`…, as the engine reports it.
    pub state: String,
    /// The engine's detail (`Up 3 minutes`, `Exited (1) 2 seconds ago`).
    pub detail: String,
    /// Published ports, `127.0.0.1:8000->8000/tcp`.
    pub ports: Vec<String>,
    /// Where it runs (the engine's host or node name).
    pub host: String,
}

/// An engine that runs the platform's components.
#[async_trait]
pub trait PlatformEngine: std::fmt::Debug + Send + Sync {
    /// The engine's name (`docker`, `swarm`).
    fn name(&self) -> &'static str;
    /// Makes sure the image, the private network and the data volumes exist; returns what
    /// it did that the operator should know (nodes it labelled).
    async fn prepare(&self) -> CtlResult<Vec<String>>;
    /// Creates the unit without starting it; `false` when it was already installed.
    async fn install(&self, spec: &UnitSpec) -> CtlResult<bool>;
    /// Starts an installed unit (nothing to do when it runs).
    async fn start(&self, unit: &str) -> CtlResult<()>;
    /// Stops a unit gracefully (SIGTERM, then a kill after a grace period).
    async fn stop(&self, unit: &str) -> CtlResult<()>;
    /// Removes a unit (stopping it first); `false` when it was not installed.
    async fn uninstall(&self, unit: &str) -> CtlResult<bool>;
    /// Every installed unit of this platform.
    async fn units(&self) -> CtlResult<Vec<UnitStatus>>;
    /// Removes the network and the image once no unit is left (the data volume stays).
    async fn remove_shared(&self) -> CtlResult<()>;
}
