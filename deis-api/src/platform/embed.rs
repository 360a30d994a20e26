//! Conveniences for Rust programs that embed the platform: start it on embedded defaults
//! ([`Platform::embedded`]), deploy an app from a directory through the real build
//! pipeline ([`Platform::deploy_dir`]) and send requests through the router by host name
//! ([`Platform::request`], [`Platform::get`]).
//!
//! `deploy_dir` is what a `git push` does without git: the same permission check, the
//! app's config as the build environment, the same [`Builder`] (buildpacks, `.slugignore`,
//! safety limits), then a build record, a release and a health-gated rollout through the
//! controller. It records no push (there was none) and names the build by a digest of the
//! source tree instead of a commit.

use super::Platform;
use crate::controller::ServiceError;
use crate::wire::BuildRequest;
use deis_builder::{BuildError, Builder};
use deis_core::model::{Release, User};
use deis_core::Router as _;
use deis_router::BuiltinRouter;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How long [`Platform::deploy_dir`] waits for the router to send traffic to a new release.
pub const ROUTE_WAIT: Duration = Duration::from_secs(30);

/// The parts of a running platform the embedding helpers use.
#[derive(Debug)]
pub(super) struct EmbedParts {
    /// The built-in router, to see what it routes.
    pub(super) router: Arc<BuiltinRouter>,
    /// The builder pushes use (same settings and buildpacks).
    pub(super) builder: Builder,
    /// The client of [`Platform::request`].
    pub(super) http: reqwest::Client,
}

impl EmbedParts {
    pub(super) fn new(router: Arc<BuiltinRouter>, builder: Builder) -> Self {
        EmbedParts {
            router,
            builder,
            http: reqwest::Client::new(),
        }
    }
}

/// Why [`Platform::deploy_dir`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeployError {
    /// The controller refused or failed: no such app, no permission, a failed rollout (the
    /// app keeps its previous release then).
    #[error(transparent)]
    Controller(#[from] ServiceError),
    /// The build failed; nothing was released.
    #[error("the build failed: {error}")]
    Build {
        /// Why.
        error: BuildError,
        /// What the build printed, as a pusher would have seen it.
        log: Vec<String>,
    },
    /// The source could not be read or copied.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The release was made, but the router did not route only to it in time.
    #[error("{app} v{version} was not routed within {} s", wait.as_secs())]
    NotRouted {
        /// The app.
        app: String,
        /// The release.
        version: u64,
        /// How long it waited.
        wait: Duration,
    },
}

