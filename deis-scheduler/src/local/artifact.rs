//! Where a local instance runs: the release's unpacked slug directory.

use async_trait::async_trait;
use deis_core::error::{Error, Result};
use deis_core::scheduler::{AppSpec, Artifact};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long unpacking one slug may take.
const UNPACK_TIMEOUT: Duration = Duration::from_secs(300);

/// Fetches slugs that do not live on this host's file system (e.g. `blob:` keys of a blob
/// store) so the local scheduler can unpack them. Set one in
/// [`LocalConfig::slug_fetcher`](super::LocalConfig::slug_fetcher).
#[async_trait]
pub trait SlugFetcher: std::fmt::Debug + Send + Sync + 'static {
    /// Whether this fetcher understands `location`; other locations are host paths.
    fn handles(&self, location: &str) -> bool;

    /// Copies the slug (a `.tar.gz`) at `location` into the file `destination`. A slug
    /// that no longer exists is `Error::Precondition` with a message for the user.
    async fn fetch(&self, location: &str, destination: &Path) -> Result<()>;
}

/// The directory the release's processes start in.
///
/// A `Slug` location is a location the configured [`SlugFetcher`] handles (fetched and
/// unpacked once per release), a directory that already holds the unpacked app, or a
/// `.tar.gz`/`.tgz` file; slugs are unpacked under `<data_dir>/slugs/<app>/v<N>`. A
/// Heroku-style slug whose only top-level entry is `app/` runs from that directory.
pub(crate) async fn working_dir(
    data_dir: &Path,
    fetcher: Option<&dyn SlugFetcher>,
    spec: &AppSpec,
) -> Result<PathBuf> {
    let location = match &spec.artifact {
        Artifact::None => {
            return Err(Error::precondition(format!(
                "{} has no build to run; push code or deploy an image first",
                spec.app
            )))
        }
        Artifact::Image { name } => {
            return Err(Error::precondition(format!(
                "the local scheduler runs slugs, not container images ({name}); \
                 use the docker scheduler for image deploys"
            )))
        }
        Artifact::Slug { location } => location,
    };
    let target = data_dir
        .join("slugs")
        .join(&spec.app)
        .join(format!("v{}", spec.release));
    if let Some(fetcher) = fetcher.filter(|f| f.handles(location)) {
        if !target.join(".deis-unpacked").is_file() {
            let download = target.with_extension("tgz");
            if let Some(parent) = download.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(|e| io_error("creating the slug directory", e))?;
            }
            fetcher.fetch(location, &download).await?;
            let unpacked = unpack(&download, &target).await;
            let _ = tokio::fs::remove_file(&download).await;
            unpacked?;
        }
        return Ok(app_dir(&target));
    }
    let location = PathBuf::from(location);
    if location.is_dir() {
        return Ok(location);
    }
    let name = location.to_string_lossy();
    if !(location.is_file() && (name.ends_with(".tar.gz") || name.ends_with(".tgz"))) {
        return Err(Error::precondition(format!(
            "slug {name} of {} v{} is neither a directory nor a .tar.gz file on this host",
            spec.app, spec.release
        )));
    }
    if !target.join(".deis-unpacked").is_file() {
        unpack(&location, &target).await?;
    }
    Ok(app_dir(&target))
}

/// The directory to run in: `app/` of a Heroku-style slug, else the slug's root.
fn app_dir(target: &Path) -> PathBuf {
    let app_dir = target.join("app");
    if app_dir.is_dir() && !target.join("Procfile").exists() {
        return app_dir;
    }
    target.to_path_buf()
}

