//! The read path of [`super::SqliteStore`]: a small pool of rusqlite connections, each
//! with its own cache of prepared statements.
//!
//! Why not sqlx: its SQLite driver hands every statement to a per-connection worker thread
//! and back through channels, after an asynchronous pool checkout, and that round trip cost
//! ~10 times the query itself (a point lookup takes ~10 µs in SQLite, a `get_app` through
//! sqlx ~120 µs). Here a read checks out a connection from a
//! mutex-guarded list and runs its statements either right on the calling thread (lookups
//! of a few rows through an index: [`Readers::run_point`]) or on a thread of tokio's
//! blocking pool (lists, whose cost grows with the data: [`Readers::run`]).
//!
//! Correctness: in WAL mode readers never wait for the writer and never block it. Each
//! connection is in autocommit mode between calls, so every statement (or every
//! [`snapshot`], for the calls that run several) starts a new read transaction and sees
//! every write committed before it started: a read after an acknowledged write sees it. A
//! cached statement is reset when it goes back to the cache, so no read transaction stays
//! open across calls (which would both hide newer writes and stall checkpoints). The
//! connections are `query_only`: a bug cannot write through them.
//!
//! The writer ([`super::writer`]) and the readers are connections of the same SQLite
//! library in the process, so SQLite's per-process file-lock bookkeeping covers them alike.

use super::BACKEND;
use deis_core::{Error, Result};
use rusqlite::{Connection, OpenFlags};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Statements kept prepared per connection: every read statement of the store fits.
const STATEMENT_CACHE: usize = 64;

/// Read connections, opened on demand up to a bound and kept for reuse.
pub(super) struct Readers {
    path: PathBuf,
    busy_timeout: Duration,
    /// One permit per read on the blocking pool; closed by [`Readers::close`].
    permits: Arc<Semaphore>,
    /// Connections kept open when idle.
    max: usize,
    /// Connections not in use.
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    /// Readers of the database at `path` (which must exist, with its schema), at most
    /// `max` at a time. Opens one connection now so a bad file fails here.
    pub(super) fn open(path: PathBuf, max: u32, busy_timeout: Duration) -> Result<Self> {
        let max = max.max(1) as usize;
        let readers = Readers {
            permits: Arc::new(Semaphore::new(max)),
            max,
            idle: Mutex::new(Vec::new()),
            path,
            busy_timeout,
        };
        let first = readers.connect()?;
        readers.lock_idle().push(first);
        Ok(readers)
    }

    /// Runs `read` with a connection on tokio's blocking pool and returns its result; for
    /// reads whose cost grows with the data (lists). It may wait up to the busy timeout.
    ///
    /// Fails with `Error::Unavailable` once the store is closed.
    pub(super) async fn run<T, F>(self: &Arc<Self>, read: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| closed())?;
        let readers = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let connection = readers.checkout()?;
            // Only here may a read wait for a lock; see `run_point`.
            let result = connection
                .busy_timeout(readers.busy_timeout)
                .map_err(read_error)
                .and_then(|()| read(&connection));
            if connection.busy_timeout(Duration::ZERO).is_ok() {
                readers.checkin(connection);
            }
            result
        })
        .await
        .map_err(|e| Error::backend(BACKEND, e))?
    }

    /// Runs `read`, a lookup of a bounded number of rows through an index, on the calling
    /// thread, and returns its result: such a read costs a few microseconds of CPU, about
    /// what handing it to another thread and back would cost, so it is not handed off.
    ///
    /// It never waits on the calling thread: the connections have no busy timeout outside
    /// [`Readers::run`], so if SQLite cannot start the read at once (a reader only meets a
    /// lock while another connection recovers the WAL index after a crash) the read fails
    /// with `Unavailable` here and is run again through [`Readers::run`], on the blocking
    /// pool, where it may wait. What can still take time on this thread is reading a page
    /// that is not in the operating system's cache, as with any memory-mapped data.
    ///
    /// Fails with `Error::Unavailable` once the store is closed.
    pub(super) async fn run_point<T, F>(self: &Arc<Self>, read: F) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(&Connection) -> Result<T> + Send + 'static,
    {
        if self.permits.is_closed() {
            return Err(closed());
        }
        let connection = self.checkout()?;
        let result = read(&connection);
        self.checkin(connection);
        match result {
            Err(Error::Unavailable { .. }) => self.run(move |c| read(c)).await,
            done => done,
        }
    }

    /// Refuses later reads and closes the idle connections.
    pub(super) fn close(&self) {
        self.permits.close();
        self.lock_idle().clear();
    }

    fn lock_idle(&self) -> MutexGuard<'_, Vec<Connection>> {
        // A panic while holding the lock cannot leave the list half-changed.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An idle connection, or a new one.
    fn checkout(&self) -> Result<Connection> {
        if let Some(connection) = self.lock_idle().pop() {
            return Ok(connection);
        }
        self.connect()
    }

    fn checkin(&self, connection: Connection) {
        if connection.is_autocommit() && !self.permits.is_closed() {
            let mut idle = self.lock_idle();
            if idle.len() < self.max {
                idle.push(connection);
            }
        }
        // Otherwise it is dropped: enough are idle, a read left a transaction open (it
        // cannot, but a stale snapshot must never be reused), or the store is closed.
    }

    fn connect(&self) -> Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let connection = Connection::open_with_flags(&self.path, flags).map_err(read_error)?;
        // No waiting on a lock unless `run` asks for it.
        connection
            .busy_timeout(Duration::ZERO)
            .map_err(read_error)?;
        // Read-write so it can take part in WAL recovery and checkpoints like any other
        // connection, but refusing every statement that would change the database.
        connection
            .pragma_update(None, "query_only", true)
            .map_err(read_error)?;
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(connection)
    }
}

