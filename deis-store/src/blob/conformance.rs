//! The [`BlobStore`] conformance suite. Call [`run_all`] on an empty store; it panics
//! (through `assert!`) on the first violation, naming the rule.

use super::BlobStore;
use bytes::Bytes;
use deis_core::Error;
use futures::{stream, StreamExt, TryStreamExt};

/// Runs every check of the suite on an empty store.
pub async fn run_all(store: &BlobStore) {
    bytes_round_trip(store).await;
    missing_blobs(store).await;
    streams_round_trip(store).await;
    failed_streams_store_nothing(store).await;
    listing_by_prefix(store).await;
    deleting(store).await;
    bad_keys_are_rejected(store).await;
    concurrent_writers(store).await;
}

async fn collect(store: &BlobStore, key: &str) -> Vec<u8> {
    let stream = store
        .get_stream(key)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{key} should exist"));
    let chunks: Vec<Bytes> = stream.try_collect().await.unwrap();
    chunks.concat()
}

/// Put and get as bytes, overwrite, empty blobs, head.
pub async fn bytes_round_trip(store: &BlobStore) {
    store
        .put("c/bytes/one", Bytes::from_static(b"hello"))
        .await
        .unwrap();
    assert_eq!(
        store.get("c/bytes/one").await.unwrap().as_deref(),
        Some(&b"hello"[..])
    );
    store
        .put("c/bytes/one", Bytes::from_static(b"replaced"))
        .await
        .unwrap();
    assert_eq!(
        store.get("c/bytes/one").await.unwrap().as_deref(),
        Some(&b"replaced"[..]),
        "a put replaces the blob"
    );
    let meta = store.head("c/bytes/one").await.unwrap().unwrap();
    assert_eq!(meta.key, "c/bytes/one");
    assert_eq!(meta.size, 8);
    store.put("c/bytes/empty", Bytes::new()).await.unwrap();
    assert_eq!(
        store.get("c/bytes/empty").await.unwrap().as_deref(),
        Some(&b""[..]),
        "an empty blob is a blob"
    );
    assert_eq!(collect(store, "c/bytes/one").await, b"replaced");
}

/// Missing blobs read as `None`, not as errors.
pub async fn missing_blobs(store: &BlobStore) {
    assert_eq!(store.get("c/missing/x").await.unwrap(), None);
    assert!(store.get_stream("c/missing/x").await.unwrap().is_none());
    assert_eq!(store.head("c/missing/x").await.unwrap(), None);
}

/// A blob written as a stream of chunks (larger than one multipart part) reads back whole,
/// as bytes and as a stream.
pub async fn streams_round_trip(store: &BlobStore) {
    let chunk: Vec<u8> = (0..=255u8).cycle().take(1 << 20).collect();
    let chunks: Vec<std::io::Result<Bytes>> = (0..12)
        .map(|i| {
            let mut c = chunk.clone();
            c[0] = i;
            Ok(Bytes::from(c))
        })
        .collect();
    let expected: Vec<u8> = chunks
        .iter()
        .flat_map(|c| c.as_ref().unwrap().to_vec())
        .collect();
    let size = store
        .put_stream("c/stream/slug.tgz", stream::iter(chunks))
        .await
        .unwrap();
    assert_eq!(size, expected.len() as u64);
    let read = store.get("c/stream/slug.tgz").await.unwrap().unwrap();
    assert!(read == expected, "a streamed blob reads back whole");
    assert!(collect(store, "c/stream/slug.tgz").await == expected);
    assert_eq!(
        store.head("c/stream/slug.tgz").await.unwrap().unwrap().size,
        expected.len() as u64
    );
    let small = store
        .put_stream(
            "c/stream/small",
            stream::iter([Ok(Bytes::from_static(b"ab")), Ok(Bytes::from_static(b"cd"))]),
        )
        .await
        .unwrap();
    assert_eq!(small, 4);
    assert_eq!(
        store.get("c/stream/small").await.unwrap().as_deref(),
        Some(&b"abcd"[..])
    );
}

