//! BlobStore: the conformance suite on the local directory and in-memory backends.

use bytes::Bytes;
use deis_store::blob::{conformance, BlobStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_blob_store_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::local(dir.path().join("blobs")).unwrap();
    conformance::run_all(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_blob_store_passes_the_conformance_suite() {
    conformance::run_all(&BlobStore::memory()).await;
}

#[tokio::test]
async fn local_blobs_are_plain_files_under_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(&format!("file://{}", dir.path().display())).unwrap();
    store
        .put("slugs/go/v2.tgz", Bytes::from_static(b"slug"))
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("slugs/go/v2.tgz")).unwrap(),
        b"slug"
    );
    // Reopening the directory finds what was written.
    let again = BlobStore::local(dir.path()).unwrap();
    assert_eq!(
        again.get("slugs/go/v2.tgz").await.unwrap().as_deref(),
        Some(&b"slug"[..])
    );
    again.delete("slugs/go/v2.tgz").await.unwrap();
    assert!(!dir.path().join("slugs/go/v2.tgz").exists());
}
