//! The routers through real clients: the built-in one with curl, reqwest, WebSocket and
//! rustls clients; the nginx backend with the real nginx binary.

mod common;
mod fast_path;
mod limits;
mod nginx;
mod pool;
mod protocols;
mod routing;
mod tls;
