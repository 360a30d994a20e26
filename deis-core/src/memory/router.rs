use crate::error::Result;
use crate::route::RouteTable;
use crate::router::Router;
use async_trait::async_trait;
use std::sync::{Arc, Mutex};

/// A router that keeps the tables it is given and routes nothing itself: for embedding a
/// platform whose traffic is served elsewhere, and for tests of what reaches a router.
#[derive(Debug, Default, Clone)]
pub struct MemoryRouter {
    state: Arc<Mutex<RouterState>>,
}

#[derive(Debug, Default)]
struct RouterState {
    table: RouteTable,
    applied: u64,
}

impl MemoryRouter {
    /// A router with an empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many applies changed the table.
    pub fn changes_applied(&self) -> u64 {
        self.state.lock().map(|s| s.applied).unwrap_or_default()
    }
}

#[async_trait]
impl Router for MemoryRouter {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn apply(&self, table: &RouteTable) -> Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.table != *table {
            state.table = table.clone();
            state.applied += 1;
        }
        Ok(())
    }

    async fn current(&self) -> Result<RouteTable> {
        Ok(self
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .table
            .clone())
    }
}
