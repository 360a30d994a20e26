//! Conformance suites: free async functions over `&dyn Trait` that every backend's tests
//! call, the in-memory ones included, so "pluggable" is tested rather than claimed.
//!
//! The functions panic (through `assert!`) on the first violation, naming the rule.
//! Optional behaviour is a parameter that is asserted either way, never silently skipped.

pub mod discovery;
pub mod router;
pub mod scheduler;
pub mod store;

use crate::error::Error;

/// Asserts that `result` failed with the expected kind of error, naming `what` otherwise.
#[track_caller]
pub(crate) fn expect_err<T: std::fmt::Debug>(
    what: &str,
    result: Result<T, Error>,
    matches: fn(&Error) -> bool,
) {
    match result {
        Err(error) if matches(&error) => {}
        other => panic!("{what}: unexpected result {other:?}"),
    }
}
