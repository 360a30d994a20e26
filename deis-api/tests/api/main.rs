//! Integration tests of the controller's REST API over in-memory backends.

mod common;
mod flows;
