//! The route table: the router's whole view of the platform, as a plain value.
//!
//! It is derived state: built from a discovery [`Snapshot`] and kept current by applying
//! [`WatchEvent`]s, compared with a pure [`RouteTable::diff`], and swapped atomically by
//! routers.

use crate::discovery::{keys, Snapshot, WatchEvent};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// How one app is reached.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRoute {
    /// Healthy endpoints: job name → `host:port`.
    pub endpoints: BTreeMap<String, String>,
    /// Custom domains routed to the app.
    pub domains: BTreeSet<String>,
    /// The IP allow-list (`DEIS_WHITELIST` entries, `ip[:label]` or `cidr[:label]`);
    /// empty means everyone may connect.
    pub whitelist: Vec<String>,
}

impl AppRoute {
    fn is_empty(&self) -> bool {
        self.endpoints.is_empty() && self.domains.is_empty() && self.whitelist.is_empty()
    }
}

/// A certificate and its key, in PEM.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificatePair {
    /// The certificate chain.
    pub cert: String,
    /// The private key.
    pub key: String,
}

impl fmt::Debug for CertificatePair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificatePair")
            .field("cert_len", &self.cert.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Everything a router needs to route by host name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteTable {
    /// The discovery revision this table reflects.
    pub revision: u64,
    /// Apps answer at `<app>.<platform_domain>`.
    pub platform_domain: Option<String>,
    /// Routes per app name.
    pub apps: BTreeMap<String, AppRoute>,
    /// Certificates per common name (SNI host).
    pub certificates: BTreeMap<String, CertificatePair>,
}

/// One difference between two route tables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum RouteChange {
    /// The platform domain changed.
    PlatformDomain {
        /// The new domain.
        domain: Option<String>,
    },
    /// An endpoint appeared or moved.
    EndpointSet {
        /// The app.
        app: String,
        /// The job name.
        instance: String,
        /// `host:port`.
        address: String,
    },
    /// An endpoint went away.
    EndpointRemoved {
        /// The app.
        app: String,
        /// The job name.
        instance: String,
    },
    /// A custom domain was added.
    DomainAdded {
        /// The app.
        app: String,
        /// The domain.
        domain: String,
    },
    /// A custom domain was removed.
    DomainRemoved {
        /// The app.
        app: String,
        /// The domain.
        domain: String,
    },
    /// The app's allow-list changed.
    WhitelistSet {
        /// The app.
        app: String,
        /// The new entries.
        whitelist: Vec<String>,
    },
    /// A certificate was added or replaced.
    CertificateSet {
        /// The common name.
        common_name: String,
        /// The PEM pair.
        pair: CertificatePair,
    },
    /// A certificate was removed.
    CertificateRemoved {
        /// The common name.
        common_name: String,
    },
}

/// Where a request for a host goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution<'a> {
    /// The host belongs to this app.
    App(&'a str, &'a AppRoute),
    /// No app has this host.
    Unknown,
}

impl RouteTable {
    /// Builds the table from a snapshot of `/deis/`.
    pub fn from_snapshot(snapshot: &Snapshot) -> Self {
        let mut table = RouteTable::default();
        for kv in &snapshot.entries {
            table.apply_event(&WatchEvent::Put(kv.clone()));
        }
        table.revision = snapshot.revision;
        table
    }

    /// Applies one discovery change. Keys outside the routing layout are ignored; so are
    /// malformed values (a router never trusts a bad write, as Deis v1's `host:` did).
    pub fn apply_event(&mut self, event: &WatchEvent) {
        self.revision = self.revision.max(event.revision());
        let key = event.key();
        let value = match event {
            WatchEvent::Put(kv) => Some(kv.value.as_str()),
            WatchEvent::Delete { .. } => None,
        };
        if key == keys::PLATFORM_DOMAIN {
            self.platform_domain = value.map(str::to_string);
        } else if let Some(rest) = key.strip_prefix(keys::SERVICES) {
            let Some((app, instance)) = rest.split_once('/') else {
                return;
            };
            if instance.is_empty() || instance.contains('/') {
                return;
            }
            match value {
                Some(address) if is_host_port(address) => {
                    self.app_mut(app)
                        .endpoints
                        .insert(instance.to_string(), address.to_string());
                }
                _ => self.edit_app(app, |route| {
                    route.endpoints.remove(instance);
                }),
            }
        } else if let Some(fqdn) = key.strip_prefix(keys::DOMAINS) {
            // A domain moves between apps only by delete + put; find its current owner.
            for route in self.apps.values_mut() {
                route.domains.remove(fqdn);
            }
            self.apps.retain(|_, route| !route.is_empty());
            if let Some(app) = value {
                self.app_mut(app).domains.insert(fqdn.to_string());
            }
        } else if let Some(rest) = key.strip_prefix(keys::CONFIG) {
            if let Some((app, "deis_whitelist")) = rest.split_once('/') {
                let list = value.map(parse_whitelist).unwrap_or_default();
                self.edit_app(app, |route| route.whitelist = list);
            }
        } else if let Some(rest) = key.strip_prefix(keys::CERTS) {
            let Some((common_name, part)) = rest.split_once('/') else {
                return;
            };
            let pair = self
                .certificates
                .entry(common_name.to_string())
                .or_default();
            match (part, value) {
                ("cert", v) => pair.cert = v.unwrap_or_default().to_string(),
                ("key", v) => pair.key = v.unwrap_or_default().to_string(),
                _ => {}
            }
            if pair.cert.is_empty() && pair.key.is_empty() {
                self.certificates.remove(common_name);
            }
        }
    }

