//! The write path of [`super::SqliteStore`]: one rusqlite connection, and a write
//! transaction is one closure run on it on tokio's blocking pool.
//!
//! Why: SQLite lets one writer at a time into a database anyway, so a pool of write
//! connections only queues writers on the database's lock. Through sqlx every statement
//! of a transaction was a hand-off to the connection's worker thread and back (a release
//! append is about seven statements); here the whole transaction, `BEGIN IMMEDIATE` to
//! `COMMIT`, is one hand-off, and its statements are prepared once and cached.
//!
//! Writers of this store queue on an asynchronous mutex (no thread waits for it); the
//! holder of the mutex owns the connection until its transaction has committed or rolled
//! back, even if the caller stops waiting, so no transaction is ever left half-done.
//! Writers in other stores or processes on the same file are serialized by SQLite's write
//! lock, which `BEGIN IMMEDIATE` takes up front and waits for up to the busy timeout.

use super::readers::read_error as db_error;
use super::{Synchronous, BACKEND};
use crate::error::Violation;
use deis_core::{Error, Result};
use rusqlite::types::ToSql;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// Statements kept prepared: every write statement of the store fits.
const STATEMENT_CACHE: usize = 64;

/// The one write connection of a store; `None` once closed.
pub(super) struct Writer {
    connection: Arc<Mutex<Option<Connection>>>,
}

impl Writer {
    /// Opens (creating it if missing) the database at `path` in WAL mode. Blocking.
    pub(super) fn open(
        path: &Path,
        busy_timeout: Duration,
        synchronous: Synchronous,
    ) -> Result<Self> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let connection = Connection::open_with_flags(path, flags).map_err(db_error)?;
        connection.busy_timeout(busy_timeout).map_err(db_error)?;
        // Fails on a file that is not a database.
        let mode: String = connection
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(db_error)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::backend(
                BACKEND,
                std::io::Error::other(format!("SQLite refused WAL mode (journal mode {mode})")),
            ));
        }
        let synchronous = match synchronous {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        };
        connection
            .pragma_update(None, "synchronous", synchronous)
            .map_err(db_error)?;
        connection
            .pragma_update(None, "foreign_keys", true)
            .map_err(db_error)?;
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(Writer {
            connection: Arc::new(Mutex::new(Some(connection))),
        })
    }

    /// Runs `write` in one `BEGIN IMMEDIATE` transaction on tokio's blocking pool and
    /// commits it if `write` returns `Ok`; rolls it back otherwise.
    ///
    /// Fails with `Error::Unavailable` once the store is closed, or when another writer on
    /// the file held the lock beyond the busy timeout.
    pub(super) async fn run<T, F>(&self, write: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T> + Send + 'static,
    {
        let mut guard = Arc::clone(&self.connection).lock_owned().await;
        if guard.is_none() {
            return Err(closed());
        }
        tokio::task::spawn_blocking(move || {
            let connection = guard.as_mut().ok_or_else(closed)?;
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_error)?;
            // On an error (or a panic) the transaction rolls back when dropped.
            let value = write(&transaction)?;
            transaction.commit().map_err(db_error)?;
            Ok(value)
        })
        .await
        .map_err(|e| Error::backend(BACKEND, e))?
    }

    /// Waits for the running transaction, then closes the connection; later writes fail.
    pub(super) async fn close(&self) {
        let connection = self.connection.lock().await.take();
        if let Some(connection) = connection {
            // Closing may checkpoint the WAL: not on the async thread.
            let _ = tokio::task::spawn_blocking(move || drop(connection)).await;
        }
    }
}

fn closed() -> Error {
    Error::Unavailable {
        backend: BACKEND,
        message: "the SQLite store is closed".into(),
    }
}

/// The parameter names the shared SQL text uses (`$1`…). SQLite numbers named parameters
/// in order of first appearance, so they are bound by name, not position (`SET x = $2
/// WHERE id = $1` would otherwise swap them).
const NAMES: [&str; 12] = [
    "$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8", "$9", "$10", "$11", "$12",
];

fn named<'a>(values: &[&'a dyn ToSql]) -> Vec<(&'static str, &'a dyn ToSql)> {
    assert!(values.len() <= NAMES.len(), "too many statement parameters");
    NAMES.iter().copied().zip(values.iter().copied()).collect()
}

/// Runs `sql` with `values` bound to `$1`…; the number of rows it changed.
pub(super) fn execute(
    connection: &Connection,
    sql: &str,
    values: &[&dyn ToSql],
) -> rusqlite::Result<usize> {
    let mut statement = connection.prepare_cached(sql)?;
    statement.execute(named(values).as_slice())
}

