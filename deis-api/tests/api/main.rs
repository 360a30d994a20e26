//! Integration tests of the controller's REST API over in-memory backends.

mod bad_input;
mod common;
mod e2e;
mod flows;
mod openapi;
mod permissions;
mod snapshots;
