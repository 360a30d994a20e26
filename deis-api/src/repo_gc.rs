//! Deleting what destroyed apps left on a builder: the app's git repository
//! (`repos/<app>.git`), its build cache (`builder/cache/<app>`) and its slugs (the slug
//! store's `slugs/<app>/…`).
//!
//! Deis v1's controller told its builder; here the builder asks instead, in a level-triggered
//! reconcile loop like the publisher's: at start and then every interval, [`collect_once`]
//! lists what is on disk, then asks an [`AppDirectory`] which apps exist (the controller in
//! process, or `GET /v1/hooks/apps/` for `deisd --role builder`), and deletes the leftovers
//! of the others. A builder that was down when an app was destroyed cleans up when it comes
//! back, and the controller needs no address of its builders.
//!
//! The disk is read before the app list, so a repository made for an app created in
//! between is never taken for a leftover (a repository exists only after its app did).
//! When the app list cannot be had, nothing is deleted. An app destroyed and created again
//! under the same name within one interval is not left to this loop: the repository is
//! marked with its app's uuid, and `GitRepos` deletes the repository, build cache and slugs
//! of an earlier app before the new one's first push or fetch.

use crate::controller::Controller;
use async_trait::async_trait;
use deis_builder::git::GitRepos;
use deis_builder::Builder;
use deis_core::model::PageRequest;
use deis_core::store::AppFilter;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How often a builder looks for leftovers of destroyed apps by default.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// Who knows which apps exist.
#[async_trait]
pub trait AppDirectory: std::fmt::Debug + Send + Sync + 'static {
    /// The ids of every app that exists now.
    async fn app_ids(&self) -> Result<BTreeSet<String>, String>;
}

#[async_trait]
impl AppDirectory for Controller {
    async fn app_ids(&self) -> Result<BTreeSet<String>, String> {
        let apps = self
            .store()
            .list_apps(AppFilter::All, PageRequest::ALL)
            .await
            .map_err(|e| e.to_string())?;
        Ok(apps.items.into_iter().map(|app| app.id).collect())
    }
}

/// Where a builder keeps per-app data.
#[derive(Debug, Clone)]
pub struct BuilderDisk {
    /// The repositories (`<root>/<app>.git`).
    pub repos: GitRepos,
    /// The directory of the repositories.
    pub repos_dir: PathBuf,
    /// The builder (its cache directories and its slug store).
    pub builder: Builder,
}

impl BuilderDisk {
    fn caches_dir(&self) -> PathBuf {
        self.builder.settings().data_dir.join("cache")
    }

    /// The apps that have a repository, a build cache or slugs here.
    async fn apps_on_disk(&self) -> Result<BTreeSet<String>, String> {
        let mut apps = BTreeSet::new();
        let slugs = self
            .builder
            .slugs()
            .blobs()
            .list("slugs/")
            .await
            .map_err(|e| format!("listing the slugs: {e}"))?;
        for slug in slugs {
            let app = slug.key.split('/').nth(1).unwrap_or_default();
            if deis_core::validation::app_id(app, &[]).is_ok() {
                apps.insert(app.to_string());
            }
        }
        for (dir, suffix) in [(self.repos_dir.clone(), ".git"), (self.caches_dir(), "")] {
            for name in names_in(&dir).await {
                let Some(app) = name.strip_suffix(suffix) else {
                    continue;
                };
                if deis_core::validation::app_id(app, &[]).is_ok() {
                    apps.insert(app.to_string());
                }
            }
        }
        Ok(apps)
    }

    /// Deletes the app's repository, build cache and slugs.
    async fn remove(&self, app: &str) -> Result<(), String> {
        self.repos
            .remove_repo(app)
            .await
            .map_err(|e| e.to_string())?;
        self.builder
            .remove_app(app)
            .await
            .map_err(|e| format!("removing the build cache and slugs of {app}: {e}"))
    }
}

async fn names_in(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
        return names;
    };
    while let Ok(Some(entry)) = entries.next_entry().await {
        if let Some(name) = entry.file_name().to_str() {
            names.push(name.to_string());
        }
    }
    names
}

