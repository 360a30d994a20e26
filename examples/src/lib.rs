//! Runnable examples of Deis in Rust, compiled and run by the test command:
//!
//! - `embed_platform`: the whole platform inside a Rust program, deploying the sample app in
//!   `apps/python-env` and routing a request to it;
//! - `custom_scheduler`: a third-party `Scheduler` backend that passes the conformance suite;
//! - `custom_router`: a third-party `Router` backend that writes a host map for an outside
//!   proxy and passes the conformance suite.
//!
//! Run one with `cargo run -p deis-examples --example <name>`.
