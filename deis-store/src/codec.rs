//! Conversions shared by the SQL backends: JSON text columns, integer columns, pages.

use crate::error::corrupt;
use deis_core::model::PageRequest;
use deis_core::{Result, Timestamp};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A map as JSON text, for the TEXT columns that hold maps (procfile, values, limits…).
pub(crate) fn to_json<T: Serialize>(value: &T) -> String {
    // The maps hold strings and integers only: serializing them cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned())
}

/// Reads a JSON text column.
pub(crate) fn from_json<T: DeserializeOwned>(
    backend: &'static str,
    column: &str,
    text: &str,
) -> Result<T> {
    serde_json::from_str(text).map_err(|e| corrupt(backend, format!("{column}: {e}")))
}

/// A `u64` (version, revision, page bound) as the `BIGINT` the databases keep, saturating
/// (no stored number comes near `i64::MAX`).
pub(crate) fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A stored `BIGINT` as the model's `u64`.
pub(crate) fn uint(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// `LIMIT` and `OFFSET` for a page.
pub(crate) fn limit_offset(page: PageRequest) -> (i64, i64) {
    (int(page.limit), int(page.offset))
}

/// A timestamp at the precision the databases keep (microseconds), so a record returned
/// from a write equals the same record read back.
pub(crate) fn stored(time: Timestamp) -> Timestamp {
    Timestamp::from_micros(time.as_micros())
}

/// The message of the `Precondition` error for a stale config revision.
pub(crate) fn stale_config(app: &str, current: u64, expected: u64) -> String {
    format!("config of {app} changed (revision {current}, expected {expected}); read it again")
}

/// The message of the `Precondition` error for discarding a release that is not the
/// latest (or is v1).
pub(crate) fn not_discardable(app: &str, latest: u64) -> String {
    format!("only the latest release of {app} (v{latest}) can be discarded, and never v1")
}

/// The message of the `Precondition` error for deleting a user who still owns apps.
pub(crate) fn still_owns_apps(username: &str, count: u64) -> String {
    format!("{username} still owns {count} app(s); transfer or destroy them first")
}
