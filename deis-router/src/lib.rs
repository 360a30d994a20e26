//! The Deis router: a built-in reverse proxy that swaps its route table atomically, and an
//! nginx backend that renders, checks and reloads a configuration.
//!
//! Both implement [`deis_core::Router`]; whatever feeds them (the discovery crate's route
//! sync, a test) only calls `apply`. The last applied table keeps serving until the next
//! successful `apply`, whatever happens to discovery; a failed apply changes nothing.
//!
//! # The built-in router
//!
//! [`BuiltinRouter`] (httparse, hyper 1, hyper-util, rustls) compiles each table once and
//! swaps it in with one `ArcSwap` store: no reload, no dropped request, no cut WebSocket.
//! Plain HTTP/1.1 requests take a fast path that relays heads and bodies between two sockets
//! (see `fast`); everything else (HTTP/2, upgrades, chunked request bodies, HTTP/1.0) is
//! served by hyper, on the same connection. Its listeners
//! are started with [`BuiltinRouter::listen`] (port 0 allowed; [`Listening::local_addr`]
//! tells the real one) and stopped gracefully with [`Listening::shutdown`].
//!
//! - Routing: `<app>.<platform domain>` and custom domains, answered exactly as
//!   `RouteTable::resolve` does but by hash lookups prepared at apply time; 404 for an
//!   unknown host, 503 for an app without endpoints, and Deis's default
//!   `GET /health-check` → 200 for hosts that are no app.
//! - Upstreams: least outstanding requests (ties round robin); a refused or timed-out connect
//!   is retried on another endpoint (the body is resent only if it was never read); a
//!   keep-alive pool per endpoint whose connections are driven by the tasks of the requests
//!   using them (see `upstream`); 502 when no endpoint can be reached, 504 after
//!   `response_header_timeout`.
//! - Clients: HTTP/1.1 and HTTP/2 (h2c prior knowledge, ALPN `h2` on TLS), WebSocket and
//!   other `Upgrade`s tunnelled both ways, hop-by-hop headers dropped (RFC 9110 §7.6.1),
//!   `X-Forwarded-For` (appended), `-Proto` and `-Port`, request bodies over
//!   `max_body_size` refused with 413, optional PROXY protocol v1/v2 per listener.
//! - Allow-lists: `DEIS_WHITELIST` entries `ip[:label]` / `cidr[:label]`, IPv4 and IPv6, 403
//!   otherwise; malformed entries are dropped and a list with none left denies everyone.
//! - TLS: rustls with SNI: the table's certificate for the exact name (then `*.parent`),
//!   else the platform certificate; a bad PEM pair fails `apply` with an error naming the
//!   common name and never the key. Optional HSTS on https and http → https redirect.
//! - Metrics (admin listener, `/metrics`, Prometheus text): `deis_router_requests_total{app,
//!   class}`, `deis_router_upstream_latency_seconds{app}` (histogram),
//!   `deis_router_route_table_revision`, `deis_router_route_table_age_seconds` (since the
//!   last `apply`), `deis_router_route_table_applies_total`,
//!   `deis_router_upstream_connect_retries_total`. Hosts that are no app count as
//!   `app="_default"`.
//!
//! # The nginx backend
//!
//! [`NginxRouter`] renders a deterministic `nginx.conf` (sorted; the same table gives the
//! same bytes, and unchanged output causes no reload), checks it with `nginx -t` and reloads
//! the master; a refused configuration leaves the previous one and `current()` in force.

mod allow;
mod balance;
mod body;
mod config;
mod fast;
mod headers;
mod metrics;
pub mod nginx;
mod proxy;
mod proxy_protocol;
mod router;
mod server;
mod table;
mod tls;
mod upstream;

pub use allow::{AllowList, AllowRule};
pub use config::{Hsts, ListenerKind, ListenerOptions, RouterConfig};
pub use nginx::{NginxConfig, NginxRouter};
pub use proxy_protocol::{ProxyHeader, ProxyProtocolError};
pub use router::BuiltinRouter;
pub use server::Listening;
