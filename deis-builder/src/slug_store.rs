//! Slugs in blob storage: [`SlugStore`] uploads a built slug to a
//! [`deis_store::blob::BlobStore`] (a local directory by default, S3 and friends behind
//! deis-store's `s3` feature), downloads it again for a scheduler, and deletes what garbage
//! collection or an app's destruction no longer needs.
//!
//! A slug's blob key is `slugs/<app>/<sha>-<unique>.tgz`; the build record names it as the
//! *location* `blob:slugs/<app>/<sha>-<unique>.tgz`, which is what a build's `image` holds
//! and what `Artifact::Slug` carries to the scheduler.

use crate::BuildError;
use bytes::Bytes;
use deis_store::blob::{BlobMeta, BlobStore};
use futures::StreamExt;
use std::collections::BTreeSet;
use std::path::Path;
use tokio::io::AsyncWriteExt;

/// The prefix of a slug location that names a blob key.
pub const BLOB_SCHEME: &str = "blob:";

/// The key prefix under which an app's slugs live.
pub fn app_prefix(app: &str) -> String {
    format!("slugs/{app}")
}

/// The blob key a location names, if it names one (`blob:<key>`).
pub fn key_of(location: &str) -> Option<&str> {
    location
        .strip_prefix(BLOB_SCHEME)
        .filter(|key| !key.is_empty())
}

/// Whether `location` names a slug of `app` in blob storage (`blob:slugs/<app>/<name>.tgz`,
/// one plain file name with no further `/`). The controller refuses builds whose slug
/// location names another app's slug or anything else on the host.
pub fn is_app_slug(app: &str, location: &str) -> bool {
    let Some(key) = key_of(location) else {
        return false;
    };
    let Some(name) = key
        .strip_prefix(&app_prefix(app))
        .and_then(|rest| rest.strip_prefix('/'))
    else {
        return false;
    };
    !name.is_empty()
        && name != ".tgz"
        && name.ends_with(".tgz")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.')
}

/// Slugs kept in blob storage.
#[derive(Debug, Clone)]
pub struct SlugStore {
    blobs: BlobStore,
}

impl SlugStore {
    /// Slugs in `blobs`.
    pub fn new(blobs: BlobStore) -> Self {
        SlugStore { blobs }
    }

    /// Slugs as files under `dir` (created if missing).
    pub fn local(dir: impl AsRef<Path>) -> Result<Self, BuildError> {
        let dir = dir.as_ref();
        let blobs = BlobStore::local(dir).map_err(|e| blob_error("opening the slug store", e))?;
        Ok(SlugStore { blobs })
    }

    /// The blob storage underneath.
    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// Uploads the slug file of `app` at `sha` (streamed, never whole in memory) and returns
    /// its location (`blob:slugs/<app>/<sha>-<unique>.tgz`).
    pub async fn upload(&self, app: &str, sha: &str, file: &Path) -> Result<String, BuildError> {
        deis_core::validation::app_id(app, &[]).map_err(|e| BuildError::Rejected(e.to_string()))?;
        let short: String = sha
            .chars()
            .filter(char::is_ascii_hexdigit)
            .take(12)
            .collect();
        let key = format!(
            "{}/{short}-{}.tgz",
            app_prefix(app),
            uuid::Uuid::new_v4().simple()
        );
        let reader = tokio::fs::File::open(file)
            .await
            .map_err(BuildError::io("opening the slug"))?;
        let chunks = tokio_util_chunks(reader);
        self.blobs
            .put_stream(&key, chunks)
            .await
            .map_err(|e| blob_error("storing the slug", e))?;
        Ok(format!("{BLOB_SCHEME}{key}"))
    }

    /// Whether the slug at `location` is stored.
    pub async fn exists(&self, location: &str) -> Result<bool, BuildError> {
        let key = checked_key(location)?;
        Ok(self
            .blobs
            .head(key)
            .await
            .map_err(|e| blob_error("looking up the slug", e))?
            .is_some())
    }

