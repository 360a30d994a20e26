//! Options of the built-in router and of its listeners.

use deis_core::route::CertificatePair;
use std::net::SocketAddr;
use std::time::Duration;

/// How the built-in router proxies; every field has a Deis-like default.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// How long to wait for a TCP connection to an endpoint before trying the next one.
    pub connect_timeout: Duration,
    /// How long to wait for an endpoint's response headers before answering 504.
    pub response_header_timeout: Duration,
    /// The largest request body accepted (413 above it); `None` for no limit. Deis: 1 MiB.
    pub max_body_size: Option<u64>,
    /// How many distinct endpoints one request may try when connecting fails.
    pub connect_attempts: usize,
    /// How long an idle keep-alive connection to an endpoint stays in the pool.
    pub pool_idle_timeout: Duration,
    /// The most idle connections kept per endpoint.
    pub pool_max_idle_per_host: usize,
    /// How long a client may take to send a request's headers (HTTP/1) or a PROXY header.
    pub header_read_timeout: Duration,
    /// The platform certificate served on TLS listeners when no per-domain one matches.
    pub platform_certificate: Option<CertificatePair>,
    /// Sends `Strict-Transport-Security` on https responses of apps.
    pub hsts: Option<Hsts>,
    /// Answers plain-http requests for apps with a 301 to the https URL.
    pub redirect_to_https: bool,
    /// The public https port used in redirect locations (443 is left out of the URL).
    pub https_port: u16,
    /// Takes `X-Forwarded-Proto: https` from the client as proof of https (for the redirect,
    /// HSTS and the `X-Forwarded-Proto` sent upstream), as Deis's `$access_scheme` did behind
    /// an SSL-offloading load balancer. Only safe when every client is that load balancer.
    pub trust_forwarded_proto: bool,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            response_header_timeout: Duration::from_secs(60),
            max_body_size: Some(1 << 20),
            connect_attempts: 3,
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle_per_host: 256,
            header_read_timeout: Duration::from_secs(30),
            platform_certificate: None,
            hsts: None,
            redirect_to_https: false,
            https_port: 443,
            trust_forwarded_proto: false,
        }
    }
}

/// The `Strict-Transport-Security` policy (Deis `hsts/*` settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hsts {
    /// `max-age` in seconds (Deis default 10886400).
    pub max_age: u64,
    /// Adds `includeSubDomains`.
    pub include_subdomains: bool,
    /// Adds `preload`.
    pub preload: bool,
}

impl Default for Hsts {
    fn default() -> Self {
        Self {
            max_age: 10_886_400,
            include_subdomains: false,
            preload: false,
        }
    }
}

impl Hsts {
    /// The header value, e.g. `max-age=10886400; includeSubDomains`.
    pub fn header_value(&self) -> String {
        let mut value = format!("max-age={}", self.max_age);
        if self.include_subdomains {
            value.push_str("; includeSubDomains");
        }
        if self.preload {
            value.push_str("; preload");
        }
        value
    }
}

/// What a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    /// Plain HTTP/1.1 and HTTP/2 (prior knowledge) traffic for apps.
    Http,
    /// TLS traffic for apps, certificate chosen by SNI; ALPN offers `h2` and `http/1.1`.
    Https,
    /// The admin port: `/metrics` (Prometheus text) and `/health-check`.
    Admin,
}

/// One listener to start with [`crate::BuiltinRouter::listen`].
#[derive(Debug, Clone)]
pub struct ListenerOptions {
    /// The address to bind; port 0 picks a free port (see [`crate::Listening::local_addr`]).
    pub addr: SocketAddr,
    /// What the listener serves.
    pub kind: ListenerKind,
    /// Expects a PROXY protocol v1 or v2 header first on every connection (from a front load
    /// balancer) and takes the client address from it. Off by default.
    pub proxy_protocol: bool,
}

impl ListenerOptions {
    /// A listener of `kind` on `addr`, without PROXY protocol.
    pub fn new(kind: ListenerKind, addr: SocketAddr) -> Self {
        Self {
            addr,
            kind,
            proxy_protocol: false,
        }
    }

    /// Turns PROXY protocol on or off.
    pub fn with_proxy_protocol(mut self, on: bool) -> Self {
        self.proxy_protocol = on;
        self
    }
}
