//! Slugs between the builder, the controller and the local scheduler.
//!
//! The builder stores every slug in blob storage ([`deis_builder::slug_store`]) and the
//! build's `image` names it as `blob:slugs/<app>/<sha>-<unique>.tgz`. The controller reaches
//! that storage through [`BuildStorage`] to check a rollback target's slug, to collect old
//! slugs after a deploy, and to delete an app's repository, build cache and slugs when the
//! app is destroyed. [`BlobSlugFetcher`] lets the local scheduler download a slug to unpack.
//!
//! **Retention.** After every deploy of a new build the controller keeps the slugs of the
//! `Settings::slugs_kept` builds most recently released (walking releases from the newest,
//! so the current release's slug is always kept, and so is a build a recent rollback brought
//! back), and deletes the slugs of older builds. A slug no build names (a build that never
//! became a release) is deleted once it is older than [`ORPHAN_GRACE`], so a build in
//! flight is never touched. A rollback to a release whose slug was collected is refused
//! with 409 before anything changes.

use async_trait::async_trait;
use deis_builder::git::remove_repo_in;
use deis_builder::slug_store::{SlugStore, BLOB_SCHEME};
use deis_builder::{BuildError, Builder};
use deis_core::{Error, Result, Timestamp};
use deis_scheduler::SlugFetcher;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How old a slug that no build names must be before garbage collection deletes it.
pub const ORPHAN_GRACE: Duration = Duration::from_secs(3600);

/// A stored slug as garbage collection sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSlug {
    /// Its location (`blob:slugs/<app>/….tgz`), as a build's `image` names it.
    pub location: String,
    /// When it was stored.
    pub stored_at: Timestamp,
}

/// What the controller needs from the builder's storage.
#[async_trait]
pub trait BuildStorage: std::fmt::Debug + Send + Sync + 'static {
    /// Whether the slug at `location` is still stored.
    async fn slug_exists(&self, location: &str) -> Result<bool>;
    /// The slugs stored for `app`.
    async fn list_slugs(&self, app: &str) -> Result<Vec<StoredSlug>>;
    /// Deletes one slug; deleting a missing one succeeds.
    async fn delete_slug(&self, location: &str) -> Result<()>;
    /// Deletes everything the builder keeps for `app`: its git repository, build cache
    /// and slugs.
    async fn remove_app(&self, app: &str) -> Result<()>;
}

/// [`BuildStorage`] over the platform's builder and git repositories.
///
/// It holds the repositories' directory rather than a `GitRepos`: those lead to the hook
/// server, whose push handler holds the controller, and the controller holds this.
#[derive(Debug, Clone)]
pub struct BuilderStorage {
    builder: Builder,
    repos_dir: PathBuf,
}

impl BuilderStorage {
    /// Storage of `builder` (slugs, caches) and the repositories under `repos_dir`.
    pub fn new(builder: Builder, repos_dir: impl Into<PathBuf>) -> Self {
        BuilderStorage {
            builder,
            repos_dir: repos_dir.into(),
        }
    }
}

fn storage_error(error: BuildError) -> Error {
    Error::backend("slugs", std::io::Error::other(error.to_string()))
}

#[async_trait]
impl BuildStorage for BuilderStorage {
    async fn slug_exists(&self, location: &str) -> Result<bool> {
        self.builder
            .slugs()
            .exists(location)
            .await
            .map_err(storage_error)
    }

    async fn list_slugs(&self, app: &str) -> Result<Vec<StoredSlug>> {
        let blobs = self
            .builder
            .slugs()
            .list(app)
            .await
            .map_err(storage_error)?;
        Ok(blobs
            .into_iter()
            .map(|blob| StoredSlug {
                location: format!("{BLOB_SCHEME}{}", blob.key),
                stored_at: blob.last_modified,
            })
            .collect())
    }

    async fn delete_slug(&self, location: &str) -> Result<()> {
        self.builder
            .slugs()
            .delete(location)
            .await
            .map_err(storage_error)
    }

    async fn remove_app(&self, app: &str) -> Result<()> {
        let repo = remove_repo_in(&self.repos_dir, app).await;
        let rest = self.builder.remove_app(app).await;
        repo.and(rest).map_err(storage_error)
    }
}

/// Lets the local scheduler download `blob:` slugs from the slug store.
#[derive(Debug, Clone)]
pub struct BlobSlugFetcher {
    slugs: SlugStore,
}

impl BlobSlugFetcher {
    /// A fetcher over `slugs`.
    pub fn new(slugs: SlugStore) -> Self {
        BlobSlugFetcher { slugs }
    }
}

#[async_trait]
impl SlugFetcher for BlobSlugFetcher {
    fn handles(&self, location: &str) -> bool {
        location.starts_with(BLOB_SCHEME)
    }

    async fn fetch(&self, location: &str, destination: &Path) -> Result<()> {
        match self.slugs.download(location, destination).await {
            Ok(_) => Ok(()),
            Err(BuildError::Rejected(message)) => Err(Error::precondition(message)),
            Err(error) => Err(storage_error(error)),
        }
    }
}
