//! Store latency with 10,000 apps of 10 releases each (100,000 releases, 1,000 users with
//! tokens): get app, list releases (a page of 100), append release and token lookup, for
//! SQLite and, when `DEIS_TEST_POSTGRES_URL` is set and the `postgres` feature is on,
//! PostgreSQL.
//!
//! ```sh
//! cargo bench -p deis-store --bench store -- --warm-up-time 1 --measurement-time 3
//! DEIS_TEST_POSTGRES_URL=postgres://… cargo bench -p deis-store --features postgres --bench store
//! ```
//!
//! After criterion's estimates (means), each backend's p50 / p90 / p99 over 2,000 single
//! calls is printed. The data is seeded in bulk transactions (multi-row inserts), not
//! through the `Store` API one row at a time.

use criterion::Criterion;
use deis_core::conformance::store::new_user;
use deis_core::model::{Build, PageRequest, TokenHash};
use deis_core::store::{BuildChoice, ConfigChoice, NewRelease};
use deis_core::{Store, Timestamp};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

const APPS: usize = 10_000;
const RELEASES_PER_APP: usize = 10;
const USERS: usize = 1_000;
/// Apps per seeding transaction.
const APPS_PER_TX: usize = 1_000;
/// Rows per multi-row INSERT statement (under SQLite's 32,766 bound parameters).
const ROWS_PER_INSERT: usize = 1_000;
const SAMPLES: usize = 2_000;

fn app_name(i: usize) -> String {
    format!("app-{i:05}")
}

fn user_name(i: usize) -> String {
    format!("user-{i:04}")
}

fn token(i: usize) -> TokenHash {
    TokenHash(format!("{:064x}", i as u128 * 0x9e37_79b9_7f4a_7c15))
}

/// A cheap spread of indexes so consecutive calls touch different rows.
fn next_index(counter: &AtomicUsize, n: usize) -> usize {
    counter.fetch_add(7919, Ordering::Relaxed) % n
}

fn deploy(app: &str, owner: &str) -> NewRelease {
    let mut build = Build::new(app, owner, &format!("{app}:bench"));
    build.sha = "abcdef0".into();
    build.procfile.insert("web".into(), "./server".into());
    NewRelease {
        app: app.into(),
        owner: owner.into(),
        summary: format!("{owner} deployed abcdef0"),
        build: BuildChoice::New(Box::new(build)),
        config: ConfigChoice::Current,
    }
}

/// One seeded row's values; UUIDs as text (PostgreSQL casts them).
enum Value {
    Text(String),
    Uuid(String),
    Int(i64),
    Null,
}

/// The rows of one table for one seeding transaction.
struct Rows {
    table: &'static str,
    columns: &'static str,
    rows: Vec<Vec<Value>>,
}