    fn app_mut(&mut self, app: &str) -> &mut AppRoute {
        self.apps.entry(app.to_string()).or_default()
    }

    fn edit_app(&mut self, app: &str, edit: impl FnOnce(&mut AppRoute)) {
        let route = self.app_mut(app);
        edit(route);
        if route.is_empty() {
            self.apps.remove(app);
        }
    }

    /// Finds the app for a `Host` header value (port and trailing dot ignored, case
    /// insensitive): a custom domain first, then `<app>.<platform domain>`.
    pub fn resolve(&self, host: &str) -> Resolution<'_> {
        let host = host_without_port(host);
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        for (app, route) in &self.apps {
            if route.domains.contains(&host) {
                return Resolution::App(app, route);
            }
        }
        if let Some(domain) = &self.platform_domain {
            if let Some(app) = host
                .strip_suffix(domain.as_str())
                .and_then(|rest| rest.strip_suffix('.'))
            {
                if let Some((name, route)) = self.apps.get_key_value(app) {
                    return Resolution::App(name, route);
                }
            }
        }
        Resolution::Unknown
    }

    /// The changes that turn `self` into `new`, in a deterministic order.
    pub fn diff(&self, new: &RouteTable) -> Vec<RouteChange> {
        let mut changes = Vec::new();
        if self.platform_domain != new.platform_domain {
            changes.push(RouteChange::PlatformDomain {
                domain: new.platform_domain.clone(),
            });
        }
        let empty = AppRoute::default();
        let names: BTreeSet<&String> = self.apps.keys().chain(new.apps.keys()).collect();
        for app in names {
            let old_route = self.apps.get(app).unwrap_or(&empty);
            let new_route = new.apps.get(app).unwrap_or(&empty);
            for (instance, address) in &new_route.endpoints {
                if old_route.endpoints.get(instance) != Some(address) {
                    changes.push(RouteChange::EndpointSet {
                        app: app.clone(),
                        instance: instance.clone(),
                        address: address.clone(),
                    });
                }
            }
            for instance in old_route.endpoints.keys() {
                if !new_route.endpoints.contains_key(instance) {
                    changes.push(RouteChange::EndpointRemoved {
                        app: app.clone(),
                        instance: instance.clone(),
                    });
                }
            }
            for domain in new_route.domains.difference(&old_route.domains) {
                changes.push(RouteChange::DomainAdded {
                    app: app.clone(),
                    domain: domain.clone(),
                });
            }
            for domain in old_route.domains.difference(&new_route.domains) {
                changes.push(RouteChange::DomainRemoved {
                    app: app.clone(),
                    domain: domain.clone(),
                });
            }
            if old_route.whitelist != new_route.whitelist {
                changes.push(RouteChange::WhitelistSet {
                    app: app.clone(),
                    whitelist: new_route.whitelist.clone(),
                });
            }
        }
        for (common_name, pair) in &new.certificates {
            if self.certificates.get(common_name) != Some(pair) {
                changes.push(RouteChange::CertificateSet {
                    common_name: common_name.clone(),
                    pair: pair.clone(),
                });
            }
        }
        for common_name in self.certificates.keys() {
            if !new.certificates.contains_key(common_name) {
                changes.push(RouteChange::CertificateRemoved {
                    common_name: common_name.clone(),
                });
            }
        }
        changes
    }

    /// Applies one change (the inverse of [`RouteTable::diff`]).
    pub fn apply(&mut self, change: &RouteChange) {
        match change {
            RouteChange::PlatformDomain { domain } => self.platform_domain = domain.clone(),
            RouteChange::EndpointSet {
                app,
                instance,
                address,
            } => {
                self.app_mut(app)
                    .endpoints
                    .insert(instance.clone(), address.clone());
            }
            RouteChange::EndpointRemoved { app, instance } => self.edit_app(app, |route| {
                route.endpoints.remove(instance);
            }),
            RouteChange::DomainAdded { app, domain } => {
                self.app_mut(app).domains.insert(domain.clone());
            }
            RouteChange::DomainRemoved { app, domain } => self.edit_app(app, |route| {
                route.domains.remove(domain);
            }),
            RouteChange::WhitelistSet { app, whitelist } => {
                let whitelist = whitelist.clone();
                self.edit_app(app, |route| route.whitelist = whitelist)
            }
            RouteChange::CertificateSet { common_name, pair } => {
                self.certificates.insert(common_name.clone(), pair.clone());
            }
            RouteChange::CertificateRemoved { common_name } => {
                self.certificates.remove(common_name);
            }
        }
    }
}

