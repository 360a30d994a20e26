//! Scheduler backends and the publisher.
//!
//! - [`LocalScheduler`] (module [`local`]), the embedded default: every instance is a
//!   supervised OS process on this host.
//! - [`Publisher`] (module [`publisher`]): the reconcile loop that turns healthy, routable
//!   instances into discovery entries under a lease and withdraws them when they go.
//! - `DockerScheduler` (module `docker`, feature `docker`): every instance is a container
//!   on a Docker Engine, with the same health-gated rollouts.
//! - `SwarmScheduler` (module `swarm`, feature `swarm`): one Swarm service per app and
//!   process type, health-gated start-first rolling updates with automatic rollback.
//! - [`LogSink`]: where instance output goes, tagged `<app>[<type>.<num>]`.

#[cfg(feature = "docker")]
pub mod docker;
mod events;
mod health;
pub mod local;
pub mod log_sink;
mod plan;
pub mod publisher;
#[cfg(feature = "swarm")]
pub mod swarm;

#[cfg(feature = "docker")]
pub use docker::{DockerConfig, DockerScheduler};
pub use local::{LimitEnforcement, LocalConfig, LocalScheduler, SlugFetcher};
pub use log_sink::{LogLine, LogSink, MemoryLogSink, TracingLogSink};
pub use publisher::{Publisher, PublisherConfig};
#[cfg(feature = "swarm")]
pub use swarm::{SwarmConfig, SwarmEndpoints, SwarmScheduler};