/// Unpacks `archive` into `target` through a temporary sibling directory, so a half
/// unpacked slug is never used.
async fn unpack(archive: &Path, target: &Path) -> Result<()> {
    let parent = target
        .parent()
        .ok_or_else(|| Error::precondition(format!("bad slug target {}", target.display())))?;
    tokio::fs::create_dir_all(parent)
        .await
        .map_err(|e| io_error("creating the slug directory", e))?;
    let staging = parent.join(format!(
        ".unpack-{}-{}",
        std::process::id(),
        target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    let _ = tokio::fs::remove_dir_all(&staging).await;
    tokio::fs::create_dir_all(&staging)
        .await
        .map_err(|e| io_error("creating the unpack directory", e))?;
    let output = tokio::process::Command::new("tar")
        .arg("-xzf")
        .arg(archive)
        .arg("-C")
        .arg(&staging)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(UNPACK_TIMEOUT, output)
        .await
        .map_err(|_| Error::Unavailable {
            backend: "local",
            message: format!(
                "unpacking {} took longer than {UNPACK_TIMEOUT:?}",
                archive.display()
            ),
        })?
        .map_err(|e| io_error("running tar", e))?;
    if !output.status.success() {
        let _ = tokio::fs::remove_dir_all(&staging).await;
        return Err(Error::precondition(format!(
            "slug {} could not be unpacked: {}",
            archive.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    tokio::fs::write(staging.join(".deis-unpacked"), b"")
        .await
        .map_err(|e| io_error("marking the slug unpacked", e))?;
    let _ = tokio::fs::remove_dir_all(target).await;
    tokio::fs::rename(&staging, target)
        .await
        .map_err(|e| io_error("moving the unpacked slug into place", e))
}

fn io_error(what: &str, error: std::io::Error) -> Error {
    Error::backend("local", format!("{what}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(artifact: Artifact) -> AppSpec {
        let mut spec = AppSpec::new("go", 3);
        spec.artifact = artifact;
        spec
    }

    #[tokio::test]
    async fn a_directory_is_used_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let location = dir.path().to_string_lossy().into_owned();
        let got = working_dir(dir.path(), None, &spec(Artifact::Slug { location }))
            .await
            .unwrap();
        assert_eq!(got, dir.path());
    }

    #[tokio::test]
    async fn a_tarball_is_unpacked_once_per_release() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src/app");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("hello.txt"), "hi").unwrap();
        let archive = dir.path().join("slug.tgz");
        let status = std::process::Command::new("tar")
            .arg("-czf")
            .arg(&archive)
            .arg("-C")
            .arg(dir.path().join("src"))
            .arg("app")
            .status()
            .unwrap();
        assert!(status.success());
        let data = dir.path().join("data");
        let location = archive.to_string_lossy().into_owned();
        let got = working_dir(&data, None, &spec(Artifact::Slug { location }))
            .await
            .unwrap();
        assert_eq!(got, data.join("slugs/go/v3/app"));
        assert_eq!(
            std::fs::read_to_string(got.join("hello.txt")).unwrap(),
            "hi"
        );
    }

    /// Serves `store:<name>` from a directory, counting fetches.
    #[derive(Debug)]
    struct DirFetcher {
        dir: PathBuf,
        fetches: std::sync::atomic::AtomicUsize,
    }

    #[async_trait]
    impl SlugFetcher for DirFetcher {
        fn handles(&self, location: &str) -> bool {
            location.starts_with("store:")
        }

        async fn fetch(&self, location: &str, destination: &Path) -> Result<()> {
            self.fetches
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let source = self.dir.join(location.trim_start_matches("store:"));
            if !source.is_file() {
                return Err(Error::precondition(format!("{location} is gone")));
            }
            tokio::fs::copy(source, destination)
                .await
                .map(|_| ())
                .map_err(|e| io_error("copying", e))
        }
    }

    #[tokio::test]
    async fn a_fetched_slug_is_fetched_and_unpacked_once_per_release() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("Procfile"), "web: ./x").unwrap();
        let store = dir.path().join("store");
        std::fs::create_dir_all(&store).unwrap();
        let status = std::process::Command::new("tar")
            .arg("-czf")
            .arg(store.join("a.tgz"))
            .arg("-C")
            .arg(&src)
            .arg(".")
            .status()
            .unwrap();
        assert!(status.success());
        let fetcher = DirFetcher {
            dir: store,
            fetches: Default::default(),
        };
        let data = dir.path().join("data");
        let slug = || {
            spec(Artifact::Slug {
                location: "store:a.tgz".into(),
            })
        };
        for _ in 0..2 {
            let got = working_dir(&data, Some(&fetcher), &slug()).await.unwrap();
            assert_eq!(got, data.join("slugs/go/v3"));
            assert!(got.join("Procfile").is_file());
        }
        assert_eq!(fetcher.fetches.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(
            !data.join("slugs/go/v3.tgz").exists(),
            "the download is removed"
        );
        let gone = spec(Artifact::Slug {
            location: "store:gone.tgz".into(),
        });
        let mut gone = gone;
        gone.release = 4;
        let err = working_dir(&data, Some(&fetcher), &gone).await.unwrap_err();
        assert!(err.to_string().contains("is gone"), "{err}");
    }

    #[tokio::test]
    async fn missing_slugs_images_and_nothing_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for artifact in [
            Artifact::None,
            Artifact::Image {
                name: "busybox".into(),
            },
            Artifact::Slug {
                location: "/no/such/slug.tgz".into(),
            },
        ] {
            let err = working_dir(dir.path(), None, &spec(artifact))
                .await
                .unwrap_err();
            assert!(matches!(err, Error::Precondition { .. }), "{err}");
        }
        let broken = dir.path().join("broken.tar.gz");
        std::fs::write(&broken, "not gzip").unwrap();
        let location = broken.to_string_lossy().into_owned();
        let err = working_dir(dir.path(), None, &spec(Artifact::Slug { location }))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("could not be unpacked"), "{err}");
    }
}
