//! The router: a built-in reverse proxy (hyper, rustls) that swaps its route table atomically, and an nginx backend that renders, checks and reloads a configuration.
//!
//! Not written yet.
