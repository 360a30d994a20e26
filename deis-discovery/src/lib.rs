//! Discovery for Deis: the etcd v3 backend of `deis_core::Discovery` (feature `etcd`), the
//! choice of a backend from a URL ([`open_discovery`]), and the route sync
//! ([`sync::RouteSync`]) that keeps a router's table following discovery.
//!
//! The in-memory backend lives in `deis_core::memory`; the route table itself (how discovery
//! keys become routes) in `deis_core::route`. This crate owns the I/O around them: talking to
//! etcd, resuming watches, resyncing after compactions and riding out outages while a router
//! keeps its last known-good table.
//!
//! ```no_run
//! use deis_core::memory::MemoryRouter;
//! use deis_discovery::{open_discovery, RouteSync, RouteSyncOptions};
//! use std::sync::Arc;
//!
//! # async fn run() -> deis_core::error::Result<()> {
//! let discovery = open_discovery("etcd://127.0.0.1:2379").await?;
//! let router = Arc::new(MemoryRouter::new());
//! let sync = RouteSync::spawn(discovery, router, RouteSyncOptions::default())?;
//! let status = sync.status(); // revision and last update, for metrics
//! // … serve traffic; on shutdown:
//! sync.stop().await;
//! # let _ = status;
//! # Ok(())
//! # }
//! ```

pub mod config;
#[cfg(feature = "etcd")]
pub mod etcd;
pub mod sync;

pub use config::{parse_discovery_url, DiscoveryUrl, EtcdConfig};
#[cfg(feature = "etcd")]
pub use etcd::EtcdDiscovery;
pub use sync::{follow_routes, RouteSync, RouteSyncOptions, RouteSyncStatus};

use deis_core::discovery::Discovery;
use deis_core::error::Result;
use std::sync::Arc;

/// Opens the discovery backend a URL names: `memory://` (a fresh in-process key space) or
/// `etcd://h1:2379,h2:2379` / `http://h1:2379,http://h2:2379` (needs the `etcd` feature).
///
/// A bad URL, or an etcd URL in a build without the `etcd` feature, is an
/// `Error::Invalid` that says what to do; an unreachable etcd is `Error::Unavailable`.
pub async fn open_discovery(url: &str) -> Result<Arc<dyn Discovery>> {
    match parse_discovery_url(url)? {
        DiscoveryUrl::Memory => Ok(Arc::new(deis_core::memory::MemoryDiscovery::new())),
        DiscoveryUrl::Etcd(config) => open_etcd(config).await,
    }
}

#[cfg(feature = "etcd")]
async fn open_etcd(config: EtcdConfig) -> Result<Arc<dyn Discovery>> {
    Ok(Arc::new(EtcdDiscovery::connect(config).await?))
}

#[cfg(not(feature = "etcd"))]
async fn open_etcd(_config: EtcdConfig) -> Result<Arc<dyn Discovery>> {
    Err(deis_core::error::Error::Invalid(
        deis_core::error::ValidationError::new(
            "discovery_url",
            "feature_disabled",
            "etcd discovery needs deis-discovery built with the `etcd` feature",
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use deis_core::error::Error;

    #[tokio::test]
    async fn memory_url_opens_a_memory_backend() {
        let discovery = open_discovery("memory://").await.unwrap();
        assert_eq!(discovery.backend(), "memory");
        discovery.put("/deis/x", "1", None).await.unwrap();
        assert_eq!(discovery.get("/deis/x").await.unwrap().unwrap().value, "1");
    }

    #[tokio::test]
    async fn bad_urls_fail_clearly() {
        match open_discovery("zookeeper://h1").await {
            Err(Error::Invalid(error)) => assert_eq!(error.rule, "unknown_scheme"),
            other => panic!("expected an invalid URL error, got {other:?}"),
        }
    }

    #[cfg(not(feature = "etcd"))]
    #[tokio::test]
    async fn etcd_urls_name_the_missing_feature() {
        match open_discovery("etcd://127.0.0.1:2379").await {
            Err(Error::Invalid(error)) => {
                assert_eq!(error.rule, "feature_disabled");
                assert!(error.message.contains("`etcd` feature"));
            }
            other => panic!("expected a feature error, got {other:?}"),
        }
    }

    #[cfg(feature = "etcd")]
    #[tokio::test]
    async fn unreachable_etcd_is_unavailable() {
        // Port 1 on loopback refuses connections at once.
        let result = open_discovery("etcd://127.0.0.1:1?connect_timeout_ms=500").await;
        match result {
            Err(error) => assert!(
                matches!(
                    error,
                    Error::Unavailable {
                        backend: "etcd",
                        ..
                    }
                ),
                "{error:?}"
            ),
            Ok(discovery) => panic!("connected to nothing: {discovery:?}"),
        }
    }
}