fn closed() -> Error {
    Error::Unavailable {
        backend: BACKEND,
        message: "the SQLite store is closed".into(),
    }
}

/// Runs `read` in one read transaction, so the statements it runs see one snapshot (a page
/// and the count of all pages agree).
pub(super) fn snapshot<T>(
    connection: &Connection,
    read: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    let transaction = connection.unchecked_transaction().map_err(read_error)?;
    let result = read(connection)?;
    // Nothing was written: ending it either way releases the snapshot.
    transaction.commit().map_err(read_error)?;
    Ok(result)
}

/// Maps a rusqlite error: a busy or locked database (a reader only sees that during WAL
/// recovery, beyond the busy timeout) is `Unavailable`, anything else `Backend`. rusqlite's
/// messages name no bound value, so no secret can reach one.
pub(super) fn read_error(error: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode::{CannotOpen, DatabaseBusy, DatabaseLocked};
    match &error {
        rusqlite::Error::SqliteFailure(failure, _)
            if matches!(failure.code, DatabaseBusy | DatabaseLocked | CannotOpen) =>
        {
            Error::Unavailable {
                backend: BACKEND,
                message: error.to_string(),
            }
        }
        _ => Error::backend(BACKEND, error),
    }
}

/// The row `sql` finds, decoded, if there is one.
pub(super) fn one<T>(
    connection: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    decode: fn(&rusqlite::Row<'_>) -> Result<T>,
) -> Result<Option<T>> {
    let mut statement = connection.prepare_cached(sql).map_err(read_error)?;
    let mut rows = statement.query(params).map_err(read_error)?;
    match rows.next().map_err(read_error)? {
        Some(row) => decode(row).map(Some),
        None => Ok(None),
    }
}

/// Whether `sql` finds a row.
pub(super) fn exists(
    connection: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<bool> {
    let mut statement = connection.prepare_cached(sql).map_err(read_error)?;
    statement.exists(params).map_err(read_error)
}

/// The count a `SELECT COUNT(*)` statement gives.
pub(super) fn count(
    connection: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<u64> {
    let mut statement = connection.prepare_cached(sql).map_err(read_error)?;
    let count: i64 = statement
        .query_row(params, |row| row.get(0))
        .map_err(read_error)?;
    Ok(crate::codec::uint(count))
}

/// Every row `sql` finds, decoded.
pub(super) fn all<T>(
    connection: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    mut decode: impl FnMut(&rusqlite::Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut statement = connection.prepare_cached(sql).map_err(read_error)?;
    let mut rows = statement.query(params).map_err(read_error)?;
    let mut items = Vec::new();
    while let Some(row) = rows.next().map_err(read_error)? {
        items.push(decode(row)?);
    }
    Ok(items)
}

/// The rows of one page of a list statement and its `total` column (`None` when the page
/// is empty and the total must be counted separately).
pub(super) fn page<T>(
    connection: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    decode: fn(&rusqlite::Row<'_>) -> Result<T>,
) -> Result<(Option<u64>, Vec<T>)> {
    let mut total = None;
    let items = all(connection, sql, params, |row| {
        if total.is_none() {
            total = Some(super::read_rows::total(row)?);
        }
        decode(row)
    })?;
    Ok((total, items))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn readers(dir: &tempfile::TempDir) -> Arc<Readers> {
        let path = dir.path().join("r.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "PRAGMA journal_mode=WAL; CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (7);",
            )
            .unwrap();
        Arc::new(Readers::open(path, 2, Duration::from_secs(5)).unwrap())
    }

    #[tokio::test]
    async fn a_point_read_that_meets_a_lock_is_retried_on_the_blocking_pool() {
        let dir = tempfile::tempdir().unwrap();
        let readers = readers(&dir);
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let value = readers
            .run_point(move |c| {
                if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                    // What a busy database gives on the calling thread.
                    return Err(read_error(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                        None,
                    )));
                }
                count(c, "SELECT x FROM t", [])
            })
            .await
            .unwrap();
        assert_eq!((value, calls.load(Ordering::SeqCst)), (7, 2));
        // Other errors are final.
        let error = readers
            .run_point(|c| count(c, "SELECT nope FROM t", []))
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Backend { .. }), "{error:?}");
    }

    #[tokio::test]
    async fn connections_are_reused_bounded_and_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let readers = readers(&dir);
        for _ in 0..10 {
            readers
                .run(|c| count(c, "SELECT x FROM t", []))
                .await
                .unwrap();
            readers
                .run_point(|c| count(c, "SELECT x FROM t", []))
                .await
                .unwrap();
        }
        assert!(readers.lock_idle().len() <= 2);
        let write = readers
            .run(|c| {
                c.execute("INSERT INTO t VALUES (1)", [])
                    .map(|_| ())
                    .map_err(read_error)
            })
            .await;
        assert!(write.is_err(), "query_only refuses writes");
        readers.close();
        let closed = readers.run_point(|c| count(c, "SELECT x FROM t", [])).await;
        assert!(matches!(closed, Err(Error::Unavailable { .. })));
    }
}