/// A stream that fails leaves no blob (or the previous one) behind.
pub async fn failed_streams_store_nothing(store: &BlobStore) {
    let failing = stream::iter([
        Ok(Bytes::from_static(b"partial")),
        Err(std::io::Error::other("the builder died")),
    ]);
    let result = store.put_stream("c/failed/new", failing).await;
    assert!(result.is_err(), "a failed stream is an error");
    assert_eq!(
        store.get("c/failed/new").await.unwrap(),
        None,
        "nothing is stored"
    );
    store
        .put("c/failed/old", Bytes::from_static(b"old"))
        .await
        .unwrap();
    let failing = stream::iter([
        Ok(Bytes::from_static(b"new")),
        Err(std::io::Error::other("cut off")),
    ]);
    assert!(store.put_stream("c/failed/old", failing).await.is_err());
    assert_eq!(
        store.get("c/failed/old").await.unwrap().as_deref(),
        Some(&b"old"[..]),
        "the previous blob is kept"
    );
}

/// Listings are sorted by key and match whole segments of the prefix.
pub async fn listing_by_prefix(store: &BlobStore) {
    for key in [
        "c/list/slugs/go/v2.tgz",
        "c/list/slugs/go/v1.tgz",
        "c/list/slugs/ruby/v1.tgz",
        "c/list/slugs-old/x",
        "c/list/cache/go.tgz",
    ] {
        store.put(key, Bytes::from(key.to_owned())).await.unwrap();
    }
    let keys = |list: Vec<super::BlobMeta>| list.into_iter().map(|b| b.key).collect::<Vec<_>>();
    assert_eq!(
        keys(store.list("c/list/slugs").await.unwrap()),
        [
            "c/list/slugs/go/v1.tgz",
            "c/list/slugs/go/v2.tgz",
            "c/list/slugs/ruby/v1.tgz"
        ],
        "whole segments, by key"
    );
    assert_eq!(
        keys(store.list("c/list/slugs/").await.unwrap()).len(),
        3,
        "a trailing slash changes nothing"
    );
    assert_eq!(keys(store.list("c/list").await.unwrap()).len(), 5);
    assert!(store.list("c/list/none").await.unwrap().is_empty());
    let all = store.list("").await.unwrap();
    assert!(all.iter().any(|b| b.key == "c/list/cache/go.tgz"));
    let meta = all.iter().find(|b| b.key == "c/list/slugs-old/x").unwrap();
    assert_eq!(meta.size, "c/list/slugs-old/x".len() as u64);
}

/// Deleting removes the blob; deleting a missing blob succeeds.
pub async fn deleting(store: &BlobStore) {
    store
        .put("c/delete/x", Bytes::from_static(b"x"))
        .await
        .unwrap();
    store.delete("c/delete/x").await.unwrap();
    assert_eq!(store.get("c/delete/x").await.unwrap(), None);
    assert!(store.list("c/delete").await.unwrap().is_empty());
    store.delete("c/delete/x").await.unwrap();
    store.delete("c/delete/never").await.unwrap();
}

/// Keys that could escape the store or are ambiguous are refused by every operation.
pub async fn bad_keys_are_rejected(store: &BlobStore) {
    for key in ["", "/etc/passwd", "../escape", "c/../../x", "c//x", "c/x/"] {
        let is_invalid = |e: &Error| matches!(e, Error::Invalid(_));
        assert!(
            store
                .put(key, Bytes::from_static(b"x"))
                .await
                .is_err_and(|e| is_invalid(&e)),
            "put {key:?}"
        );
        assert!(
            store.get(key).await.is_err_and(|e| is_invalid(&e)),
            "get {key:?}"
        );
        assert!(
            store.delete(key).await.is_err_and(|e| is_invalid(&e)),
            "delete {key:?}"
        );
    }
}

/// Concurrent writers of different keys all land.
pub async fn concurrent_writers(store: &BlobStore) {
    let writes = (0..20).map(|i| {
        let key = format!("c/concurrent/{i}");
        async move { store.put(&key, Bytes::from(vec![i as u8; 1000])).await }
    });
    let results: Vec<_> = stream::iter(writes).buffer_unordered(20).collect().await;
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    let listed = store.list("c/concurrent").await.unwrap();
    assert_eq!(listed.len(), 20);
    assert!(listed.iter().all(|b| b.size == 1000));
}
