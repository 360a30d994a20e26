//! [`PostgresStore`]: the platform database on a PostgreSQL server (feature `postgres`),
//! for several controllers sharing one database.
//!
//! Concurrency is the database's: release numbering and config revisions are decided in a
//! transaction that holds the app's row lock, with `UNIQUE (app, version)` behind it and a
//! bounded retry on a collision; registrations take turns on an advisory lock (nothing else
//! waits for it) for the first-user-is-admin rule.

mod rows;
mod store;

use crate::error::db_error;
use crate::migrations::{self, CREATE_TABLE, CURRENT_VERSION, RECORD};
use deis_core::{Error, Result, Timestamp};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, Postgres, Transaction};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

pub(crate) const BACKEND: &str = "postgres";

/// An arbitrary, fixed key for the advisory lock that serializes migrations when several
/// controllers start at once ("deis" in ASCII).
const MIGRATION_LOCK: i64 = 0x6465_6973;

/// How a [`PostgresStore`] connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// Connections in the pool.
    pub max_connections: u32,
    /// How long a call waits for a free connection (or to connect) before it fails with
    /// `Error::Unavailable`.
    pub acquire_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(30),
        }
    }
}

/// The platform database on a PostgreSQL server.
pub struct PostgresStore {
    pool: PgPool,
    /// The URL without its password.
    url: String,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`)
    /// with the default options, and migrates it to the current schema.
    ///
    /// Fails with an `Error::Backend` whose source is [`crate::SchemaTooNew`] when the
    /// database was written by a newer version, and with `Error::Unavailable` when the
    /// server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, PostgresOptions::default()).await
    }

    /// Connects with `options`; see [`PostgresStore::connect`].
    pub async fn connect_with(url: &str, options: PostgresOptions) -> Result<Self> {
        let redacted = crate::url::redact(url);
        let connect = PgConnectOptions::from_str(url).map_err(|e| {
            Error::Invalid(deis_core::ValidationError::new(
                "store_url",
                "malformed",
                format!("`{redacted}` is not a usable PostgreSQL URL: {e}"),
            ))
        })?;
        let connect = connect.application_name("deis");
        // One direct connection first: it reports why the server cannot be used
        // (refused, no such database, authentication…) where a pool would only time out,
        // and it runs the migrations.
        let mut conn = tokio::time::timeout(
            options.acquire_timeout,
            PgConnection::connect_with(&connect),
        )
        .await
        .map_err(|_| Error::Unavailable {
            backend: BACKEND,
            message: format!(
                "no connection to {redacted} within {:?}",
                options.acquire_timeout
            ),
        })?
        .map_err(|e| db_error(BACKEND, e))?;
        migrate(&mut conn, &redacted).await?;
        conn.close().await.map_err(|e| db_error(BACKEND, e))?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_lazy_with(connect);
        Ok(PostgresStore {
            pool,
            url: redacted,
        })
    }

    /// Closes every connection. Later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A transaction (READ COMMITTED; the writes that need it take locks).
    async fn write(&self) -> Result<Transaction<'static, Postgres>> {
        self.pool.begin().await.map_err(|e| db_error(BACKEND, e))
    }
}

/// Applies pending migrations in one transaction under an advisory lock (controllers that
/// start together take turns), refusing a newer database.
async fn migrate(conn: &mut PgConnection, url: &str) -> Result<()> {
    let err = |e| db_error(BACKEND, e);
    let mut tx = conn.begin().await.map_err(err)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(err)?;
    sqlx::query(CREATE_TABLE)
        .execute(&mut *tx)
        .await
        .map_err(err)?;
    let current: i64 = sqlx::query_scalar(CURRENT_VERSION)
        .fetch_one(&mut *tx)
        .await
        .map_err(err)?;
    let pending = migrations::plan(BACKEND, migrations::POSTGRES, current)
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
            url,
            version = migration.version,
            description = migration.description,
            "applied PostgreSQL schema migration"
        );
    }
    tx.commit().await.map_err(err)
}
