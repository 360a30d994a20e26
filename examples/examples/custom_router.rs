//! A third-party `Router` backend: `HostMapRouter` keeps an outside proxy's host map file
//! (one `host endpoint,endpoint…` line per routed host name, sorted, as HAProxy's `map`
//! files or a DNS-based balancer can read) in step with the route table, replacing the file
//! atomically on every change. It passes the router conformance suite.
//!
//! Run it with `cargo run -p deis-examples --example custom_router`.

use async_trait::async_trait;
use deis_core::conformance::router::run_all;
use deis_core::{Error, Result, RouteTable, Router};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;

/// Writes the route table as a host map file.
#[derive(Debug)]
struct HostMapRouter {
    path: PathBuf,
    current: Mutex<RouteTable>,
}

/// Renders one sorted line per routed host; apps with no endpoint are left out so the
/// outside proxy answers for them itself.
fn render(table: &RouteTable) -> String {
    let mut lines = Vec::new();
    for (app, route) in &table.apps {
        if route.endpoints.is_empty() {
            continue;
        }
        let endpoints: Vec<&str> = route.endpoints.values().map(String::as_str).collect();
        let mut hosts: Vec<String> = route.domains.iter().cloned().collect();
        if let Some(domain) = &table.platform_domain {
            hosts.push(format!("{app}.{domain}"));
        }
        for host in hosts {
            lines.push(format!("{host} {}", endpoints.join(",")));
        }
    }
    lines.sort();
    let mut out = String::new();
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
    out
}

#[async_trait]
impl Router for HostMapRouter {
    fn backend(&self) -> &'static str {
        "host-map"
    }

    async fn apply(&self, table: &RouteTable) -> Result<()> {
        let staging = self.path.with_extension("tmp");
        tokio::fs::write(&staging, render(table))
            .await
            .and(tokio::fs::rename(&staging, &self.path).await)
            .map_err(|e| Error::backend("host-map", e))?;
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = table.clone();
        Ok(())
    }

    async fn current(&self) -> Result<RouteTable> {
        Ok(self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone())
    }
}

fn router_in(dir: &std::path::Path) -> HostMapRouter {
    HostMapRouter {
        path: dir.join("hosts.map"),
        current: Mutex::new(RouteTable::default()),
    }
}

#[tokio::main]
async fn main() {
    let dir = std::env::temp_dir().join(format!("deis-host-map-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let router = router_in(&dir);
    run_all(&router, "127.0.0.1:5000").await;
    print!(
        "{}",
        std::fs::read_to_string(&router.path).expect("map file")
    );
    println!("HostMapRouter passes the router conformance suite");
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(test)]
mod tests {
    use super::*;
    use deis_core::conformance::router::sample_table;

    #[tokio::test]
    async fn host_map_router_passes_the_conformance_suite_and_writes_the_map() {
        let dir = std::env::temp_dir().join(format!("deis-host-map-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let router = router_in(&dir);
        run_all(&router, "127.0.0.1:5000").await;
        let map = std::fs::read_to_string(&router.path).unwrap();
        assert_eq!(
            map,
            "one.conformance.test 127.0.0.1:5000\nwww.one.test 127.0.0.1:5000\n"
        );
        router.apply(&RouteTable::default()).await.unwrap();
        assert_eq!(std::fs::read_to_string(&router.path).unwrap(), "");
        router.apply(&sample_table("127.0.0.1:6000")).await.unwrap();
        assert!(std::fs::read_to_string(&router.path)
            .unwrap()
            .contains("127.0.0.1:6000"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
