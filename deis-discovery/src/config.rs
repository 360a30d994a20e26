//! Parsing of discovery URLs (`memory://`, `etcd://h1:2379,h2:2379`, `http://…` lists) into
//! a typed configuration. Always compiled, so a bad URL gives the same clear error whether or
//! not the `etcd` feature is on.

use deis_core::error::{Error, Result, ValidationError};
use std::time::Duration;

/// The field name used in validation errors about a discovery URL.
const FIELD: &str = "discovery_url";

/// The etcd client port used when an `etcd://` host names none.
pub const DEFAULT_ETCD_PORT: u16 = 2379;

/// How long connecting to etcd may take by default before the backend counts as unavailable.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one etcd request (not a watch) may take by default.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Which backend a discovery URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryUrl {
    /// `memory://`: the in-process key space of `deis_core::memory`.
    Memory,
    /// An etcd cluster.
    Etcd(EtcdConfig),
}

/// How to reach an etcd cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdConfig {
    /// Client endpoints, each `http://host:port`.
    pub endpoints: Vec<String>,
    /// A prefix prepended to every key on the wire and stripped from every key read, so
    /// several platforms (or tests) can share one etcd; empty for none.
    pub namespace: String,
    /// How long connecting may take before the backend counts as unavailable.
    pub connect_timeout: Duration,
    /// How long one request (not a watch) may take before it counts as unavailable.
    pub request_timeout: Duration,
}

