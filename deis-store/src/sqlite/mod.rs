//! [`SqliteStore`]: the embedded default, one SQLite file in WAL mode.
//!
//! Every write that reads before it writes runs in a `BEGIN IMMEDIATE` transaction, which
//! takes the database's one write lock up front; other writers wait for it (up to the busy
//! timeout) instead of failing, so concurrent writers from any number of connections or
//! processes serialize. Readers are never blocked (WAL).
//!
//! Writes go through an sqlx pool; reads through a small pool of rusqlite connections with
//! cached prepared statements, run on tokio's blocking pool (see [`readers`] for why and
//! how that keeps read-your-writes).

mod read_rows;
mod readers;
mod rows;
mod store;

use crate::error::db_error;
use crate::migrations::{self, CREATE_TABLE, CURRENT_VERSION, RECORD};
use deis_core::{Error, Result, Timestamp};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};
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
    /// Connections in the write pool (writers take turns on the database's one write
    /// lock; the pool lets them queue without holding a thread each).
    pub max_connections: u32,
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
            max_connections: 8,
            max_readers: 4,
            busy_timeout: Duration::from_secs(30),
            synchronous: Synchronous::default(),
        }
    }
}

/// The platform database in one SQLite file: the embedded default backend.
pub struct SqliteStore {
    /// The write path (and the integrity check).
    pool: SqlitePool,
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
        let connect = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match options.synchronous {
                Synchronous::Normal => SqliteSynchronous::Normal,
                Synchronous::Full => SqliteSynchronous::Full,
            })
            .foreign_keys(true)
            .busy_timeout(options.busy_timeout);
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .min_connections(1)
            .connect_with(connect)
            .await
            .map_err(|e| db_error(BACKEND, e))?;
        migrate(&pool, &path).await?;
        // After the migrations, so the readers find the schema.
        let readers = {
            let (path, busy_timeout) = (path.clone(), options.busy_timeout);
            let max = options.max_readers;
            tokio::task::spawn_blocking(move || readers::Readers::open(path, max, busy_timeout))
                .await
                .map_err(|e| Error::backend(BACKEND, e))??
        };
        Ok(SqliteStore {
            pool,
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
        let lines: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_error(BACKEND, e))?;
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
        self.pool.close().await;
    }

    /// A write transaction holding the database's write lock from its start.
    async fn write(&self) -> Result<Transaction<'static, Sqlite>> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| db_error(BACKEND, e))
    }
}

/// Applies pending migrations in one write transaction, refusing a newer database.
async fn migrate(pool: &SqlitePool, path: &Path) -> Result<()> {
    let err = |e| db_error(BACKEND, e);
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(err)?;
    sqlx::query(CREATE_TABLE)
        .execute(&mut *tx)
        .await
        .map_err(err)?;
    let current: i64 = sqlx::query_scalar(CURRENT_VERSION)
        .fetch_one(&mut *tx)
        .await
        .map_err(err)?;
    let pending = migrations::plan(BACKEND, migrations::SQLITE, current)
        .map_err(|e| Error::backend(BACKEND, e))?;
    for migration in pending {
        sqlx::raw_sql(migration.sql)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        sqlx::query(RECORD)
            .bind(migration.version)
            .bind(migration.description)
            .bind(Timestamp::now().as_micros())
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        tracing::info!(
            path = %path.display(),
            version = migration.version,
            description = migration.description,
            "applied SQLite schema migration"
        );
    }
    tx.commit().await.map_err(err)
}