fn io_error(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> DeployError {
    let context = context.into();
    move |source| DeployError::Io { context, source }
}

impl Platform {
    /// Starts the whole platform for an embedding program: in-memory store and discovery,
    /// apps as local processes, the API and the router on free loopback ports, apps at
    /// `<app>.localhost`, and logs, slugs and repositories under `data_dir` (created when
    /// missing). SSH and syslog stay off; use [`Platform::start`] for anything else.
    ///
    /// ```
    /// # #[tokio::main(flavor = "multi_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let data = std::env::temp_dir().join(format!("deis-doc-embedded-{}", std::process::id()));
    /// let platform = deis_api::platform::Platform::embedded(&data).await?;
    /// assert!(platform.router_addr().ip().is_loopback());
    /// assert_eq!(platform.app_host("hello"), "hello.localhost");
    /// // No app answers at this host: the router says so.
    /// let answer = platform.get("nothing.localhost", "/").await?;
    /// assert_eq!(answer.status(), 404);
    /// platform.shutdown().await;
    /// std::fs::remove_dir_all(data)?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn embedded(data_dir: impl Into<PathBuf>) -> deis_core::Result<Platform> {
        let config = super::PlatformConfig::ephemeral(data_dir, "localhost");
        Platform::start(config, super::Backends::in_memory()).await
    }

    /// The host name an app answers at: `<app>.<platform domain>`.
    pub fn app_host(&self, app: &str) -> String {
        format!("{app}.{}", self.controller.settings().platform_domain)
    }

    /// A request through the platform's router to whatever serves `host` (an app's
    /// [`Platform::app_host`] or one of its custom domains): `path` on the router's address
    /// with that `Host` header. Send it with `.send().await`.
    pub fn request(
        &self,
        method: reqwest::Method,
        host: &str,
        path: &str,
    ) -> reqwest::RequestBuilder {
        let path = path.trim_start_matches('/');
        self.embed
            .http
            .request(method, format!("http://{}/{path}", self.router_addr))
            .header(reqwest::header::HOST, host)
    }

    /// `GET path` through the router for `host` (see [`Platform::request`]).
    pub async fn get(&self, host: &str, path: &str) -> reqwest::Result<reqwest::Response> {
        self.request(reqwest::Method::GET, host, path).send().await
    }

    /// Builds the app in `source` (a directory) as a push would, releases it and rolls it
    /// out as `user`, and returns the new release once the router sends the app's traffic
    /// only to it (when the app runs `web` processes).
    ///
    /// The directory is copied first (a build works in place) and left untouched; `.git`
    /// directories are skipped. The build is named by the first 7 hex digits of a SHA-256
    /// of the tree, so the release summary reads `ada deployed 1a2b3c4`. A failed build
    /// releases nothing and returns its log in [`DeployError::Build`].
    pub async fn deploy_dir(
        &self,
        user: &User,
        app: &str,
        source: impl AsRef<Path>,
    ) -> Result<Release, DeployError> {
        let app = self.controller.get_app(user, app).await?;
        let config = self.controller.get_config(user, &app.id).await?;
        let source = source.as_ref().to_path_buf();
        let work = self
            .embed
            .builder
            .settings()
            .data_dir
            .join("embedded")
            .join(format!("{}-{}", app.id, uuid::Uuid::new_v4().simple()));
        let copy_to = work.clone();
        let digest = tokio::task::spawn_blocking(move || copy_and_digest(&source, &copy_to))
            .await
            .map_err(|e| io_error("copying the source")(std::io::Error::other(e)))??;
        let request = deis_builder::BuildRequest {
            app: app.id.clone(),
            sha: digest[..7].to_string(),
            source_dir: work.clone(),
            env: config.values,
        };
        let (log, mut lines) = tokio::sync::mpsc::channel(1024);
        let collector = tokio::spawn(async move {
            let mut all = Vec::new();
            while let Some(line) = lines.recv().await {
                all.push(line);
            }
            all
        });
        let built = self.embed.builder.build(&request, &log).await;
        drop(log);
        let log = collector.await.unwrap_or_default();
        let _ = tokio::fs::remove_dir_all(&work).await;
        let built = built.map_err(|error| DeployError::Build { error, log })?;
        let build = BuildRequest {
            dockerfile: if built.dockerfile {
                "true".into()
            } else {
                String::new()
            },
            image: built.slug,
            procfile: built.procfile,
            sha: request.sha,
        };
        let (_, release) = self.controller.create_build(user, &app.id, &build).await?;
        let app = self.controller.get_app(user, &app.id).await?;
        if app.structure.get("web").is_some_and(|n| *n > 0) {
            self.wait_routed(&app.id, release.version, ROUTE_WAIT)
                .await?;
        }
        Ok(release)
    }

    /// Waits until the router sends `app`'s traffic only to instances of release
    /// `version` (at least one, none of an older release), at most `wait`.
    pub async fn wait_routed(
        &self,
        app: &str,
        version: u64,
        wait: Duration,
    ) -> Result<(), DeployError> {
        let prefix = format!("{app}_v{version}.");
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Ok(table) = self.embed.router.current().await {
                let routed = table.apps.get(app).is_some_and(|route| {
                    !route.endpoints.is_empty()
                        && route.endpoints.keys().all(|job| job.starts_with(&prefix))
                });
                if routed {
                    return Ok(());
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(DeployError::NotRouted {
                    app: app.to_string(),
                    version,
                    wait,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Copies the tree at `source` to `target` (files, directories, symbolic links as links;
/// `.git` skipped) and returns the hex SHA-256 of its paths, kinds and contents, in a
/// deterministic order.
fn copy_and_digest(source: &Path, target: &Path) -> Result<String, DeployError> {
    let meta =
        std::fs::metadata(source).map_err(io_error(format!("reading {}", source.display())))?;
    if !meta.is_dir() {
        return Err(DeployError::Io {
            context: format!("{} is not a directory", source.display()),
            source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
        });
    }
    let mut hasher = Sha256::new();
    copy_dir(source, target, Path::new(""), &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

fn copy_dir(
    source: &Path,
    target: &Path,
    relative: &Path,
    hasher: &mut Sha256,
) -> Result<(), DeployError> {
    std::fs::create_dir_all(target).map_err(io_error(format!("creating {}", target.display())))?;
    let mut entries: Vec<_> = std::fs::read_dir(source)
        .map_err(io_error(format!("reading {}", source.display())))?
        .collect::<Result<_, _>>()
        .map_err(io_error(format!("reading {}", source.display())))?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let name = entry.file_name();
        if name == ".git" {
            continue;
        }
        let from = entry.path();
        let to = target.join(&name);
        let path = relative.join(&name);
        let kind = entry
            .file_type()
            .map_err(io_error(format!("reading {}", from.display())))?;
        hasher.update(path.as_os_str().as_encoded_bytes());
        if kind.is_dir() {
            hasher.update(b"\0d\0");
            copy_dir(&from, &to, &path, hasher)?;
        } else if kind.is_symlink() {
            let link = std::fs::read_link(&from)
                .map_err(io_error(format!("reading {}", from.display())))?;
            hasher.update(b"\0l\0");
            hasher.update(link.as_os_str().as_encoded_bytes());
            std::os::unix::fs::symlink(&link, &to)
                .map_err(io_error(format!("copying {}", from.display())))?;
        } else {
            let content =
                std::fs::read(&from).map_err(io_error(format!("reading {}", from.display())))?;
            hasher.update(b"\0f\0");
            hasher.update((content.len() as u64).to_le_bytes());
            hasher.update(&content);
            std::fs::copy(&from, &to).map_err(io_error(format!("copying {}", from.display())))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::RegisterRequest;

    fn sample_app() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/apps/python-env")
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "deis-embed-{name}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_digest_follows_content_and_skips_git() {
        let source = scratch("digest-src");
        std::fs::write(source.join("Procfile"), "web: ./run\n").unwrap();
        std::fs::create_dir_all(source.join(".git/objects")).unwrap();
        std::fs::write(source.join(".git/HEAD"), "ref: refs/heads/master\n").unwrap();
        std::fs::create_dir_all(source.join("lib")).unwrap();
        std::fs::write(source.join("lib/a.txt"), "a").unwrap();
        let first = copy_and_digest(&source, &scratch("digest-a").join("t")).unwrap();
        let copy = scratch("digest-b").join("t");
        let again = copy_and_digest(&source, &copy).unwrap();
        assert_eq!(first, again);
        assert!(copy.join("lib/a.txt").is_file());
        assert!(!copy.join(".git").exists());
        std::fs::write(source.join(".git/HEAD"), "changed").unwrap();
        assert_eq!(
            first,
            copy_and_digest(&source, &scratch("digest-c").join("t")).unwrap()
        );
        std::fs::write(source.join("lib/a.txt"), "b").unwrap();
        assert_ne!(
            first,
            copy_and_digest(&source, &scratch("digest-d").join("t")).unwrap()
        );
        let missing = copy_and_digest(&source.join("nope"), &scratch("digest-e"));
        assert!(
            matches!(missing, Err(DeployError::Io { .. })),
            "{missing:?}"
        );
    }

    /// The real pipeline and real processes (python3): each deploy is routed only to its
    /// release when `deploy_dir` returns, a failed build releases nothing, and a user who
    /// may not use the app cannot deploy it.
    #[tokio::test(flavor = "multi_thread")]
    async fn deploys_a_directory_and_routes_only_to_the_new_release() {
        let data = scratch("platform");
        let platform = Platform::embedded(&data).await.unwrap();
        let deis = &platform.controller;
        let ada = deis
            .register(
                None,
                &RegisterRequest::new("ada", "pw-ada", "ada@example.com"),
            )
            .await
            .unwrap();
        let app = deis.create_app(&ada, Some("hello")).await.unwrap();
        let host = platform.app_host(&app.id);

        let v2 = platform
            .deploy_dir(&ada, &app.id, sample_app())
            .await
            .unwrap();
        assert_eq!(v2.version, 2);
        assert!(v2.summary.starts_with("ada deployed "), "{}", v2.summary);
        let body = platform
            .get(&host, "/")
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(body.starts_with("hello from hello v2 "), "{body}");

        let v3 = platform
            .deploy_dir(&ada, &app.id, sample_app())
            .await
            .unwrap();
        assert_eq!(v3.version, 3);
        for _ in 0..5 {
            let body = platform
                .get(&host, "/")
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert!(body.starts_with("hello from hello v3 "), "{body}");
        }

        let broken = scratch("broken");
        std::fs::write(broken.join("Procfile"), "web python3 app.py\n").unwrap();
        match platform.deploy_dir(&ada, &app.id, &broken).await {
            Err(DeployError::Build { error, .. }) => {
                assert!(error.to_string().contains("Procfile"), "{error}")
            }
            other => panic!("expected a build failure, got {other:?}"),
        }
        let latest = deis.store().latest_release(&app.id).await.unwrap();
        assert_eq!(latest.version, 3);

        let bob = deis
            .register(
                None,
                &RegisterRequest::new("bob", "pw-bob", "bob@example.com"),
            )
            .await
            .unwrap();
        match platform.deploy_dir(&bob, &app.id, sample_app()).await {
            Err(DeployError::Controller(ServiceError::Forbidden(_))) => {}
            other => panic!("expected a refusal, got {other:?}"),
        }
        match platform.deploy_dir(&ada, "missing", sample_app()).await {
            Err(DeployError::Controller(ServiceError::NotFound(_))) => {}
            other => panic!("expected not found, got {other:?}"),
        }
        let unknown = platform.get("nobody.localhost", "/").await.unwrap();
        assert_eq!(unknown.status(), 404);

        platform.shutdown().await;
        let _ = std::fs::remove_dir_all(data);
    }
}
