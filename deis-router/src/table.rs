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
    /// Custom domain → app, the first app (by name) winning as in `RouteTable::resolve`.
    domains: HashMap<String, String>,
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
        let mut domains = HashMap::new();
        for (name, route) in &table.apps {
            for domain in &route.domains {
                domains
                    .entry(domain.clone())
                    .or_insert_with(|| name.clone());
            }
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
            domains,
            certificates,
        })
    }

    /// The app serving `host`: the same answer as `RouteTable::resolve` (port and trailing
    /// dot ignored, case insensitive, custom domains first, then `<app>.<platform domain>`),
    /// by hash lookups instead of a scan over every app.
    pub(crate) fn lookup(&self, host: &str) -> Option<(&str, &AppEntry)> {
        let host = host_without_port(host).trim_end_matches('.');
        let lowered;
        let host = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            lowered = host.to_ascii_lowercase();
            lowered.as_str()
        } else {
            host
        };
        let name = match self.domains.get(host) {
            Some(app) => app.as_str(),
            None => {
                let domain = self.table.platform_domain.as_deref()?;
                host.strip_suffix(domain)?.strip_suffix('.')?
            }
        };
        self.apps
            .get_key_value(name)
            .map(|(name, entry)| (name.as_str(), entry))
    }
}

/// `RouteTable::resolve`'s port stripping: `[v6]:port`, `name:port`, or the host as is.
fn host_without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').map_or(host, |(inner, _)| inner);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deis_core::route::{AppRoute, Resolution};

    #[test]
    fn lookup_agrees_with_route_table_resolve() {
        let mut table = RouteTable {
            platform_domain: Some("example.com".into()),
            ..RouteTable::default()
        };
        for (app, domains) in [
            ("go", &["www.go.io", "shared.io"][..]),
            ("rb", &["shared.io", "rb.example.com"][..]),
            ("py", &[][..]),
        ] {
            let mut route = AppRoute {
                domains: domains.iter().map(|d| d.to_string()).collect(),
                ..AppRoute::default()
            };
            route.endpoints.insert("w.1".into(), "127.0.0.1:1".into());
            table.apps.insert(app.into(), route);
        }
        let compiled = Compiled::build(&table, &Compiled::default(), &Metrics::new()).unwrap();
        for host in [
            "go.example.com",
            "GO.Example.COM:8080",
            "go.example.com.",
            "www.go.io",
            "WWW.GO.IO.:443",
            "shared.io",
            "rb.example.com",
            "py.example.com",
            "nope.example.com",
            "example.com",
            ".example.com",
            "go.example.com.evil",
            "go.example.comx",
            "[::1]:80",
            "[::1]",
            "",
            ":80",
            "a:b:c",
        ] {
            let expected = match table.resolve(host) {
                Resolution::App(name, _) => Some(name.to_string()),
                Resolution::Unknown => None,
            };
            let got = compiled.lookup(host).map(|(name, _)| name.to_string());
            assert_eq!(got, expected, "host {host:?}");
        }
    }
}