    /// Writes the slug at `location` to the file `destination` (through a temporary name,
    /// so a reader never sees half a slug). Fails with [`BuildError::Rejected`] when no such
    /// slug is stored.
    pub async fn download(&self, location: &str, destination: &Path) -> Result<u64, BuildError> {
        let key = checked_key(location)?;
        let Some(mut stream) = self
            .blobs
            .get_stream(key)
            .await
            .map_err(|e| blob_error("reading the slug", e))?
        else {
            return Err(BuildError::Rejected(format!(
                "slug {location} is not in the slug store (it was deleted or garbage collected)"
            )));
        };
        if let Some(parent) = destination.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(BuildError::io("creating the download directory"))?;
        }
        let staging = destination.with_extension("download");
        let mut file = tokio::fs::File::create(&staging)
            .await
            .map_err(BuildError::io("creating the slug file"))?;
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| blob_error("reading the slug", e))?;
            size += chunk.len() as u64;
            file.write_all(&chunk)
                .await
                .map_err(BuildError::io("writing the slug file"))?;
        }
        file.sync_all()
            .await
            .map_err(BuildError::io("writing the slug file"))?;
        drop(file);
        tokio::fs::rename(&staging, destination)
            .await
            .map_err(BuildError::io("writing the slug file"))?;
        Ok(size)
    }

    /// Deletes the slug at `location`; deleting a missing slug succeeds.
    pub async fn delete(&self, location: &str) -> Result<(), BuildError> {
        let key = checked_key(location)?;
        self.blobs
            .delete(key)
            .await
            .map_err(|e| blob_error("deleting the slug", e))
    }

    /// The slugs stored for `app`, by key.
    pub async fn list(&self, app: &str) -> Result<Vec<BlobMeta>, BuildError> {
        deis_core::validation::app_id(app, &[]).map_err(|e| BuildError::Rejected(e.to_string()))?;
        self.blobs
            .list(&app_prefix(app))
            .await
            .map_err(|e| blob_error("listing the slugs", e))
    }

    /// Deletes every slug of `app` whose location `delete` selects (it sees the location and
    /// what the store knows about the blob). Returns the deleted locations, by key.
    pub async fn delete_where(
        &self,
        app: &str,
        mut delete: impl FnMut(&str, &BlobMeta) -> bool,
    ) -> Result<Vec<String>, BuildError> {
        let mut deleted = Vec::new();
        for blob in self.list(app).await? {
            let location = format!("{BLOB_SCHEME}{}", blob.key);
            if delete(&location, &blob) {
                self.blobs
                    .delete(&blob.key)
                    .await
                    .map_err(|e| blob_error("deleting the slug", e))?;
                deleted.push(location);
            }
        }
        Ok(deleted)
    }

    /// Deletes every slug of `app` except those at the locations in `keep`. Returns the
    /// deleted locations.
    pub async fn retain(
        &self,
        app: &str,
        keep: &BTreeSet<String>,
    ) -> Result<Vec<String>, BuildError> {
        self.delete_where(app, |location, _| !keep.contains(location))
            .await
    }

    /// Deletes every slug of `app` (when the app is destroyed).
    pub async fn remove_app(&self, app: &str) -> Result<usize, BuildError> {
        Ok(self.delete_where(app, |_, _| true).await?.len())
    }
}

fn checked_key(location: &str) -> Result<&str, BuildError> {
    key_of(location).ok_or_else(|| {
        BuildError::Rejected(format!(
            "{location:?} is not a slug location (expected {BLOB_SCHEME}<key>)"
        ))
    })
}

fn blob_error(context: &str, error: deis_core::Error) -> BuildError {
    BuildError::Io {
        context: context.to_string(),
        source: std::io::Error::other(error.to_string()),
    }
}

/// A file read as a stream of chunks of at most 1 MiB.
fn tokio_util_chunks(
    file: tokio::fs::File,
) -> futures::stream::BoxStream<'static, std::io::Result<Bytes>> {
    use tokio::io::AsyncReadExt;
    futures::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buffer = vec![0u8; 1 << 20];
        match file.read(&mut buffer).await {
            Ok(0) => None,
            Ok(n) => {
                buffer.truncate(n);
                Some((Ok(Bytes::from(buffer)), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_of_an_app_are_recognised() {
        assert!(is_app_slug("go", "blob:slugs/go/abc1234-ff00.tgz"));
        assert!(!is_app_slug("go", "blob:slugs/ruby/abc.tgz"));
        assert!(!is_app_slug("go", "blob:slugs/go-x/abc.tgz"));
        assert!(!is_app_slug("go", "blob:slugs/go/sub/abc.tgz"));
        assert!(!is_app_slug("go", "blob:slugs/go/../ruby/abc.tgz"));
        assert!(!is_app_slug("go", "blob:slugs/go/.tgz"));
        assert!(!is_app_slug("go", "/var/lib/deis/slugs/go/abc.tgz"));
        assert!(!is_app_slug("go", "slugs/go/abc.tgz"));
        assert_eq!(key_of("blob:slugs/go/a.tgz"), Some("slugs/go/a.tgz"));
        assert_eq!(key_of("blob:"), None);
    }

    #[tokio::test]
    async fn upload_download_retain_and_remove() {
        let dir = tempfile::tempdir().unwrap();
        let slugs = SlugStore::local(dir.path().join("blobs")).unwrap();
        let file = dir.path().join("slug.tgz");
        let content: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&file, &content).unwrap();
        let one = slugs.upload("go", "abc1234", &file).await.unwrap();
        let two = slugs.upload("go", "abc1234", &file).await.unwrap();
        let other = slugs.upload("ruby", "def5678", &file).await.unwrap();
        assert_ne!(one, two, "every upload gets its own key");
        assert!(is_app_slug("go", &one), "{one}");
        assert!(slugs.exists(&one).await.unwrap());
        let copy = dir.path().join("out/copy.tgz");
        assert_eq!(
            slugs.download(&one, &copy).await.unwrap(),
            content.len() as u64
        );
        assert_eq!(std::fs::read(&copy).unwrap(), content);

        let deleted = slugs
            .retain("go", &BTreeSet::from([two.clone()]))
            .await
            .unwrap();
        assert_eq!(deleted, vec![one.clone()]);
        assert!(!slugs.exists(&one).await.unwrap());
        let missing = slugs.download(&one, &copy).await.unwrap_err();
        assert!(
            missing.to_string().contains("garbage collected"),
            "{missing}"
        );
        assert_eq!(slugs.remove_app("go").await.unwrap(), 1);
        assert!(slugs.list("go").await.unwrap().is_empty());
        assert!(
            slugs.exists(&other).await.unwrap(),
            "other apps are untouched"
        );
        assert!(slugs.exists("not-a-location").await.is_err());
    }
}
