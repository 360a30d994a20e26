//! The controller's REST API tests of `tests/api/` (flows, permission matrix, bad input,
//! endpoint snapshots, OpenAPI coverage) over `SqliteStore`, one new database file per
//! harness. They share the in-memory run's snapshots: a JSON body that differs between the
//! stores is a bug.

#[path = "api/bad_input.rs"]
mod bad_input;
#[path = "api/common.rs"]
mod common;
#[path = "api/e2e.rs"]
mod e2e;
#[path = "api/flows/mod.rs"]
mod flows;
#[path = "api/openapi.rs"]
mod openapi;
#[path = "api/permissions.rs"]
mod permissions;
#[path = "api/snapshots.rs"]
mod snapshots;

/// The store this test binary runs the suite on.
const STORE: common::StoreBackend = common::StoreBackend::Sqlite;
