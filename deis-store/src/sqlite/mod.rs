//! [`SqliteStore`]: the embedded default, one SQLite file in WAL mode.
//!
//! Every write runs in a `BEGIN IMMEDIATE` transaction, which
//! takes the database's one write lock up front; other writers wait for it (up to the busy
//! timeout) instead of failing, so concurrent writers from any number of connections or
//! processes serialize. Readers are never blocked (WAL).
//!
//! Both paths use rusqlite with cached prepared statements. Writes run on one connection,
//! a whole transaction per hand-off to tokio's blocking pool (see [`writer`]); reads on a
//! small pool of `query_only` connections, point lookups on the calling thread and lists on
//! the blocking pool (see [`readers`] for why and how that keeps read-your-writes).

mod read_rows;
mod readers;
mod store;
mod writer;

use crate::migrations::{self, CREATE_TABLE, CURRENT_VERSION, RECORD};
use deis_core::{Error, Result, Timestamp};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub(crate) const BACKEND: &str = "sqlite";

/// When a commit reaches the disk.
///
/// Either way a commit is atomic and survives the process crashing or being killed (it is
/// in the WAL, in the kernel's page cache, before it is acknowledged), and the database is
/// never corrupted. They differ only on a power loss or kernel crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// `synchronous=NORMAL`: the WAL is synced at checkpoints, not at every commit, so
    /// the last commits before a power loss may be lost. The default: a commit costs no
    /// fsync (an fsync is 1–3 ms on a virtual disk).
    #[default]
    Normal,
    /// `synchronous=FULL`: the WAL is synced at every commit, so an acknowledged write
    /// survives power loss too, at the cost of an fsync per write.
    Full,
}

/// How a [`SqliteStore`] opens its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    /// Read connections: at most this many reads run at the same time (each on a thread of
    /// tokio's blocking pool); more wait for a free connection.
    pub max_readers: u32,
    /// How long a writer waits for another writer's lock before the call fails with
    /// `Error::Unavailable`.
    pub busy_timeout: Duration,
    /// When a commit is on disk.
    pub synchronous: Synchronous,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            max_readers: 4,
            busy_timeout: Duration::from_secs(30),
            synchronous: Synchronous::default(),
        }
    }
}

/// The platform database in one SQLite file: the embedded default backend.
pub struct SqliteStore {
    /// The write path (and migrations and the integrity check).
    writer: writer::Writer,
    /// The read path.
    readers: Arc<readers::Readers>,
    path: PathBuf,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating it, and its directories, if missing) the database file at `path`
    /// with the default options, and migrates it to the current schema.
    ///
    /// Fails with an `Error::Backend` whose source is [`crate::SchemaTooNew`] when the file
    /// was written by a newer version.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, SqliteOptions::default()).await
    }

    /// Opens the database file at `path` with `options`; see [`SqliteStore::open`].
    pub async fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| Error::backend(BACKEND, e))?;
        }
        let writer = {
            let (path, busy_timeout) = (path.clone(), options.busy_timeout);
            let synchronous = options.synchronous;
            tokio::task::spawn_blocking(move || {
                writer::Writer::open(&path, busy_timeout, synchronous)
            })
            .await
            .map_err(|e| Error::backend(BACKEND, e))??
        };
        migrate(&writer, &path).await?;
        // After the migrations, so the readers find the schema.
        let readers = {
            let (path, busy_timeout) = (path.clone(), options.busy_timeout);
            let max = options.max_readers;
            tokio::task::spawn_blocking(move || readers::Readers::open(path, max, busy_timeout))
                .await
                .map_err(|e| Error::backend(BACKEND, e))??
        };
        Ok(SqliteStore {
            writer,
            readers: Arc::new(readers),
            path,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs SQLite's `PRAGMA integrity_check`; fails with `Error::Backend` listing the
    /// problems unless the answer is `ok`.
    pub async fn integrity_check(&self) -> Result<()> {
        let lines: Vec<String> = self
            .writer
            .run(|c| {
                readers::all(c, "PRAGMA integrity_check", [], |row| {
                    row.get(0).map_err(readers::read_error)
                })
            })
            .await?;
        if lines.len() == 1 && lines[0] == "ok" {
            Ok(())
        } else {
            Err(crate::error::corrupt(BACKEND, lines.join("; ")))
        }
    }

    /// Closes every connection (checkpointing the WAL). Later calls fail.
    pub async fn close(&self) {
        // Readers first: the last connection to close checkpoints the WAL into the file.
        self.readers.close();
        self.writer.close().await;
    }
}

/// Applies pending migrations in one write transaction, refusing a newer database.
async fn migrate(writer: &writer::Writer, path: &Path) -> Result<()> {
    let path = path.to_path_buf();
    writer
        .run(move |tx| {
            let err = readers::read_error;
            tx.execute_batch(CREATE_TABLE).map_err(err)?;
            let current: i64 = tx
                .query_row(CURRENT_VERSION, [], |row| row.get(0))
                .map_err(err)?;
            let pending = migrations::plan(BACKEND, migrations::SQLITE, current)
                .map_err(|e| Error::backend(BACKEND, e))?;
            for migration in pending {
                tx.execute_batch(migration.sql).map_err(err)?;
                writer::execute(
                    tx,
                    RECORD,
                    &[
                        &migration.version,
                        &migration.description,
                        &Timestamp::now().as_micros(),
                    ],
                )
                .map_err(err)?;
                tracing::info!(
                    path = %path.display(),
                    version = migration.version,
                    description = migration.description,
                    "applied SQLite schema migration"
                );
            }
            Ok(())
        })
        .await
}
