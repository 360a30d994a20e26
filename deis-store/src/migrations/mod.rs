//! Versioned schema migrations, applied in order when a store opens.
//!
//! Each backend keeps its own SQL files (the dialects differ in types), numbered the same
//! way. The applied versions are recorded in `deis_schema_migrations`; a database whose
//! newest recorded version is beyond the newest migration here was written by a newer
//! deis-store and is refused (see [`crate::SchemaTooNew`]).
//!
//! To change the schema, add a file `NNNN_what.sql` for **both** backends and list it
//! below; never edit a migration that has shipped.

/// One schema change.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    /// Its version: 1, 2, 3… with no gaps.
    pub(crate) version: i64,
    /// What it does, recorded with it.
    pub(crate) description: &'static str,
    /// The statements, run in one transaction.
    pub(crate) sql: &'static str,
}

/// The table that records applied migrations (the same text works on both backends).
pub(crate) const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS deis_schema_migrations (
    version     BIGINT NOT NULL PRIMARY KEY,
    description TEXT   NOT NULL,
    applied_at  BIGINT NOT NULL
)";

/// The newest applied version (0 for a new database).
pub(crate) const CURRENT_VERSION: &str =
    "SELECT COALESCE(MAX(version), 0) FROM deis_schema_migrations";

/// Records an applied migration.
pub(crate) const RECORD: &str =
    "INSERT INTO deis_schema_migrations (version, description, applied_at) VALUES ($1, $2, $3)";

/// The SQLite migrations.
#[cfg(feature = "sqlite")]
pub(crate) const SQLITE: &[Migration] = &[Migration {
    version: 1,
    description: "initial schema",
    sql: include_str!("sqlite/0001_initial.sql"),
}];

/// The PostgreSQL migrations.
#[cfg(feature = "postgres")]
pub(crate) const POSTGRES: &[Migration] = &[Migration {
    version: 1,
    description: "initial schema",
    sql: include_str!("postgres/0001_initial.sql"),
}];

/// The newest version in `migrations`.
pub(crate) fn latest(migrations: &[Migration]) -> i64 {
    migrations.last().map_or(0, |m| m.version)
}

/// What opening a database at `current` must do: the migrations to apply, or the error
/// for a database written by a newer version.
pub(crate) fn plan(
    backend: &'static str,
    migrations: &'static [Migration],
    current: i64,
) -> Result<&'static [Migration], crate::SchemaTooNew> {
    let supported = latest(migrations);
    if current > supported {
        return Err(crate::SchemaTooNew {
            backend,
            found: current,
            supported,
        });
    }
    let done = migrations.partition_point(|m| m.version <= current);
    Ok(&migrations[done..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered_without_gaps(migrations: &[Migration]) {
        for (i, m) in migrations.iter().enumerate() {
            assert_eq!(
                m.version,
                i as i64 + 1,
                "migration {} is misnumbered",
                m.description
            );
            assert!(!m.sql.trim().is_empty());
        }
    }

    #[test]
    fn migrations_are_numbered_without_gaps() {
        #[cfg(feature = "sqlite")]
        numbered_without_gaps(SQLITE);
        #[cfg(feature = "postgres")]
        numbered_without_gaps(POSTGRES);
    }

    #[cfg(all(feature = "sqlite", feature = "postgres"))]
    #[test]
    fn both_backends_have_the_same_versions() {
        let versions = |m: &[Migration]| m.iter().map(|m| m.version).collect::<Vec<_>>();
        assert_eq!(versions(SQLITE), versions(POSTGRES));
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn plans_pending_migrations_and_refuses_newer_databases() {
        assert_eq!(plan("sqlite", SQLITE, 0).unwrap().len(), SQLITE.len());
        assert!(plan("sqlite", SQLITE, latest(SQLITE)).unwrap().is_empty());
        let error = plan("sqlite", SQLITE, latest(SQLITE) + 1).unwrap_err();
        assert_eq!(error.found, latest(SQLITE) + 1);
        assert!(error.to_string().contains("newer"), "{error}");
    }
}
