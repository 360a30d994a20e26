//! Test support: scratch PostgreSQL databases on the server that `scripts/test` starts.
#![allow(dead_code)]

/// The admin URL of the test PostgreSQL server. Panics when it is not set: tests that need
/// PostgreSQL fail rather than skip (run them through `scripts/test`).
pub fn postgres_admin_url() -> String {
    std::env::var("DEIS_TEST_POSTGRES_URL").expect(
        "DEIS_TEST_POSTGRES_URL is not set: the PostgreSQL tests need the server that \
         scripts/test starts",
    )
}

/// `url` with its database replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("DEIS_TEST_POSTGRES_URL is a URL");
    parsed.set_path(&format!("/{database}"));
    parsed.to_string()
}

#[cfg(feature = "postgres")]
/// A fresh, empty database on the test server (dropped by [`ScratchDatabase::drop_now`],
/// or left behind on the throw-away server if the test panics).
pub struct ScratchDatabase {
    pub name: String,
    pub url: String,
    admin: String,
}

#[cfg(feature = "postgres")]
impl ScratchDatabase {
    pub async fn create(prefix: &str) -> Self {
        use sqlx::Connection;
        let admin = postgres_admin_url();
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .expect("connect to the test PostgreSQL server");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create a scratch database");
        conn.close().await.ok();
        ScratchDatabase {
            url: with_database(&admin, &name),
            name,
            admin,
        }
    }

    pub async fn drop_now(self) {
        use sqlx::Connection;
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin).await {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn)
            .await;
            conn.close().await.ok();
        }
    }
}

use deis_core::conformance::store::new_user;
use deis_core::model::{App, Build, PageRequest};
use deis_core::store::{BuildChoice, ConfigChoice, NewRelease};
use deis_core::Store;
use futures::future::join_all;
use std::collections::BTreeSet;

/// A new-build release request for `app`.
pub fn deploy(app: &str, owner: &str, n: usize) -> NewRelease {
    let mut build = Build::new(app, owner, &format!("{app}:v{n}"));
    build.sha = format!("{n:07}");
    build.procfile.insert("web".into(), "./server".into());
    NewRelease {
        app: app.into(),
        owner: owner.into(),
        summary: format!("{owner} deployed {n:07}"),
        build: BuildChoice::New(Box::new(build)),
        config: ConfigChoice::Current,
    }
}

/// Fifty appends race from two stores (two pools, so at least two connections each side):
/// versions 2..=51, no gap, no duplicate.
pub async fn appends_race_across_stores(a: &dyn Store, b: &dyn Store) {
    a.create_user(new_user("race-owner")).await.unwrap();
    a.create_app(App::new("race-app", "race-owner"))
        .await
        .unwrap();
    let appends = (0..50).map(|i| {
        let store = if i % 2 == 0 { a } else { b };
        store.append_release(deploy("race-app", "race-owner", i))
    });
    let mut versions: Vec<u64> = join_all(appends)
        .await
        .into_iter()
        .map(|r| r.expect("racing append").version)
        .collect();
    versions.sort_unstable();
    assert_eq!(versions, (2..=51).collect::<Vec<u64>>());
    let listed = b.list_releases("race-app", PageRequest::ALL).await.unwrap();
    let stored: BTreeSet<u64> = listed.items.iter().map(|r| r.version).collect();
    assert_eq!(stored, (1..=51).collect::<BTreeSet<u64>>());
    assert_eq!(
        a.list_builds("race-app", PageRequest::ALL)
            .await
            .unwrap()
            .total,
        50
    );
}

/// Registrations race from two stores on an empty database: exactly one admin.
pub async fn first_user_race_across_stores(a: &dyn Store, b: &dyn Store) {
    let registrations = (0..20).map(|i| {
        let store = if i % 2 == 0 { a } else { b };
        store.create_user(new_user(&format!("first{i}")))
    });
    let admins = join_all(registrations)
        .await
        .into_iter()
        .map(|r| r.expect("racing registration"))
        .filter(|u| u.is_superuser)
        .count();
    assert_eq!(admins, 1, "exactly one of the first users is admin");
}

/// Five config writers from the same revision race from two stores: one wins, the others
/// get `Precondition`, and the winner's value is the only change.
pub async fn config_writers_race_across_stores(a: &dyn Store, b: &dyn Store) {
    use deis_core::release::ConfigPatch;
    a.create_user(new_user("cfg-owner")).await.unwrap();
    a.create_app(App::new("cfg-app", "cfg-owner"))
        .await
        .unwrap();
    let base = a.current_config("cfg-app").await.unwrap();
    let writes = (0..10).map(|i| {
        let store = if i % 2 == 0 { a } else { b };
        let key = format!("KEY{i}");
        let patch =
            ConfigPatch::from_json(&serde_json::json!({"values": {key.clone(): "1"}})).unwrap();
        let config = patch.apply(&base, "cfg-owner").unwrap();
        store.append_release(NewRelease {
            app: "cfg-app".into(),
            owner: "cfg-owner".into(),
            summary: format!("cfg-owner added {key}"),
            build: BuildChoice::Current,
            config: ConfigChoice::New {
                config: Box::new(config),
                expected_revision: base.revision,
            },
        })
    });
    let results = join_all(writes).await;
    let winners = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(winners, 1, "{results:?}");
    assert!(results.iter().all(|r| match r {
        Ok(_) => true,
        Err(e) => matches!(e, deis_core::Error::Precondition { .. }),
    }));
    let after = b.current_config("cfg-app").await.unwrap();
    assert_eq!(after.revision, base.revision + 1);
    assert_eq!(after.values.len(), 1);
}
