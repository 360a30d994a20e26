//! Slugs as images, for the container schedulers: Deis v1's builder turned every slug into
//! an image `FROM deis/slugrunner` with the slug added, and the schedulers ran that image.
//! Here the Docker and Swarm schedulers do it themselves when they are given a *slug
//! runner* (a stack image with `/bin/sh` and whatever the apps' processes need): the slug
//! `.tar.gz` (read through the scheduler's [`SlugFetcher`] when it handles the location —
//! the builder's blob store — else a path on the scheduler's host) is added under `/app`,
//! which is the working
//! directory, and the image is tagged `<prefix>deis-slug/<app>:<hash of the slug's
//! location>`, so it is built once per build: releases that only change config, rollbacks
//! and a restarted controller find it.
//!
//! Images are labelled `io.deis.owner` and `io.deis.app` so an operator (or a test) can
//! remove the images of one platform.
//!
//! With a registry (the Swarm scheduler's `SwarmConfig::registry`), the image is named
//! `<registry>/<prefix>deis-slug/<app>:<hash>` and pushed there once built, so the nodes
//! that run it can fetch it; a push that fails removes the local image (the next apply
//! builds and pushes again).

use super::engine::{map_err, LABEL_APP, LABEL_OWNER};
use crate::local::SlugFetcher;
use bollard::query_parameters::BuildImageOptionsBuilder;
use bollard::Docker;
use deis_core::error::{Error, Result};
use deis_core::scheduler::{AppSpec, Artifact};
use futures::StreamExt;
use std::borrow::Cow;

/// The label of the slug a slug image was built from.
pub(crate) const LABEL_SLUG: &str = "io.deis.slug";

/// The image tag of `app` built from the slug at `location`.
pub fn slug_image_name(name_prefix: &str, app: &str, location: &str) -> String {
    // FNV-1a: stable across processes and versions, unlike std's default hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in location.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let prefix = name_prefix.to_ascii_lowercase();
    let prefix: String = prefix
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        .collect();
    format!("{prefix}deis-slug/{app}:{hash:016x}")
}

/// Where a slug image comes from: the runner it is built on, and who owns it.
#[derive(Debug, Clone)]
pub(crate) struct SlugImages<'a> {
    pub docker: &'a Docker,
    /// The stack image slugs are added to; `None` refuses slugs.
    pub runner: Option<&'a str>,
    /// The scheduler's `io.deis.owner`.
    pub owner: &'a str,
    /// The scheduler's name prefix.
    pub name_prefix: &'a str,
    /// The scheduler's backend name, for messages.
    pub backend: &'static str,
    /// Reads slugs from where the builder stored them.
    pub fetcher: Option<&'a dyn SlugFetcher>,
    /// The registry (`host:port`) slug images are pushed to; `None` keeps them on the
    /// engine.
    pub registry: Option<&'a str>,
}

