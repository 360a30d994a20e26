//! PostgresStore against the real server that scripts/test starts
//! (`DEIS_TEST_POSTGRES_URL`; the tests fail, never skip, without it): the conformance
//! suite, concurrency across pools, migrations. Each test gets its own fresh database.
#![cfg(feature = "postgres")]

mod common;

use common::ScratchDatabase;
use deis_core::conformance::store as suite;
use deis_core::Store;
use deis_store::{open_store, PostgresOptions, PostgresStore, SchemaTooNew};
use sqlx::Connection;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_store_passes_the_conformance_suite() {
    let db = ScratchDatabase::create("t_conformance").await;
    let store = PostgresStore::connect(&db.url).await.unwrap();
    suite::run_all(&store).await;
    store.close().await;
    db.drop_now().await;
}

async fn two_stores(prefix: &str) -> (ScratchDatabase, PostgresStore, PostgresStore) {
    let db = ScratchDatabase::create(prefix).await;
    let options = PostgresOptions {
        max_connections: 4,
        ..PostgresOptions::default()
    };
    let a = PostgresStore::connect_with(&db.url, options.clone())
        .await
        .unwrap();
    let b = PostgresStore::connect_with(&db.url, options).await.unwrap();
    (db, a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn appends_from_two_pools_have_no_gap_or_duplicate() {
    let (db, a, b) = two_stores("t_appends").await;
    common::appends_race_across_stores(&a, &b).await;
    a.close().await;
    b.close().await;
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_first_user_is_admin_once_across_pools() {
    let (db, a, b) = two_stores("t_first_user").await;
    common::first_user_race_across_stores(&a, &b).await;
    a.close().await;
    b.close().await;
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stale_config_writes_lose_across_pools() {
    let (db, a, b) = two_stores("t_config").await;
    common::config_writers_race_across_stores(&a, &b).await;
    a.close().await;
    b.close().await;
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrations_run_once_even_when_controllers_start_together() {
    let db = ScratchDatabase::create("t_migrate").await;
    let opens = (0..4).map(|_| PostgresStore::connect(&db.url));
    let stores: Vec<PostgresStore> = futures::future::try_join_all(opens).await.unwrap();
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM deis_schema_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(versions, [1]);
    for store in stores {
        store.close().await;
    }
    conn.close().await.unwrap();
    db.drop_now().await;
}

#[tokio::test]
async fn a_database_written_by_a_newer_version_is_refused() {
    let db = ScratchDatabase::create("t_newer").await;
    let store = PostgresStore::connect(&db.url).await.unwrap();
    store.create_user(suite::new_user("old")).await.unwrap();
    store.close().await;
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::query(
        "INSERT INTO deis_schema_migrations (version, description, applied_at) \
         VALUES (42, 'from the future', 0)",
    )
    .execute(&mut conn)
    .await
    .unwrap();

    let error = PostgresStore::connect(&db.url).await.unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("schema version 42") && message.contains("newer"),
        "{message}"
    );
    let deis_core::Error::Backend { source, .. } = &error else {
        panic!("expected a Backend error, got {error:?}");
    };
    let too_new = source.downcast_ref::<SchemaTooNew>().unwrap();
    assert_eq!((too_new.found, too_new.supported), (42, 1));
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(users, 1, "nothing was touched");
    conn.close().await.unwrap();
    db.drop_now().await;
}

#[tokio::test]
async fn open_store_chooses_postgres_by_url() {
    let db = ScratchDatabase::create("t_url").await;
    let store = open_store(&db.url).await.unwrap();
    assert_eq!(store.backend(), "postgres");
    store.create_user(suite::new_user("via-url")).await.unwrap();
    let alias = db.url.replacen("postgres://", "postgresql://", 1);
    let again = open_store(&alias).await.unwrap();
    assert!(again.get_user("via-url").await.unwrap().is_superuser);
    drop((store, again));
    db.drop_now().await;
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_and_the_password_stays_hidden() {
    // Nothing listens on port 1 of loopback: the connection is refused at once.
    let options = PostgresOptions {
        acquire_timeout: std::time::Duration::from_secs(2),
        ..PostgresOptions::default()
    };
    let error = PostgresStore::connect_with("postgres://deis:hunter2@127.0.0.1:1/deis", options)
        .await
        .unwrap_err();
    eprintln!("{error}");
    assert!(error.is_retryable(), "{error:?}");
    assert!(!format!("{error} {error:?}").contains("hunter2"));
}
