//! Integration tests with real processes on this host: the local scheduler (conformance
//! suite, crashes, stops, health-gated rollouts, logs, runs, limits), the publisher, and
//! (feature `docker`) the Docker scheduler against this machine's Docker Engine and (feature
//! `swarm`) the Swarm scheduler against its swarm.
//!
//! Every process a test starts belongs to a `LocalScheduler`, which kills every process
//! group it started when it is dropped, so a failing test leaves nothing behind.

mod common;
#[cfg(feature = "docker")]
mod docker;
mod local;
mod publisher;
#[cfg(feature = "swarm")]
mod swarm;