/// One pass: deletes the repositories, build caches and slugs of apps that no longer
/// exist, and returns their names. Deletes nothing when `directory` cannot answer.
pub async fn collect_once(
    directory: &dyn AppDirectory,
    disk: &BuilderDisk,
) -> Result<Vec<String>, String> {
    let on_disk = disk.apps_on_disk().await?;
    if on_disk.is_empty() {
        return Ok(Vec::new());
    }
    let existing = directory.app_ids().await?;
    let mut removed = Vec::new();
    for app in on_disk.difference(&existing) {
        match disk.remove(app).await {
            Ok(()) => {
                tracing::info!(%app, "deleted the repository and build cache of a destroyed app");
                removed.push(app.clone());
            }
            Err(error) => tracing::warn!(%app, %error, "could not delete a destroyed app's data"),
        }
    }
    Ok(removed)
}

/// The background loop of [`collect_once`]; stops when dropped.
#[derive(Debug)]
pub struct RepoCollector {
    task: tokio::task::JoinHandle<()>,
}

impl RepoCollector {
    /// Collects now and then every `interval`, on the current tokio runtime.
    pub fn spawn(
        directory: Arc<dyn AppDirectory>,
        disk: BuilderDisk,
        interval: Duration,
    ) -> RepoCollector {
        let task = tokio::spawn(async move {
            loop {
                if let Err(error) = collect_once(directory.as_ref(), &disk).await {
                    tracing::warn!(%error, "could not list the apps to find destroyed ones");
                }
                tokio::time::sleep(interval).await;
            }
        });
        RepoCollector { task }
    }
}

impl Drop for RepoCollector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deis_builder::hook::HookServer;
    use deis_builder::BuilderSettings;
    use std::sync::Mutex;

    #[derive(Debug)]
    struct Apps(Mutex<Result<BTreeSet<String>, String>>);

    #[async_trait]
    impl AppDirectory for Apps {
        async fn app_ids(&self) -> Result<BTreeSet<String>, String> {
            self.0.lock().unwrap().clone()
        }
    }

    #[derive(Debug)]
    struct NoDeploys;

    #[async_trait]
    impl deis_builder::hook::PushHandler for NoDeploys {
        async fn begin(
            &self,
            _push: &deis_builder::git::PushContext,
            _sha: &str,
        ) -> Result<std::collections::BTreeMap<String, String>, String> {
            Err("no pushes in this test".into())
        }

        async fn deploy(
            &self,
            _push: &deis_builder::git::PushContext,
            _sha: &str,
            _output: &deis_builder::BuildOutput,
        ) -> Result<Vec<String>, String> {
            Err("no pushes in this test".into())
        }
    }

    #[tokio::test]
    async fn leftovers_of_destroyed_apps_go_and_the_rest_stays() {
        let data = std::env::temp_dir().join(format!(
            "deis-repo-gc-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let slugs = deis_builder::slug_store::SlugStore::local(data.join("blobs")).unwrap();
        let builder = Builder::new(BuilderSettings::new(data.join("builder"), slugs));
        let hooks = HookServer::start(
            data.join("builder.sock"),
            builder.clone(),
            Arc::new(NoDeploys),
        )
        .await
        .unwrap();
        let disk = BuilderDisk {
            repos: GitRepos::new(data.join("repos"), hooks),
            repos_dir: data.join("repos"),
            builder: builder.clone(),
        };
        for app in ["kept", "gone"] {
            disk.repos.ensure_repo(app).await.unwrap();
            std::fs::create_dir_all(builder.cache_dir(app)).unwrap();
            let slug = data.join(format!("{app}.tgz"));
            std::fs::write(&slug, "slug").unwrap();
            builder.slugs().upload(app, "abc1234", &slug).await.unwrap();
        }
        std::fs::write(data.join("repos/not-an-app!.txt"), "left alone").unwrap();

        let directory = Apps(Mutex::new(Err("the controller is away".into())));
        assert!(collect_once(&directory, &disk).await.is_err());
        assert!(
            disk.repos.repo_path("gone").exists(),
            "nothing deleted blind"
        );

        *directory.0.lock().unwrap() = Ok(["kept".to_string()].into());
        assert_eq!(collect_once(&directory, &disk).await.unwrap(), ["gone"]);
        assert!(!disk.repos.repo_path("gone").exists());
        assert!(!builder.cache_dir("gone").exists());
        assert!(builder.slugs().list("gone").await.unwrap().is_empty());
        assert!(disk.repos.repo_path("kept").join("HEAD").is_file());
        assert!(builder.cache_dir("kept").is_dir());
        assert_eq!(builder.slugs().list("kept").await.unwrap().len(), 1);
        assert!(data.join("repos/not-an-app!.txt").is_file());
        assert!(collect_once(&directory, &disk).await.unwrap().is_empty());
        let _ = std::fs::remove_dir_all(data);
    }
}
