//! Where a local instance runs: the release's unpacked slug directory.

use deis_core::error::{Error, Result};
use deis_core::scheduler::{AppSpec, Artifact};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long unpacking one slug may take.
const UNPACK_TIMEOUT: Duration = Duration::from_secs(300);

/// The directory the release's processes start in.
///
/// A `Slug` location is either a directory that already holds the unpacked app, or a
/// `.tar.gz`/`.tgz` file, unpacked once per release under `<data_dir>/slugs/<app>/v<N>`. A
/// Heroku-style slug whose only top-level entry is `app/` runs from that directory.
pub(crate) async fn working_dir(data_dir: &Path, spec: &AppSpec) -> Result<PathBuf> {
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
        Artifact::Slug { location } => PathBuf::from(location),
    };
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
    let target = data_dir
        .join("slugs")
        .join(&spec.app)
        .join(format!("v{}", spec.release));
    if !target.join(".deis-unpacked").is_file() {
        unpack(&location, &target).await?;
    }
    let app_dir = target.join("app");
    if app_dir.is_dir() && !target.join("Procfile").exists() {
        return Ok(app_dir);
    }
    Ok(target)
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
        let got = working_dir(dir.path(), &spec(Artifact::Slug { location }))
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
        let got = working_dir(&data, &spec(Artifact::Slug { location }))
            .await
            .unwrap();
        assert_eq!(got, data.join("slugs/go/v3/app"));
        assert_eq!(
            std::fs::read_to_string(got.join("hello.txt")).unwrap(),
            "hi"
        );
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
            let err = working_dir(dir.path(), &spec(artifact)).await.unwrap_err();
            assert!(matches!(err, Error::Precondition { .. }), "{err}");
        }
        let broken = dir.path().join("broken.tar.gz");
        std::fs::write(&broken, "not gzip").unwrap();
        let location = broken.to_string_lossy().into_owned();
        let err = working_dir(dir.path(), &spec(Artifact::Slug { location }))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("could not be unpacked"), "{err}");
    }
}
