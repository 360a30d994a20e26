//! The `Router` trait: something that routes HTTP by host name from a [`RouteTable`].

use crate::error::Result;
use crate::route::RouteTable;
use async_trait::async_trait;
use std::fmt::Debug;
use std::sync::Arc;

/// A router backend: the built-in proxy swaps its table in memory; the nginx backend renders
/// a configuration, checks it and reloads.
#[async_trait]
pub trait Router: Debug + Send + Sync + 'static {
    /// The backend's name, e.g. `memory`, `builtin`, `nginx`.
    fn backend(&self) -> &'static str;
    /// Starts routing by `table`. Applying the same table twice is a no-op; a failed apply
    /// leaves the previous table in force.
    async fn apply(&self, table: &RouteTable) -> Result<()>;
    /// The table in force.
    async fn current(&self) -> Result<RouteTable>;
}

/// A shared, dynamically chosen router.
pub type DynRouter = Arc<dyn Router>;
