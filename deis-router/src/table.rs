//! The compiled route table: what the proxy reads on every request, built once per apply.

use crate::allow::AllowList;
use crate::balance::Endpoint;
use crate::metrics::{AppMetrics, Metrics};
use crate::tls::certified_key;
use deis_core::route::RouteTable;
use deis_core::ValidationError;
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

/// One app, ready to route.
#[derive(Debug)]
pub(crate) struct AppEntry {
    pub(crate) endpoints: Vec<Arc<Endpoint>>,
    pub(crate) allow: AllowList,
    pub(crate) cursor: Arc<AtomicUsize>,
    pub(crate) metrics: Arc<AppMetrics>,
}

/// The table in force, as applied, plus what was derived from it.
#[derive(Debug, Default)]
pub(crate) struct Compiled {
    pub(crate) table: RouteTable,
    pub(crate) apps: HashMap<String, AppEntry>,
    pub(crate) certificates: HashMap<String, Arc<CertifiedKey>>,
}

impl Compiled {
    /// Compiles `table`, keeping the in-flight counters and balancing cursors of endpoints
    /// and apps that `previous` already had. Fails on a malformed endpoint or certificate.
    pub(crate) fn build(
        table: &RouteTable,
        previous: &Compiled,
        metrics: &Metrics,
    ) -> Result<Self, ValidationError> {
        let mut known: HashMap<&str, &Arc<Endpoint>> = HashMap::new();
        for app in previous.apps.values() {
            for endpoint in &app.endpoints {
                known.insert(endpoint.address.as_str(), endpoint);
            }
        }
        let mut apps = HashMap::with_capacity(table.apps.len());
        for (name, route) in &table.apps {
            let mut endpoints = Vec::with_capacity(route.endpoints.len());
            for (instance, address) in &route.endpoints {
                let endpoint = match known.get(address.as_str()) {
                    Some(endpoint) => Arc::clone(endpoint),
                    None => Arc::new(Endpoint::new(address).ok_or_else(|| {
                        ValidationError::new(
                            format!("apps.{name}.endpoints.{instance}"),
                            "bad_endpoint",
                            format!("{address:?} is not a host:port address"),
                        )
                    })?),
                };
                endpoints.push(endpoint);
            }
            let (allow, rejected) = AllowList::parse(&route.whitelist);
            if !rejected.is_empty() {
                tracing::warn!(app = %name, ?rejected, "ignoring malformed allow-list entries");
            }
            let cursor = previous
                .apps
                .get(name)
                .map(|app| app.cursor.clone())
                .unwrap_or_default();
            apps.insert(
                name.clone(),
                AppEntry {
                    endpoints,
                    allow,
                    cursor,
                    metrics: metrics.app(name),
                },
            );
        }
        let mut certificates = HashMap::with_capacity(table.certificates.len());
        for (common_name, pair) in &table.certificates {
            let name = common_name.trim_end_matches('.').to_ascii_lowercase();
            let unchanged = previous.table.certificates.get(common_name) == Some(pair);
            let key = match previous.certificates.get(&name) {
                Some(key) if unchanged => key.clone(),
                _ => certified_key(&format!("certificates.{common_name}"), pair)?,
            };
            certificates.insert(name, key);
        }
        Ok(Self {
            table: table.clone(),
            apps,
            certificates,
        })
    }
}
