//! Nothing secret reaches the logs or the errors: every event at every level, the
//! database drivers' included, is captured while the store handles password hashes, token
//! hashes and certificate keys, and none of them appears.
#![cfg(feature = "sqlite")]

use deis_core::conformance::store::new_user;
use deis_core::model::{Certificate, TokenHash};
use deis_core::{Store, Timestamp};
use std::io::Write;
use std::sync::{Arc, Mutex};
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

const PASSWORD_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$SECRETSALT$SECRETPASSWORDHASH";
const TOKEN_HASH: &str = "SECRET-TOKEN-HASH-0123456789abcdef";
const OTHER_TOKEN_HASH: &str = "SECRET-TOKEN-HASH-fedcba9876543210";
const PRIVATE_KEY: &str =
    "-----BEGIN PRIVATE KEY-----\nSECRETKEYMATERIAL\n-----END PRIVATE KEY-----\n";

async fn exercise(store: &dyn Store) -> Vec<String> {
    let mut errors = Vec::new();
    let mut user = new_user("secret-keeper");
    user.password_hash = PASSWORD_HASH.into();
    store.create_user(user).await.unwrap();
    store.create_user(new_user("other")).await.unwrap();
    store
        .set_password_hash("secret-keeper", PASSWORD_HASH)
        .await
        .unwrap();
    store
        .set_token("secret-keeper", &TokenHash(TOKEN_HASH.into()))
        .await
        .unwrap();
    store
        .user_by_token(&TokenHash(TOKEN_HASH.into()))
        .await
        .unwrap();
    // Error paths: a hash another user has, an unknown hash, a missing user.
    for result in [
        store
            .set_token("other", &TokenHash(TOKEN_HASH.into()))
            .await
            .map(|_| ()),
        store
            .user_by_token(&TokenHash(OTHER_TOKEN_HASH.into()))
            .await
            .map(|_| ()),
        store
            .set_token("nobody", &TokenHash(OTHER_TOKEN_HASH.into()))
            .await
            .map(|_| ()),
    ] {
        let error = result.expect_err("the call fails");
        errors.push(format!("{error} {error:?}"));
    }
    let now = Timestamp::now();
    let certificate = Certificate {
        uuid: uuid::Uuid::new_v4(),
        owner: "secret-keeper".into(),
        common_name: "secret.example".into(),
        expires: now,
        certificate: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into(),
        key: PRIVATE_KEY.into(),
        created: now,
        updated: now,
    };
    store.add_certificate(certificate.clone()).await.unwrap();
    let error = store.add_certificate(certificate).await.unwrap_err();
    errors.push(format!("{error} {error:?}"));
    assert_eq!(
        store.get_certificate("secret.example").await.unwrap().key,
        PRIVATE_KEY
    );
    errors.push(format!("{store:?}"));
    errors
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_logs_or_errors() {
    let captured = Captured::default();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .with_ansi(false)
        .init();

    let dir = tempfile::tempdir().unwrap();
    let store = deis_store::SqliteStore::open(dir.path().join("deis.db"))
        .await
        .unwrap();
    #[cfg_attr(not(feature = "postgres"), allow(unused_mut))]
    let mut texts = exercise(&store).await;
    #[cfg(feature = "postgres")]
    {
        let url = std::env::var("DEIS_TEST_POSTGRES_URL")
            .expect("DEIS_TEST_POSTGRES_URL is set (run through scripts/test)");
        let name = format!("t_secrets_{}", uuid::Uuid::new_v4().simple());
        use sqlx::Connection;
        let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
        let mut db_url = url::Url::parse(&url).unwrap();
        db_url.set_path(&format!("/{name}"));
        let pg = deis_store::PostgresStore::connect(db_url.as_str())
            .await
            .unwrap();
        texts.extend(exercise(&pg).await);
        pg.close().await;
        sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .execute(&mut admin)
            .await
            .unwrap();
    }

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    // sqlx logs every statement (the SQLite backend, on rusqlite, logs none).
    #[cfg(feature = "postgres")]
    assert!(
        logs.contains("INSERT INTO tokens"),
        "the drivers' statement logs were captured"
    );
    for text in texts.iter().map(String::as_str).chain([logs.as_str()]) {
        for secret in [
            "SECRETPASSWORDHASH",
            "SECRET-TOKEN-HASH",
            "SECRETKEYMATERIAL",
        ] {
            assert!(!text.contains(secret), "{secret} leaked into: {text}");
        }
    }
}