impl EtcdConfig {
    /// A configuration for these `http://host:port` endpoints with default timeouts and no
    /// namespace.
    pub fn new(endpoints: impl IntoIterator<Item = impl Into<String>>) -> Self {
        EtcdConfig {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            namespace: String::new(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }

    /// The same configuration with every key under `namespace` (e.g. `/test-42`).
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// The same configuration with another connect timeout.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The same configuration with another timeout for each request (not a watch).
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Checks that the endpoints and timeouts make sense.
    pub fn validate(&self) -> Result<()> {
        if self.endpoints.is_empty() {
            return Err(invalid("no_endpoints", "name at least one etcd endpoint"));
        }
        for endpoint in &self.endpoints {
            parse_http_endpoint(endpoint)?;
        }
        if self.connect_timeout.is_zero() || self.request_timeout.is_zero() {
            return Err(invalid("zero_timeout", "etcd timeouts must be positive"));
        }
        Ok(())
    }
}

fn invalid(rule: &'static str, message: impl Into<String>) -> Error {
    Error::Invalid(ValidationError::new(FIELD, rule, message))
}

/// Parses a discovery URL.
///
/// Accepted forms: `memory://`; `etcd://host[:port][,host[:port]…][/][?options]`; a
/// comma-separated list of `http://host:port` endpoints. Options (query parameters of the
/// `etcd://` form): `namespace=/prefix`, `connect_timeout_ms=N`, `request_timeout_ms=N`.
pub fn parse_discovery_url(url: &str) -> Result<DiscoveryUrl> {
    let url = url.trim();
    if url == "memory://" || url == "memory:" || url == "memory" {
        return Ok(DiscoveryUrl::Memory);
    }
    if let Some(rest) = url.strip_prefix("etcd://") {
        return parse_etcd_form(rest).map(DiscoveryUrl::Etcd);
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        let endpoints = url
            .split(',')
            .map(str::trim)
            .map(parse_http_endpoint)
            .collect::<Result<Vec<_>>>()?;
        return Ok(DiscoveryUrl::Etcd(EtcdConfig::new(endpoints)));
    }
    let scheme = url.split_once("://").map_or(url, |(scheme, _)| scheme);
    Err(invalid(
        "unknown_scheme",
        format!(
            "unsupported discovery URL scheme {scheme:?}; use memory://, etcd://host:port[,host:port] \
             or a list of http://host:port endpoints"
        ),
    ))
}

fn parse_etcd_form(rest: &str) -> Result<EtcdConfig> {
    let (hosts, query) = rest.split_once('?').unwrap_or((rest, ""));
    let hosts = hosts.trim_end_matches('/');
    if hosts.contains('/') {
        return Err(invalid(
            "unexpected_path",
            "an etcd:// URL takes no path; use ?namespace=/prefix for a key namespace",
        ));
    }
    let endpoints = hosts
        .split(',')
        .map(str::trim)
        .map(|host| {
            if host.is_empty() {
                return Err(invalid("empty_host", "an etcd:// URL lists an empty host"));
            }
            let with_port = if has_port(host) {
                host.to_string()
            } else {
                format!("{host}:{DEFAULT_ETCD_PORT}")
            };
            parse_http_endpoint(&format!("http://{with_port}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut config = EtcdConfig::new(endpoints);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "namespace" => {
                if !value.is_empty() && !value.starts_with('/') {
                    return Err(invalid(
                        "bad_namespace",
                        "an etcd namespace must start with '/'",
                    ));
                }
                config.namespace = value.trim_end_matches('/').to_string();
            }
            "connect_timeout_ms" => config.connect_timeout = parse_millis(name, value)?,
            "request_timeout_ms" => config.request_timeout = parse_millis(name, value)?,
            other => {
                return Err(invalid(
                    "unknown_option",
                    format!(
                        "unknown etcd URL option {other:?}; known: namespace, \
                         connect_timeout_ms, request_timeout_ms"
                    ),
                ))
            }
        }
    }
    config.validate()?;
    Ok(config)
}

fn parse_millis(name: &str, value: &str) -> Result<Duration> {
    match value.parse::<u64>() {
        Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
        _ => Err(invalid(
            "bad_timeout",
            format!("{name} must be a positive number of milliseconds, not {value:?}"),
        )),
    }
}

/// Whether `host` (no scheme) ends in `:port`, IPv6 brackets understood.
fn has_port(host: &str) -> bool {
    match host.rsplit_once(':') {
        Some((before, _)) if host.starts_with('[') => before.ends_with(']'),
        Some(_) => true,
        None => false,
    }
}

/// Checks one `http://host:port` endpoint and returns it without a trailing slash.
fn parse_http_endpoint(endpoint: &str) -> Result<String> {
    if endpoint.starts_with("https://") {
        return Err(invalid(
            "tls_unsupported",
            "TLS to etcd is not supported by this build; use http:// endpoints on a trusted network",
        ));
    }
    let Some(rest) = endpoint.strip_prefix("http://") else {
        return Err(invalid(
            "bad_endpoint",
            format!("etcd endpoint {endpoint:?} must look like http://host:port"),
        ));
    };
    let authority = rest.trim_end_matches('/');
    let port_ok = authority
        .rsplit_once(':')
        .filter(|(host, _)| !host.is_empty() && !host.contains('/') && !host.contains('@'))
        .and_then(|(_, port)| port.parse::<u16>().ok())
        .is_some_and(|port| port > 0);
    if !port_ok || authority.contains(char::is_whitespace) {
        return Err(invalid(
            "bad_endpoint",
            format!("etcd endpoint {endpoint:?} must look like http://host:port"),
        ));
    }
    Ok(format!("http://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn etcd(url: &str) -> EtcdConfig {
        match parse_discovery_url(url).unwrap() {
            DiscoveryUrl::Etcd(config) => config,
            other => panic!("expected etcd, got {other:?}"),
        }
    }

    fn rule(url: &str) -> &'static str {
        match parse_discovery_url(url) {
            Err(Error::Invalid(error)) => {
                assert_eq!(error.field, FIELD);
                error.rule
            }
            other => panic!("expected a validation error for {url:?}, got {other:?}"),
        }
    }

    #[test]
    fn memory_url() {
        assert_eq!(
            parse_discovery_url("memory://").unwrap(),
            DiscoveryUrl::Memory
        );
    }

    #[test]
    fn etcd_url_with_several_hosts_and_default_port() {
        let config = etcd("etcd://h1:2379,h2,10.0.0.3:4001/");
        assert_eq!(
            config.endpoints,
            ["http://h1:2379", "http://h2:2379", "http://10.0.0.3:4001"]
        );
        assert_eq!(config.namespace, "");
        assert_eq!(config.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
    }

    #[test]
    fn etcd_url_options() {
        let config = etcd("etcd://[::1]:2379?namespace=/t1/&connect_timeout_ms=250");
        assert_eq!(config.endpoints, ["http://[::1]:2379"]);
        assert_eq!(config.namespace, "/t1");
        assert_eq!(config.connect_timeout, Duration::from_millis(250));
        assert_eq!(etcd("etcd://[::1]").endpoints, ["http://[::1]:2379"]);
    }

    #[test]
    fn http_endpoint_list() {
        let config = etcd("http://127.0.0.1:1, http://127.0.0.2:2/");
        assert_eq!(
            config.endpoints,
            ["http://127.0.0.1:1", "http://127.0.0.2:2"]
        );
    }

    #[test]
    fn bad_urls_are_clear_errors() {
        assert_eq!(rule("consul://x"), "unknown_scheme");
        assert_eq!(rule(""), "unknown_scheme");
        assert_eq!(rule("etcd://"), "empty_host");
        assert_eq!(rule("etcd://h1,,h2"), "empty_host");
        assert_eq!(rule("etcd://h1:notaport"), "bad_endpoint");
        assert_eq!(rule("etcd://h1:0"), "bad_endpoint");
        assert_eq!(rule("etcd://h1/deis"), "unexpected_path");
        assert_eq!(rule("etcd://h1?namespace=x"), "bad_namespace");
        assert_eq!(rule("etcd://h1?connect_timeout_ms=0"), "bad_timeout");
        assert_eq!(rule("etcd://h1?colour=red"), "unknown_option");
        assert_eq!(rule("http://h1"), "bad_endpoint");
        assert_eq!(rule("http://h1:1,ftp://h2:2"), "bad_endpoint");
        assert_eq!(rule("https://h1:2379"), "tls_unsupported");
    }

    #[test]
    fn config_validation() {
        assert!(EtcdConfig::new(Vec::<String>::new()).validate().is_err());
        assert!(EtcdConfig::new(["http://127.0.0.1:2379"])
            .validate()
            .is_ok());
        assert!(EtcdConfig::new(["127.0.0.1:2379"]).validate().is_err());
    }
}