/// Everything for apps `range`: apps, their first configs, builds and releases, laid out
/// exactly as the store writes them (release v1 has no build; v2… each have one).
fn seed_rows(range: std::ops::Range<usize>) -> Vec<Rows> {
    let now = Timestamp::now().as_micros();
    let uuid = || Value::Uuid(uuid::Uuid::new_v4().to_string());
    let text = |s: &str| Value::Text(s.to_owned());
    let mut apps = Vec::new();
    let mut configs = Vec::new();
    let mut builds = Vec::new();
    let mut releases = Vec::new();
    for i in range {
        let (app, owner) = (app_name(i), user_name(i % USERS));
        apps.push(vec![
            text(&app),
            uuid(),
            text(&owner),
            text(r#"{"web":1}"#),
            Value::Int(now),
            Value::Int(now),
        ]);
        let config = uuid::Uuid::new_v4().to_string();
        configs.push(vec![
            Value::Uuid(config.clone()),
            text(&app),
            text(&owner),
            Value::Int(1),
            text("{}"),
            text("{}"),
            text("{}"),
            text("{}"),
            Value::Int(now),
            Value::Int(now),
        ]);
        for version in 1..=RELEASES_PER_APP {
            let build = if version == 1 {
                Value::Null
            } else {
                let build = uuid::Uuid::new_v4().to_string();
                builds.push(vec![
                    Value::Uuid(build.clone()),
                    text(&app),
                    text(&owner),
                    text(&format!("{app}:v{version}")),
                    text("abcdef0"),
                    text(r#"{"web":"./server"}"#),
                    text(""),
                    Value::Int(now),
                    Value::Int(now),
                ]);
                Value::Uuid(build)
            };
            releases.push(vec![
                uuid(),
                text(&app),
                Value::Int(version as i64),
                text(&owner),
                text(&format!("{owner} deployed v{version}")),
                Value::Uuid(config.clone()),
                build,
                Value::Int(now),
                Value::Int(now),
            ]);
        }
    }
    vec![
        Rows {
            table: "apps",
            columns: "id, uuid, owner, structure, created, updated",
            rows: apps,
        },
        Rows {
            table: "configs",
            columns: "uuid, app, owner, revision, env, memory, cpu, tags, created, updated",
            rows: configs,
        },
        Rows {
            table: "builds",
            columns: "uuid, app, owner, image, sha, procfile, dockerfile, created, updated",
            rows: builds,
        },
        Rows {
            table: "releases",
            columns: "uuid, app, version, owner, summary, config, build, created, updated",
            rows: releases,
        },
    ]
}

/// Inserts `tables` in one transaction with multi-row INSERTs. A macro because the two
/// drivers' query builders are different types; `$uuid_cast` is what follows a UUID
/// parameter (`::uuid` on PostgreSQL).
macro_rules! insert_tables {
    ($pool:expr, $db:ty, $uuid_cast:expr, $tables:expr) => {{
        let mut tx = $pool.begin().await.expect("begin");
        for rows in $tables {
            for chunk in rows.rows.chunks(ROWS_PER_INSERT) {
                let mut insert = sqlx::QueryBuilder::<$db>::new(format!(
                    "INSERT INTO {} ({}) ",
                    rows.table, rows.columns
                ));
                insert.push_values(chunk, |mut row, values| {
                    for value in values {
                        match value {
                            Value::Text(s) => {
                                row.push_bind(s.clone());
                            }
                            Value::Uuid(s) => {
                                row.push_bind(s.clone());
                                row.push_unseparated($uuid_cast);
                            }
                            Value::Int(n) => {
                                row.push_bind(*n);
                            }
                            Value::Null => {
                                row.push("NULL");
                            }
                        }
                    }
                });
                insert.build().execute(&mut *tx).await.expect("bulk insert");
            }
        }
        tx.commit().await.expect("commit");
    }};
}

/// Users and tokens through the store (1,000 of them is quick), the rest in bulk.
async fn seed_users(store: &dyn Store) {
    for i in 0..USERS {
        store.create_user(new_user(&user_name(i))).await.unwrap();
        store.set_token(&user_name(i), &token(i)).await.unwrap();
    }
}

async fn seed_sqlite(path: &std::path::Path) {
    let pool = sqlx::SqlitePool::connect_with(
        sqlx::sqlite::SqliteConnectOptions::new()
            .filename(path)
            .foreign_keys(true),
    )
    .await
    .expect("open the bench database");
    for start in (0..APPS).step_by(APPS_PER_TX) {
        let tables = seed_rows(start..(start + APPS_PER_TX).min(APPS));
        insert_tables!(pool, sqlx::Sqlite, "", &tables);
    }
    sqlx::query("ANALYZE").execute(&pool).await.unwrap();
    pool.close().await;
}

#[cfg(feature = "postgres")]
async fn seed_postgres(url: &str) {
    let pool = sqlx::PgPool::connect(url).await.expect("connect");
    for start in (0..APPS).step_by(APPS_PER_TX) {
        let tables = seed_rows(start..(start + APPS_PER_TX).min(APPS));
        insert_tables!(pool, sqlx::Postgres, "::uuid", &tables);
    }
    sqlx::query("ANALYZE").execute(&pool).await.unwrap();
    pool.close().await;
}

/// The four measured operations.
fn bench_backend(criterion: &mut Criterion, runtime: &Runtime, name: &str, store: &Arc<dyn Store>) {
    let mut group = criterion.benchmark_group(name);
    let counter = AtomicUsize::new(0);
    group.bench_function("get_app", |b| {
        b.to_async(runtime).iter(|| {
            let app = app_name(next_index(&counter, APPS));
            let store = store.clone();
            async move { store.get_app(&app).await.unwrap() }
        })
    });
    group.bench_function("list_releases_page_100", |b| {
        b.to_async(runtime).iter(|| {
            let app = app_name(next_index(&counter, APPS));
            let store = store.clone();
            async move {
                let page = store
                    .list_releases(&app, PageRequest::first(100))
                    .await
                    .unwrap();
                assert!(page.items.len() >= RELEASES_PER_APP);
            }
        })
    });
    group.bench_function("append_release", |b| {
        b.to_async(runtime).iter(|| {
            let i = next_index(&counter, APPS);
            let store = store.clone();
            async move {
                store
                    .append_release(deploy(&app_name(i), &user_name(i % USERS)))
                    .await
                    .unwrap()
            }
        })
    });
    group.bench_function("token_lookup", |b| {
        b.to_async(runtime).iter(|| {
            let i = next_index(&counter, USERS);
            let store = store.clone();
            async move { store.user_by_token(&token(i)).await.unwrap() }
        })
    });
    group.finish();
}

/// p50 / p90 / p99 of single calls, one at a time.
fn percentiles(runtime: &Runtime, name: &str, store: &Arc<dyn Store>) {
    let counter = AtomicUsize::new(1);
    let measure = |op: &str, run: &mut dyn FnMut(usize)| {
        let mut samples: Vec<Duration> = (0..SAMPLES)
            .map(|_| {
                let i = next_index(&counter, APPS);
                let start = Instant::now();
                run(i);
                start.elapsed()
            })
            .collect();
        samples.sort_unstable();
        let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
        println!(
            "{name:<9} {op:<24} p50 {:>9.1?}  p90 {:>9.1?}  p99 {:>9.1?}",
            at(0.50),
            at(0.90),
            at(0.99)
        );
    };
    let get_app = |i: usize| {
        runtime.block_on(store.get_app(&app_name(i))).unwrap();
    };
    let token_lookup = |i: usize| {
        runtime
            .block_on(store.user_by_token(&token(i % USERS)))
            .unwrap();
    };
    measure("get_app", &mut { get_app });
    measure("token_lookup", &mut { token_lookup });
    measure("list_releases_page_100", &mut |i| {
        runtime
            .block_on(store.list_releases(&app_name(i), PageRequest::first(100)))
            .unwrap();
    });
    measure("append_release", &mut |i| {
        runtime
            .block_on(store.append_release(deploy(&app_name(i), &user_name(i % USERS))))
            .unwrap();
    });
    // Right after a burst of writes every pooled connection rereads the pages it caches.
    measure("get_app after writes", &mut { get_app });
    measure("token_lookup after writes", &mut { token_lookup });
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let runtime = Runtime::new().unwrap();
    let mut reports: Vec<(String, Arc<dyn Store>)> = Vec::new();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let started = Instant::now();
    let sqlite: Arc<dyn Store> = runtime.block_on(async {
        let store = deis_store::SqliteStore::open(&path).await.unwrap();
        seed_users(&store).await;
        seed_sqlite(&path).await;
        Arc::new(store)
    });
    println!(
        "sqlite: seeded {APPS} apps x {RELEASES_PER_APP} releases, {USERS} users in {:.1?}",
        started.elapsed()
    );
    bench_backend(&mut criterion, &runtime, "sqlite", &sqlite);
    reports.push(("sqlite".into(), sqlite));

    #[cfg(feature = "postgres")]
    let postgres_db = match std::env::var("DEIS_TEST_POSTGRES_URL") {
        Ok(admin) => {
            use sqlx::Connection;
            let name = format!("bench_{}", uuid::Uuid::new_v4().simple());
            let started = Instant::now();
            let store: Arc<dyn Store> = runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                let mut url = url::Url::parse(&admin).unwrap();
                url.set_path(&format!("/{name}"));
                let store = deis_store::PostgresStore::connect(url.as_str())
                    .await
                    .unwrap();
                seed_users(&store).await;
                seed_postgres(url.as_str()).await;
                Arc::new(store)
            });
            println!(
                "postgres: seeded {APPS} apps x {RELEASES_PER_APP} releases, {USERS} users in {:.1?}",
                started.elapsed()
            );
            bench_backend(&mut criterion, &runtime, "postgres", &store);
            reports.push(("postgres".into(), store));
            Some((admin, name))
        }
        Err(_) => {
            println!("DEIS_TEST_POSTGRES_URL is not set: benchmarking SQLite only");
            None
        }
    };
    #[cfg(not(feature = "postgres"))]
    if std::env::var_os("DEIS_TEST_POSTGRES_URL").is_some() {
        println!(
            "built without the `postgres` feature: benchmarking SQLite only \
             (add --features postgres to bench PostgreSQL too)"
        );
    } else {
        println!("DEIS_TEST_POSTGRES_URL is not set: benchmarking SQLite only");
    }

    criterion.final_summary();
    println!("\nsingle-call latency over {SAMPLES} calls each:");
    for (name, store) in &reports {
        percentiles(&runtime, name, store);
    }

    #[cfg(feature = "postgres")]
    if let Some((admin, name)) = postgres_db {
        drop(reports);
        runtime.block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
            let _ = sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
                .execute(&mut conn)
                .await;
        });
    }
}
