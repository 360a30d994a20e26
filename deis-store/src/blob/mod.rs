//! Blob storage for slugs and build caches: [`BlobStore`], a small wrapper over the
//! `object_store` crate with put / get / delete / list by key, as bytes or as streams.
//!
//! Backends: a local directory (the default), process memory, and any S3-compatible
//! service (AWS S3, MinIO, Ceph RGW…) behind the cargo feature `s3`. Every backend passes
//! [`conformance::run_all`].
//!
//! Keys are `/`-separated paths such as `slugs/go/v2.tgz` or `cache/go.tgz`: no empty
//! segment, no `.` or `..`, no leading or trailing `/`, no control characters or `\`.
//! Writes are atomic: a reader sees the old blob or the whole new one, never a part.

pub mod conformance;

use bytes::Bytes;
use deis_core::{Error, Result, Timestamp, ValidationError};
use futures::stream::{BoxStream, Stream, StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload, WriteMultipart};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const BACKEND: &str = "blob";

/// A stream of a blob's bytes, chunk by chunk.
pub type BlobStream = BoxStream<'static, Result<Bytes>>;

/// What a listing says about one blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobMeta {
    /// The blob's key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written.
    pub last_modified: Timestamp,
}

/// Blob storage for slugs and build caches.
#[derive(Clone)]
pub struct BlobStore {
    inner: Arc<dyn ObjectStore>,
    description: String,
}

impl fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobStore")
            .field("backend", &self.description)
            .finish_non_exhaustive()
    }
}

impl BlobStore {
    /// Blobs as files under `dir`, which is created if missing.
    pub fn local(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| Error::backend(BACKEND, e))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .map_err(map_error)?
            .with_automatic_cleanup(true);
        Ok(BlobStore {
            inner: Arc::new(store),
            description: format!("local directory {}", dir.display()),
        })
    }

    /// Blobs in process memory, lost when the last clone is dropped.
    pub fn memory() -> Self {
        BlobStore {
            inner: Arc::new(object_store::memory::InMemory::new()),
            description: "memory".into(),
        }
    }

    /// Blobs in an S3-compatible bucket, from a URL such as
    /// `s3://bucket/optional/prefix?endpoint=http://127.0.0.1:9000&region=us-east-1&allow_http=true`.
    ///
    /// Credentials and other settings come from the usual `AWS_*` environment variables;
    /// query parameters name the same settings (`endpoint`, `region`, `access_key_id`,
    /// `secret_access_key`, `allow_http`, `virtual_hosted_style_request`, …).
    #[cfg(feature = "s3")]
    pub fn s3(url: &str) -> Result<Self> {
        use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
        use std::str::FromStr;

        let invalid = |message: String| {
            Error::Invalid(ValidationError::new("blob_url", "malformed", message))
        };
        let parsed = ::url::Url::parse(url)
            .map_err(|e| invalid(format!("`{}` is not a URL: {e}", crate::url::redact(url))))?;
        let bucket = parsed
            .host_str()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| invalid("an S3 URL is s3://bucket/optional/prefix".into()))?;
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        for (key, value) in parsed.query_pairs() {
            let config = AmazonS3ConfigKey::from_str(&key)
                .map_err(|_| invalid(format!("unknown S3 setting `{key}`")))?;
            builder = builder.with_config(config, value.into_owned());
        }
        let store = builder.build().map_err(map_error)?;
        let prefix = parsed.path().trim_matches('/').to_owned();
        let description = format!("s3 bucket {bucket}");
        let inner: Arc<dyn ObjectStore> = if prefix.is_empty() {
            Arc::new(store)
        } else {
            validate_key(&prefix)?;
            Arc::new(object_store::prefix::PrefixStore::new(store, prefix))
        };
        Ok(BlobStore { inner, description })
    }

    /// Opens the blob storage a URL names: `file:///abs/dir`, `memory://`, or (feature
    /// `s3`) `s3://bucket/prefix?…` (see `BlobStore::s3`).
    pub fn open(url: &str) -> Result<Self> {
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("file") => {
                let path = url.strip_prefix("file://").unwrap_or_default();
                if !path.starts_with('/') {
                    return Err(Error::Invalid(ValidationError::new(
                        "blob_url",
                        "malformed",
                        format!("`{url}`: a local blob URL is file:///absolute/directory"),
                    )));
                }
                Self::local(PathBuf::from(path))
            }
            Some("memory") => Ok(Self::memory()),
            #[cfg(feature = "s3")]
            Some("s3") => Self::s3(url),
            #[cfg(not(feature = "s3"))]
            Some("s3") => Err(Error::Invalid(ValidationError::new(
                "blob_url",
                "feature_disabled",
                "S3 blob storage is not in this build: enable the cargo feature `s3` of \
                 deis-store"
                    .to_string(),
            ))),
            _ => Err(Error::Invalid(ValidationError::new(
                "blob_url",
                "unknown_scheme",
                format!(
                    "`{}` is not a blob storage URL; expected file:///absolute/directory, \
                     memory:// or s3://bucket/prefix",
                    crate::url::redact(url)
                ),
            ))),
        }
    }

    /// Stores `bytes` under `key`, replacing any blob there.
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        let path = validate_key(key)?;
        self.inner
            .put(&path, PutPayload::from_bytes(bytes))
            .await
            .map_err(map_error)?;
        Ok(())
    }

    /// Stores a stream of chunks under `key` without holding it all in memory (a multipart
    /// upload), replacing any blob there once the stream ends. If the stream fails, nothing
    /// is stored and the stream's error is returned. Returns the number of bytes stored.
    pub async fn put_stream<S>(&self, key: &str, mut chunks: S) -> Result<u64>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Send + Unpin,
    {
        let path = validate_key(key)?;
        let upload = self.inner.put_multipart(&path).await.map_err(map_error)?;
        let mut writer = WriteMultipart::new(upload);
        let mut size = 0u64;
        while let Some(chunk) = chunks.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(error) => {
                    let _ = writer.abort().await;
                    return Err(Error::backend(BACKEND, error));
                }
            };
            if let Err(error) = writer.wait_for_capacity(4).await {
                let _ = writer.abort().await;
                return Err(map_error(error));
            }
            size += chunk.len() as u64;
            writer.put(chunk);
        }
        writer.finish().await.map_err(map_error)?;
        Ok(size)
    }

    /// The blob under `key`, or `None` if there is none.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let path = validate_key(key)?;
        match self.inner.get(&path).await {
            Ok(result) => Ok(Some(result.bytes().await.map_err(map_error)?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(map_error(error)),
        }
    }

    /// The blob under `key` as a stream of chunks, or `None` if there is none.
    pub async fn get_stream(&self, key: &str) -> Result<Option<BlobStream>> {
        let path = validate_key(key)?;
        match self.inner.get(&path).await {
            Ok(result) => Ok(Some(result.into_stream().map_err(map_error).boxed())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(map_error(error)),
        }
    }

    /// What is known about the blob under `key`, or `None` if there is none.
    pub async fn head(&self, key: &str) -> Result<Option<BlobMeta>> {
        let path = validate_key(key)?;
        match self.inner.head(&path).await {
            Ok(meta) => Ok(Some(blob_meta(meta))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(map_error(error)),
        }
    }

    /// Deletes the blob under `key`; deleting a missing blob succeeds.
    pub async fn delete(&self, key: &str) -> Result<()> {
        let path = validate_key(key)?;
        match self.inner.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(map_error(error)),
        }
    }

    /// The blobs whose keys lie under `prefix`, by key. The prefix is matched by whole
    /// segments: `slugs` lists `slugs/go/v2.tgz` but not `slugs-old/x`; an empty prefix
    /// lists everything.
    pub async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>> {
        let prefix = if prefix.is_empty() {
            None
        } else {
            Some(validate_key(prefix.trim_end_matches('/'))?)
        };
        let mut blobs: Vec<BlobMeta> = self
            .inner
            .list(prefix.as_ref())
            .map_ok(blob_meta)
            .try_collect()
            .await
            .map_err(map_error)?;
        blobs.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(blobs)
    }
}

fn blob_meta(meta: object_store::ObjectMeta) -> BlobMeta {
    BlobMeta {
        key: meta.location.to_string(),
        size: meta.size,
        last_modified: Timestamp(meta.last_modified),
    }
}

/// Checks a key and turns it into an object path.
fn validate_key(key: &str) -> Result<ObjectPath> {
    let invalid = |rule: &'static str, message: &str| {
        Error::Invalid(ValidationError::new(
            "key",
            rule,
            format!("blob key `{}`: {message}", key.escape_debug()),
        ))
    };
    if key.is_empty() {
        return Err(invalid("empty", "must not be empty"));
    }
    if key.len() > 1024 {
        return Err(invalid("too_long", "must be at most 1024 bytes"));
    }
    if key.chars().any(|c| c.is_control() || c == '\\') {
        return Err(invalid(
            "bad_character",
            "must not contain control characters or `\\`",
        ));
    }
    if key
        .split('/')
        .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        return Err(invalid(
            "bad_segment",
            "must be `/`-separated names with no empty, `.` or `..` segment and no leading \
             or trailing `/`",
        ));
    }
    ObjectPath::parse(key).map_err(|e| invalid("bad_segment", &e.to_string()))
}