impl SlugImages<'_> {
    /// `spec` with a slug artifact replaced by its image (built when missing); image and
    /// empty artifacts pass unchanged.
    pub async fn resolve<'s>(&self, spec: &'s AppSpec) -> Result<Cow<'s, AppSpec>> {
        let Artifact::Slug { location } = &spec.artifact else {
            return Ok(Cow::Borrowed(spec));
        };
        let Some(runner) = self.runner else {
            return Err(Error::precondition(format!(
                "the {} scheduler runs images, not slugs ({location}); give it a slug runner \
                 image (runner=<image>) or use the local scheduler",
                self.backend
            )));
        };
        let mut name = slug_image_name(self.name_prefix, &spec.app, location);
        if let Some(registry) = self.registry {
            name = format!("{registry}/{name}");
        }
        if self.docker.inspect_image(&name).await.is_err() {
            self.build(runner, &name, spec, location).await?;
            if self.registry.is_some() {
                if let Err(e) = self.push(&name).await {
                    let _ = self
                        .docker
                        .remove_image(
                            &name,
                            None::<bollard::query_parameters::RemoveImageOptions>,
                            None,
                        )
                        .await;
                    return Err(e);
                }
            }
        }
        let mut resolved = spec.clone();
        resolved.artifact = Artifact::Image { name };
        Ok(Cow::Owned(resolved))
    }

    async fn build(&self, runner: &str, name: &str, spec: &AppSpec, location: &str) -> Result<()> {
        if self.docker.inspect_image(runner).await.is_err() {
            return Err(Error::precondition(format!(
                "the slug runner image {runner} is not on this Docker host (images are never pulled)"
            )));
        }
        let slug = match self.fetcher.filter(|f| f.handles(location)) {
            Some(fetcher) => {
                let staging = std::env::temp_dir().join(format!(
                    "deis-slug-{}-{}-{}.tgz",
                    std::process::id(),
                    spec.app,
                    spec.release
                ));
                let fetched = fetcher.fetch(location, &staging).await;
                let read = match fetched {
                    Ok(()) => tokio::fs::read(&staging).await.map_err(|e| {
                        Error::backend(self.backend, format!("reading the fetched slug: {e}"))
                    }),
                    Err(e) => Err(e),
                };
                let _ = tokio::fs::remove_file(&staging).await;
                read?
            }
            None => tokio::fs::read(location).await.map_err(|e| {
                Error::precondition(format!(
                    "slug {location} of {} v{} cannot be read on this host: {e}",
                    spec.app, spec.release
                ))
            })?,
        };
        let context = tokio::task::spawn_blocking({
            let runner = runner.to_string();
            move || build_context(&runner, &slug)
        })
        .await
        .map_err(|e| Error::backend(self.backend, e.to_string()))?
        .map_err(|e| Error::backend(self.backend, format!("packing the slug image: {e}")))?;
        let labels = std::collections::HashMap::from([
            (LABEL_OWNER.to_string(), self.owner.to_string()),
            (LABEL_APP.to_string(), spec.app.clone()),
            (LABEL_SLUG.to_string(), location.to_string()),
        ]);
        let options = BuildImageOptionsBuilder::new()
            .t(name)
            .rm(true)
            .forcerm(true)
            .labels(&labels)
            .build();
        let mut stream =
            self.docker
                .build_image(options, None, Some(bollard::body_full(context.into())));
        while let Some(item) = stream.next().await {
            let info = item.map_err(map_err)?;
            if let Some(error) = info.error_detail.and_then(|d| d.message) {
                return Err(Error::backend(
                    self.backend,
                    format!("building {name} from {location}: {error}"),
                ));
            }
        }
        tracing::info!(image = name, slug = location, "built the slug image");
        Ok(())
    }
}

impl SlugImages<'_> {
    /// Pushes `name` (`<registry>/<repository>:<tag>`) to its registry.
    async fn push(&self, name: &str) -> Result<()> {
        let (repository, tag) = name.rsplit_once(':').unwrap_or((name, "latest"));
        let options = bollard::query_parameters::PushImageOptionsBuilder::new()
            .tag(tag)
            .build();
        // A registry without authentication still wants the header.
        let mut stream = self.docker.push_image(
            repository,
            Some(options),
            Some(bollard::auth::DockerCredentials::default()),
        );
        while let Some(item) = stream.next().await {
            let info = item.map_err(map_err)?;
            if let Some(error) = info.error_detail.and_then(|d| d.message) {
                return Err(Error::backend(
                    self.backend,
                    format!("pushing {name}: {error}"),
                ));
            }
        }
        tracing::info!(image = name, "pushed the slug image to the registry");
        Ok(())
    }
}

/// A build context of a Dockerfile adding `slug.tgz` (unpacked by `ADD`) to `/app`.
fn build_context(runner: &str, slug: &[u8]) -> std::io::Result<Vec<u8>> {
    let dockerfile = format!("FROM {runner}\nADD slug.tgz /app/\nWORKDIR /app\nENV HOME=/app\n");
    let mut archive = tar::Builder::new(Vec::new());
    for (path, data) in [("Dockerfile", dockerfile.as_bytes()), ("slug.tgz", slug)] {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        archive.append_data(&mut header, path, data)?;
    }
    archive.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_per_slug() {
        let a = slug_image_name("", "go", "/var/lib/deis/builder/slugs/go/abc.tgz");
        assert!(a.starts_with("deis-slug/go:"), "{a}");
        assert_eq!(a.len(), "deis-slug/go:".len() + 16, "{a}");
        assert_eq!(
            a,
            slug_image_name("", "go", "/var/lib/deis/builder/slugs/go/abc.tgz")
        );
        assert_ne!(
            a,
            slug_image_name("", "go", "/var/lib/deis/builder/slugs/go/def.tgz")
        );
        assert!(slug_image_name("T1_", "go", "x").starts_with("t1_deis-slug/go:"));
    }

    #[test]
    fn the_context_adds_the_slug_to_app() {
        let context = build_context("stack:1", b"not really gzip").unwrap();
        let mut archive = tar::Archive::new(context.as_slice());
        let mut names = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().display().to_string();
            if name == "Dockerfile" {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
                assert!(
                    text.starts_with("FROM stack:1\nADD slug.tgz /app/\n"),
                    "{text}"
                );
            }
            names.push(name);
        }
        assert_eq!(names, ["Dockerfile", "slug.tgz"]);
    }
}
