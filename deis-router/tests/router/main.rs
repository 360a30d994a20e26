//! The built-in router through real clients: curl, reqwest, WebSocket and rustls.

mod common;
mod limits;
mod protocols;
mod routing;
mod tls;
