//! Mapping database errors into `deis_core::Error`.
//!
//! Unique violations become `AlreadyExists` and foreign-key violations `NotFound` at the
//! call sites, which know what collided; here is the rest: connection trouble and lock
//! contention become `Unavailable` (retryable), everything else `Backend`.

use deis_core::Error;
use std::fmt;

/// The database was written by a newer version of deis-store: its schema version is
/// beyond the migrations this build knows, so the store refuses to open it rather than
/// risk corrupting it.
///
/// Returned as the source of an `Error::Backend`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaTooNew {
    /// The backend, `sqlite` or `postgres`.
    pub backend: &'static str,
    /// The schema version found in the database.
    pub found: i64,
    /// The newest schema version this build knows.
    pub supported: i64,
}

impl fmt::Display for SchemaTooNew {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the database has schema version {}, but this version of deis-store knows only \
             versions up to {}: it was written by a newer Deis. Refusing to open it so it is \
             not corrupted; upgrade Deis (or restore a backup made by this version)",
            self.found, self.supported
        )
    }
}

impl std::error::Error for SchemaTooNew {}

/// How a failed statement broke a constraint, if it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Violation {
    /// A UNIQUE or PRIMARY KEY constraint; the text names the constraint or columns.
    Unique(String),
    /// A FOREIGN KEY constraint.
    ForeignKey,
}

#[cfg(feature = "postgres")]
/// Which constraint `error` broke, if any.
pub(crate) fn violation(error: &sqlx::Error) -> Option<Violation> {
    let sqlx::Error::Database(db) = error else {
        return None;
    };
    if db.is_unique_violation() {
        // PostgreSQL names the constraint; SQLite names the columns in the message
        // ("UNIQUE constraint failed: keys.public_key").
        let what = db
            .constraint()
            .map(str::to_owned)
            .unwrap_or_else(|| db.message().to_owned());
        Some(Violation::Unique(what))
    } else if db.is_foreign_key_violation() {
        Some(Violation::ForeignKey)
    } else {
        None
    }
}

#[cfg(feature = "postgres")]
/// Whether a database error is lock contention or a serialization failure, which the same
/// call may get past when tried again.
pub(crate) fn is_transient(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = error else {
        return false;
    };
    let Some(code) = db.code() else {
        return false;
    };
    if let Ok(sqlite_code) = code.parse::<i64>() {
        // SQLite result codes: the primary code is the low byte. 5 = BUSY, 6 = LOCKED.
        return matches!(sqlite_code & 0xff, 5 | 6);
    }
    // PostgreSQL SQLSTATEs: serialization failure, deadlock, lock not available.
    matches!(code.as_ref(), "40001" | "40P01" | "55P03")
}

#[cfg(feature = "postgres")]
/// Maps any database error that the call site did not handle.
pub(crate) fn db_error(backend: &'static str, error: sqlx::Error) -> Error {
    let unavailable = match &error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            is_transient(&error)
                || db.code().is_some_and(|code| {
                    // PostgreSQL: connection exceptions, insufficient resources, operator
                    // intervention (shutdown, cannot connect now).
                    code.starts_with("08") || code.starts_with("53") || code.starts_with("57P")
                })
        }
        _ => false,
    };
    if unavailable {
        Error::Unavailable {
            backend,
            message: error.to_string(),
        }
    } else {
        Error::backend(backend, error)
    }
}

/// A value read from the database that does not decode: the database was changed by hand
/// or is damaged.
#[derive(Debug)]
pub(crate) struct Corrupt {
    pub(crate) what: String,
}

impl fmt::Display for Corrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unreadable value in the database: {}", self.what)
    }
}

impl std::error::Error for Corrupt {}

/// An `Error::Backend` for a value that does not decode.
pub(crate) fn corrupt(backend: &'static str, what: impl Into<String>) -> Error {
    Error::backend(backend, Corrupt { what: what.into() })
}

#[cfg(feature = "postgres")]
/// How many times an append is tried when it collides with a concurrent one (a unique
/// violation on the version or revision, a serialization failure, a busy database).
pub(crate) const APPEND_ATTEMPTS: u32 = 5;

#[cfg(feature = "postgres")]
/// What a failed attempt at appending a release calls for.
pub(crate) enum AppendFailure {
    /// Collided with a concurrent writer: try again.
    Conflict(sqlx::Error),
    /// Final.
    Fatal(Error),
}

#[cfg(feature = "postgres")]
impl From<Error> for AppendFailure {
    fn from(error: Error) -> Self {
        AppendFailure::Fatal(error)
    }
}

#[cfg(feature = "postgres")]
impl AppendFailure {
    /// Classifies a database error of an append: contention and a taken version number
    /// are conflicts, the rest final.
    pub(crate) fn from_sqlx(backend: &'static str, error: sqlx::Error) -> Self {
        let version_taken = matches!(violation(&error), Some(Violation::Unique(ref what)) if what.contains("version"));
        if is_transient(&error) || version_taken {
            AppendFailure::Conflict(error)
        } else {
            AppendFailure::Fatal(db_error(backend, error))
        }
    }

    /// The error to report when no more attempts are made.
    pub(crate) fn into_error(self, backend: &'static str) -> Error {
        match self {
            AppendFailure::Conflict(error) => db_error(backend, error),
            AppendFailure::Fatal(error) => error,
        }
    }
}

#[cfg(feature = "postgres")]
/// Runs `attempt` until it succeeds, fails for good, or has collided
/// [`APPEND_ATTEMPTS`] times (then `Error::Unavailable`, which is retryable).
pub(crate) async fn with_retries<T, F, Fut>(
    backend: &'static str,
    app: &str,
    mut attempt: F,
) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, AppendFailure>>,
{
    let mut tries = 1;
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(AppendFailure::Fatal(error)) => return Err(error),
            Err(AppendFailure::Conflict(error)) if tries >= APPEND_ATTEMPTS => {
                return Err(Error::Unavailable {
                    backend,
                    message: format!(
                        "appending a release to {app} kept colliding with concurrent writers \
                         ({tries} attempts): {error}"
                    ),
                })
            }
            Err(AppendFailure::Conflict(error)) => {
                tracing::debug!(backend, app, tries, %error, "release append collided; retrying");
                tries += 1;
                // A short, growing pause lets the other writer finish.
                tokio::time::sleep(std::time::Duration::from_millis(u64::from(tries) * 5)).await;
            }
        }
    }
}