/// Runs `sql` (a write with `RETURNING`, or a read) with `values` bound to `$1`…; its
/// first row, decoded.
pub(super) fn returning<T>(
    connection: &Connection,
    sql: &str,
    values: &[&dyn ToSql],
    decode: fn(&rusqlite::Row<'_>) -> Result<T>,
) -> std::result::Result<Option<T>, WriteError> {
    let mut statement = connection.prepare_cached(sql)?;
    let mut rows = statement.query(named(values).as_slice())?;
    let row = match rows.next()? {
        Some(row) => Some(decode(row).map_err(WriteError::Decoded)?),
        None => None,
    };
    // Step to the end, so every row a `RETURNING` statement changes is changed.
    while rows.next()?.is_some() {}
    Ok(row)
}

/// What a statement with a decoded result failed with.
#[derive(Debug)]
pub(super) enum WriteError {
    /// The database refused the statement.
    Database(rusqlite::Error),
    /// The row did not decode.
    Decoded(Error),
}

impl From<rusqlite::Error> for WriteError {
    fn from(error: rusqlite::Error) -> Self {
        WriteError::Database(error)
    }
}

/// Which constraint `error` broke, if any.
pub(super) fn violation(error: &rusqlite::Error) -> Option<Violation> {
    use rusqlite::ffi::{
        SQLITE_CONSTRAINT_FOREIGNKEY, SQLITE_CONSTRAINT_PRIMARYKEY, SQLITE_CONSTRAINT_UNIQUE,
    };
    let rusqlite::Error::SqliteFailure(failure, message) = error else {
        return None;
    };
    match failure.extended_code {
        // SQLite names the columns in the message ("UNIQUE constraint failed: keys.public_key").
        SQLITE_CONSTRAINT_UNIQUE | SQLITE_CONSTRAINT_PRIMARYKEY => {
            Some(Violation::Unique(message.clone().unwrap_or_default()))
        }
        SQLITE_CONSTRAINT_FOREIGNKEY => Some(Violation::ForeignKey),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn parameters_bind_by_name_and_errors_roll_back() {
        let dir = tempfile::tempdir().unwrap();
        let writer = Writer::open(
            &dir.path().join("w.db"),
            Duration::from_secs(5),
            Synchronous::Normal,
        )
        .unwrap();
        writer
            .run(|tx| {
                tx.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT)")
                    .map_err(db_error)?;
                execute(tx, "INSERT INTO t (id, x) VALUES ($1, $2)", &[&1, &"a"])
                    .map_err(db_error)?;
                // `$2` first: bound by name, not by position.
                execute(tx, "UPDATE t SET x = $2 WHERE id = $1", &[&1, &"b"]).map_err(db_error)
            })
            .await
            .unwrap();
        let failed = writer
            .run(|tx| {
                execute(tx, "UPDATE t SET x = 'c' WHERE id = $1", &[&1]).map_err(db_error)?;
                let error =
                    execute(tx, "INSERT INTO t (id, x) VALUES ($1, $2)", &[&1, &"d"]).unwrap_err();
                assert!(matches!(violation(&error), Some(Violation::Unique(_))));
                Err::<(), _>(db_error(error))
            })
            .await;
        assert!(failed.is_err());
        let x = writer
            .run(|tx| {
                returning(tx, "SELECT x FROM t WHERE id = $1", &[&1], |row| {
                    row.get::<_, String>(0).map_err(db_error)
                })
                .map_err(|e| match e {
                    WriteError::Database(e) => db_error(e),
                    WriteError::Decoded(e) => e,
                })
            })
            .await
            .unwrap();
        assert_eq!(
            x.as_deref(),
            Some("b"),
            "the failed transaction rolled back"
        );
        writer.close().await;
        let closed = writer.run(|_| Ok(())).await.unwrap_err();
        assert!(closed.is_retryable(), "{closed:?}");
    }

    #[tokio::test]
    async fn a_transaction_whose_caller_stops_waiting_finishes_before_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let writer = Writer::open(
            &dir.path().join("w.db"),
            Duration::from_secs(5),
            Synchronous::Normal,
        )
        .unwrap();
        writer
            .run(|tx| {
                tx.execute_batch("CREATE TABLE t (x INTEGER)")
                    .map_err(db_error)
            })
            .await
            .unwrap();
        let slow = writer.run(|tx| {
            std::thread::sleep(Duration::from_millis(200));
            execute(tx, "INSERT INTO t (x) VALUES ($1)", &[&1]).map_err(db_error)
        });
        // The caller gives up long before the transaction is done.
        assert!(tokio::time::timeout(Duration::from_millis(20), slow)
            .await
            .is_err());
        let rows = writer
            .run(|tx| {
                tx.query_row("SELECT COUNT(*) FROM t", [], |row| row.get::<_, i64>(0))
                    .map_err(db_error)
            })
            .await
            .unwrap();
        assert_eq!(
            rows, 1,
            "the abandoned transaction committed, then this one ran"
        );
    }
}