fn map_error(error: object_store::Error) -> Error {
    match error {
        object_store::Error::NotImplemented => Error::NotImplemented {
            operation: "blob operation",
            backend: BACKEND,
        },
        object_store::Error::InvalidPath { source } => Error::Invalid(ValidationError::new(
            "key",
            "bad_segment",
            source.to_string(),
        )),
        other => Error::backend(BACKEND, other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked() {
        for good in ["slugs/go/v2.tgz", "cache/go.tgz", "a", "a-b_c.d/e f"] {
            assert!(validate_key(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "/abs",
            "trailing/",
            "a//b",
            "../x",
            "a/./b",
            "a/..",
            "a\\b",
            "a\nb",
        ] {
            assert!(
                matches!(validate_key(bad), Err(Error::Invalid(_))),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn urls_choose_the_backend() {
        assert!(format!("{:?}", BlobStore::open("memory://").unwrap()).contains("memory"));
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}/blobs", dir.path().display());
        assert!(format!("{:?}", BlobStore::open(&url).unwrap()).contains("local"));
        assert!(dir.path().join("blobs").is_dir());
        assert!(matches!(
            BlobStore::open("file://relative"),
            Err(Error::Invalid(_))
        ));
        let unknown = BlobStore::open("ftp://x/y").unwrap_err().to_string();
        assert!(unknown.contains("expected"), "{unknown}");
        #[cfg(not(feature = "s3"))]
        {
            let error = BlobStore::open("s3://bucket/x").unwrap_err().to_string();
            assert!(error.contains("`s3`"), "{error}");
        }
    }
}