/// Splits a `DEIS_WHITELIST` value into its entries.
pub fn parse_whitelist(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(str::to_string)
        .collect()
}

fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_once(']').map_or(host, |(h, _)| &h[1..]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    }
}

fn is_host_port(address: &str) -> bool {
    match address.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::KeyValue;

    fn put(key: &str, value: &str, revision: u64) -> WatchEvent {
        WatchEvent::Put(KeyValue {
            key: key.into(),
            value: value.into(),
            mod_revision: revision,
        })
    }

    fn sample() -> RouteTable {
        let snapshot = Snapshot {
            revision: 7,
            entries: vec![
                KeyValue {
                    key: "/deis/platform/domain".into(),
                    value: "example.com".into(),
                    mod_revision: 1,
                },
                KeyValue {
                    key: "/deis/services/go/go_v2.web.1".into(),
                    value: "10.0.0.1:5000".into(),
                    mod_revision: 2,
                },
                KeyValue {
                    key: "/deis/services/go/go_v2.web.2".into(),
                    value: "10.0.0.2:5000".into(),
                    mod_revision: 3,
                },
                KeyValue {
                    key: "/deis/services/go/bad".into(),
                    value: "10.0.0.3:".into(),
                    mod_revision: 4,
                },
                KeyValue {
                    key: "/deis/domains/www.go.io".into(),
                    value: "go".into(),
                    mod_revision: 5,
                },
                KeyValue {
                    key: "/deis/config/go/deis_whitelist".into(),
                    value: "10.0.0.0/8:office, 1.2.3.4".into(),
                    mod_revision: 6,
                },
                KeyValue {
                    key: "/deis/certs/www.go.io/cert".into(),
                    value: "CERT".into(),
                    mod_revision: 7,
                },
                KeyValue {
                    key: "/deis/certs/www.go.io/key".into(),
                    value: "KEY".into(),
                    mod_revision: 7,
                },
            ],
        };
        RouteTable::from_snapshot(&snapshot)
    }

    #[test]
    fn builds_from_a_snapshot() {
        let table = sample();
        insta::assert_json_snapshot!(table);
    }

    #[test]
    fn resolves_hosts() {
        let table = sample();
        assert!(matches!(
            table.resolve("go.example.com"),
            Resolution::App("go", _)
        ));
        assert!(matches!(
            table.resolve("GO.example.com:8080"),
            Resolution::App("go", _)
        ));
        assert!(matches!(
            table.resolve("www.go.io."),
            Resolution::App("go", _)
        ));
        assert_eq!(table.resolve("nope.example.com"), Resolution::Unknown);
        assert_eq!(table.resolve("example.com"), Resolution::Unknown);
        assert_eq!(table.resolve("go.example.com.evil"), Resolution::Unknown);
    }

    #[test]
    fn events_add_and_remove_routes() {
        let mut table = sample();
        table.apply_event(&WatchEvent::Delete {
            key: "/deis/services/go/go_v2.web.1".into(),
            revision: 8,
        });
        table.apply_event(&put("/deis/domains/www.go.io", "rb", 9));
        table.apply_event(&put("/deis/services/rb/rb_v1.web.1", "10.0.0.9:5000", 10));
        assert_eq!(table.revision, 10);
        assert_eq!(table.apps["go"].endpoints.len(), 1);
        assert!(table.apps["rb"].domains.contains("www.go.io"));
        assert!(!table.apps["go"].domains.contains("www.go.io"));
        table.apply_event(&WatchEvent::Delete {
            key: "/deis/certs/www.go.io/cert".into(),
            revision: 11,
        });
        table.apply_event(&WatchEvent::Delete {
            key: "/deis/certs/www.go.io/key".into(),
            revision: 12,
        });
        assert!(table.certificates.is_empty());
    }

    #[test]
    fn diff_then_apply_reaches_the_new_table() {
        let old = sample();
        let mut new = old.clone();
        new.apply_event(&WatchEvent::Delete {
            key: "/deis/services/go/go_v2.web.1".into(),
            revision: 8,
        });
        new.apply_event(&put("/deis/services/go/go_v3.web.1", "10.0.0.5:5000", 9));
        new.apply_event(&put("/deis/domains/api.go.io", "go", 10));
        new.apply_event(&WatchEvent::Delete {
            key: "/deis/config/go/deis_whitelist".into(),
            revision: 11,
        });
        new.apply_event(&put("/deis/platform/domain", "local.test", 12));
        let changes = old.diff(&new);
        insta::assert_json_snapshot!(changes);
        let mut patched = old.clone();
        for change in &changes {
            patched.apply(change);
        }
        patched.revision = new.revision;
        assert_eq!(patched, new);
        assert!(new.diff(&new).is_empty());
    }

    #[test]
    fn certificate_keys_stay_out_of_debug_output() {
        let pair = CertificatePair {
            cert: "C".into(),
            key: "SECRET".into(),
        };
        assert!(!format!("{pair:?}").contains("SECRET"));
    }
}
