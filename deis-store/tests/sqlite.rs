//! SqliteStore: the conformance suite, concurrency across connections and pools,
//! migrations and refusing a newer database.
#![cfg(feature = "sqlite")]

mod common;

use deis_core::conformance::store as suite;
use deis_core::model::App;
use deis_core::Store;
use deis_store::{SchemaTooNew, SqliteOptions, SqliteStore, Synchronous};
use sqlx::Connection;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_store_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("deis.db")).await.unwrap();
    suite::run_all(&store).await;
    store.integrity_check().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_suite_passes_with_one_reader_and_full_sync() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions {
        max_readers: 1,
        synchronous: Synchronous::Full,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open_with(dir.path().join("deis.db"), options)
        .await
        .unwrap();
    suite::run_all(&store).await;
}

/// Two stores on one file are two pools: the write lock, not the process, serializes them.
async fn two_stores() -> (tempfile::TempDir, SqliteStore, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deis.db");
    let a = SqliteStore::open(&path).await.unwrap();
    let b = SqliteStore::open(&path).await.unwrap();
    (dir, a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn appends_from_two_pools_have_no_gap_or_duplicate() {
    let (_dir, a, b) = two_stores().await;
    common::appends_race_across_stores(&a, &b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_first_user_is_admin_once_across_pools() {
    let (_dir, a, b) = two_stores().await;
    common::first_user_race_across_stores(&a, &b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stale_config_writes_lose_across_pools() {
    let (_dir, a, b) = two_stores().await;
    common::config_writers_race_across_stores(&a, &b).await;
}

#[tokio::test]
async fn open_creates_directories_and_reopening_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/data/deis.db");
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.path(), path);
    store.create_user(suite::new_user("keeper")).await.unwrap();
    store.create_app(App::new("kept", "keeper")).await.unwrap();
    store.close().await;
    assert!(path.is_file());

    let again = SqliteStore::open(&path).await.unwrap();
    assert!(again.get_user("keeper").await.unwrap().is_superuser);
    assert_eq!(again.latest_release("kept").await.unwrap().version, 1);
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM deis_schema_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(versions, [1], "each migration is applied and recorded once");
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn a_database_written_by_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deis.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store.create_user(suite::new_user("old")).await.unwrap();
    store.close().await;

    // A newer deis-store migrated it further.
    let url = format!("sqlite://{}", path.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query(
        "INSERT INTO deis_schema_migrations (version, description, applied_at) \
         VALUES (99, 'from the future', 0)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query("CREATE TABLE future_things (x INTEGER)")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    let error = SqliteStore::open(&path).await.unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("schema version 99") && message.contains("newer"),
        "the message says what is wrong: {message}"
    );
    let deis_core::Error::Backend { source, .. } = &error else {
        panic!("expected a Backend error, got {error:?}");
    };
    let too_new = source
        .downcast_ref::<SchemaTooNew>()
        .expect("the source is SchemaTooNew");
    assert_eq!((too_new.found, too_new.supported), (99, 1));

    // Nothing was touched.
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let newest: i64 = sqlx::query_scalar("SELECT MAX(version) FROM deis_schema_migrations")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(newest, 99);
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(users, 1);
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deis.db");
    std::fs::write(&path, vec![b'x'; 8192]).unwrap();
    let error = SqliteStore::open(&path).await.unwrap_err();
    assert!(
        matches!(error, deis_core::Error::Backend { .. }),
        "{error:?}"
    );
}

/// Read-your-writes with the separate read path: writers append to their own apps, and
/// right after each acknowledged append a read through the same store, and through a
/// second store on the same file, sees that release or a newer one (never an older
/// snapshot), while the other writers keep the database busy.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_see_every_acknowledged_write() {
    let (_dir, a, b) = two_stores().await;
    let (a, b) = (std::sync::Arc::new(a), std::sync::Arc::new(b));
    a.create_user(suite::new_user("ryw")).await.unwrap();
    let writers = (0..4).map(|w| {
        let (a, b) = (a.clone(), b.clone());
        tokio::spawn(async move {
            let app = format!("ryw-{w}");
            a.create_app(App::new(&app, "ryw")).await.unwrap();
            for n in 0..40 {
                let writer: &SqliteStore = if n % 2 == 0 { &a } else { &b };
                let acked = writer
                    .append_release(common::deploy(&app, "ryw", n))
                    .await
                    .unwrap();
                for reader in [&a, &b] {
                    let latest = reader.latest_release(&app).await.unwrap();
                    assert!(latest.version >= acked.version, "{latest:?} < {acked:?}");
                    let page = reader
                        .list_releases(&app, deis_core::model::PageRequest::first(1))
                        .await
                        .unwrap();
                    assert_eq!(page.total, acked.version);
                    let build = acked.build.expect("a deploy has a build");
                    assert_eq!(reader.get_build(&app, build).await.unwrap().uuid, build);
                }
            }
        })
    });
    for writer in writers.collect::<Vec<_>>() {
        writer.await.unwrap();
    }
}

#[tokio::test]
async fn a_closed_store_refuses_reads_and_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("deis.db")).await.unwrap();
    store.create_user(suite::new_user("gone")).await.unwrap();
    store.close().await;
    let read = store.get_user("gone").await.unwrap_err();
    assert!(read.is_retryable(), "{read:?}");
    let write = store
        .create_user(suite::new_user("later"))
        .await
        .unwrap_err();
    assert!(write.is_retryable(), "{write:?}");
}
