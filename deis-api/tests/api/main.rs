//! Integration tests of the controller's REST API over the in-memory store. The same tests
//! run over SQLite from `tests/api_sqlite.rs`, against the same snapshots.

mod bad_input;
mod common;
mod e2e;
mod flows;
mod openapi;
mod permissions;
mod snapshots;

/// The store this test binary runs the suite on.
const STORE: common::StoreBackend = common::StoreBackend::Memory;
