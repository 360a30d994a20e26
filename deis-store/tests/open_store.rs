//! `open_store`: the backend chosen by URL, and clear errors for the rest.

use deis_core::conformance::store::new_user;
use deis_core::Error;
use deis_store::open_store;

fn message(result: Result<std::sync::Arc<dyn deis_core::Store>, Error>) -> String {
    match result {
        Ok(store) => panic!("expected an error, got {store:?}"),
        Err(error) => {
            assert!(matches!(error, Error::Invalid(_)), "{error:?}");
            error.to_string()
        }
    }
}

#[tokio::test]
async fn memory_urls_open_a_memory_store() {
    let store = open_store("memory://").await.unwrap();
    assert_eq!(store.backend(), "memory");
    assert!(store.create_user(new_user("m")).await.unwrap().is_superuser);
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_urls_create_the_file_and_its_directories() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/deis.db");
    let url = format!("sqlite://{}", path.display());
    let store = open_store(&url).await.unwrap();
    assert_eq!(store.backend(), "sqlite");
    store.create_user(new_user("s")).await.unwrap();
    assert!(path.is_file());
    drop(store);
    let again = open_store(&format!("{url}?synchronous=normal&max_readers=2"))
        .await
        .unwrap();
    assert_eq!(again.get_user("s").await.unwrap().username, "s");
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn malformed_sqlite_urls_say_what_is_expected() {
    for url in ["sqlite://relative/deis.db", "sqlite:deis.db", "sqlite:///"] {
        let text = message(open_store(url).await);
        assert!(text.contains("sqlite:///absolute/path"), "{url}: {text}");
    }
    let text = message(open_store("sqlite:///tmp/x.db?journal=delete").await);
    assert!(text.contains("journal"), "{text}");
}

#[cfg(not(feature = "sqlite"))]
#[tokio::test]
async fn sqlite_urls_name_the_missing_feature() {
    let text = message(open_store("sqlite:///tmp/deis.db").await);
    assert!(text.contains("feature `sqlite`"), "{text}");
}

#[cfg(not(feature = "postgres"))]
#[tokio::test]
async fn postgres_urls_name_the_missing_feature() {
    let text = message(open_store("postgres://deis:hunter2@db.example/deis").await);
    assert!(text.contains("feature `postgres`"), "{text}");
    assert!(
        !text.contains("hunter2"),
        "the password stays hidden: {text}"
    );
}

#[tokio::test]
async fn unknown_schemes_and_garbage_are_clear_errors() {
    let text = message(open_store("mysql://db.example/deis").await);
    assert!(
        text.contains("unknown store URL scheme `mysql`") && text.contains("sqlite:///"),
        "{text}"
    );
    let text = message(open_store("just some words").await);
    assert!(text.contains("not a store URL"), "{text}");
    let text = message(open_store("").await);
    assert!(text.contains("not a store URL"), "{text}");
    let text = message(open_store("memory://something").await);
    assert!(text.contains("memory://"), "{text}");
}
