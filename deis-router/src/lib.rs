//! The Deis router: a built-in reverse proxy that swaps its route table atomically, and an
//! nginx backend that renders, checks and reloads a configuration.
//!
//! Both implement [`deis_core::Router`]:
//!
//! - [`BuiltinRouter`] (hyper, rustls) routes `<app>.<platform domain>` and custom domains to
//!   the app's endpoints. [`Router::apply`](deis_core::Router::apply) compiles the table and
//!   swaps it in with one atomic store: no reload, no dropped request. Its listeners are
//!   started with [`BuiltinRouter::listen`] and stopped gracefully with [`Listening::shutdown`].
//! - [`NginxRouter`] renders a deterministic `nginx.conf` from the same table, checks it with
//!   `nginx -t` and reloads the running master; a failed check leaves the previous
//!   configuration in force.

mod allow;
mod balance;
mod body;
mod config;
mod headers;
mod metrics;
pub mod nginx;
mod proxy;
mod proxy_protocol;
mod router;
mod server;
mod table;
mod tls;

pub use allow::{AllowList, AllowRule};
pub use config::{Hsts, ListenerKind, ListenerOptions, RouterConfig};
pub use nginx::{NginxConfig, NginxRouter};
pub use proxy_protocol::{ProxyHeader, ProxyProtocolError};
pub use router::BuiltinRouter;
pub use server::Listening;
