//! Store backends for Deis: `SqliteStore` (the embedded default, one file in the data
//! directory), `PostgresStore` (feature `postgres`, for several controllers sharing one
//! database), [`blob::BlobStore`] for slugs and build caches, and [`logs::LogStore`] for
//! app logs (bounded in memory and on disk, a syslog listener, drains).
//!
//! Pick a backend by URL with [`open_store`]:
//!
//! | URL | backend | feature |
//! |---|---|---|
//! | `sqlite:///var/lib/deis/deis.db` | `SqliteStore`, file and directories created if missing | `sqlite` (default) |
//! | `postgres://user@host/db` (or `postgresql://`) | `PostgresStore` | `postgres` |
//! | `memory://` | [`deis_core::memory::MemoryStore`] | always |
//!
//! Both SQL backends pass `deis_core::conformance::store::run_all`. The database does the
//! concurrency control: release numbers come from a write transaction that holds the app
//! (a row lock on PostgreSQL, the database write lock on SQLite) with `UNIQUE(app, version)`
//! behind it, config writes compare the revision inside that transaction, and the first
//! user becomes the administrator inside a serialized insert. The schema is versioned and
//! migrated on open; a database written by a newer version is refused with
//! `SchemaTooNew` rather than touched.
//!
//! Secrets (password hashes, token hashes, certificate keys) are stored as given and never
//! logged: no SQL text contains a value (everything is bound), and no row is traced.

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod codec;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod error;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod migrations;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
mod url;

pub mod blob;
pub mod logs;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use error::SchemaTooNew;
#[cfg(feature = "postgres")]
pub use postgres::{PostgresOptions, PostgresStore};
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteOptions, SqliteStore, Synchronous};
pub use url::open_store;
