//! The build pipeline: checks, then either a Dockerfile build ([`crate::image`]) or
//! `.slugignore`, buildpack detection, compile, release, process types, and the slug.
//!
//! Which one: a `Dockerfile` at the root builds an image when the builder has an
//! [`ImageBuilder`] (the scheduler runs images), unless `BUILDPACK_URL` is set. Without an
//! image builder (the local scheduler) the app is built with buildpacks if one detects it
//! (the Dockerfile is then ignored, and the pusher is told so); a Dockerfile app that no
//! buildpack detects is refused with the reason.

use crate::buildpack::{self, BuildLog, Buildpack};
use crate::image::ImageBuilder;
use crate::procfile;
use crate::slug::{self, SlugLimits};
use crate::slug_store::SlugStore;
use crate::BuildError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How a [`Builder`] works.
#[derive(Debug, Clone)]
pub struct BuilderSettings {
    /// Where caches (`cache/<app>`), fetched buildpacks and work directories (`tmp/`) live.
    pub data_dir: PathBuf,
    /// Where finished slugs are stored.
    pub slugs: SlugStore,
    /// Buildpack directories tried in order by `bin/detect`.
    pub buildpacks: Vec<PathBuf>,
    /// Size limits for the source and the slug.
    pub limits: SlugLimits,
    /// The longest any one step (detect, compile, release, fetch, docker build) may run.
    pub step_timeout: Duration,
    /// Where `Dockerfile` apps are built: the Docker Engine the platform's scheduler runs
    /// images from (Docker or Swarm). `None` when the scheduler runs local processes:
    /// Dockerfile apps are then refused (see the module documentation).
    pub image_builder: Option<ImageBuilder>,
}

/// Why a Dockerfile app is refused by a builder without an [`ImageBuilder`].
pub const NO_IMAGE_BUILDS: &str = "Dockerfile builds need the docker or swarm scheduler; \
    this platform runs apps as local processes";

impl BuilderSettings {
    /// Settings with no buildpacks besides the built-in procfile one, slugs stored in
    /// `slugs`.
    pub fn new(data_dir: impl Into<PathBuf>, slugs: SlugStore) -> Self {
        BuilderSettings {
            data_dir: data_dir.into(),
            slugs,
            buildpacks: Vec::new(),
            limits: SlugLimits::default(),
            step_timeout: Duration::from_secs(15 * 60),
            image_builder: None,
        }
    }
}

/// One build to do.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// The app's name.
    pub app: String,
    /// The commit being built.
    pub sha: String,
    /// The checked-out source; the build happens in place.
    pub source_dir: PathBuf,
    /// The app's config values (`BUILDPACK_URL` among them, when set).
    pub env: BTreeMap<String, String>,
}

/// What a successful build produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOutput {
    /// The build's `image`: where the slug is stored, `blob:slugs/<app>/<sha>-<unique>.tgz`
    /// (see [`crate::slug_store`]), or for a Dockerfile build the image, `<app>:git-<sha7>`.
    pub slug: String,
    /// The slug's size in bytes (0 for a Dockerfile build).
    pub slug_bytes: u64,
    /// Process types: the buildpack's defaults overridden by the app's Procfile; for a
    /// Dockerfile build the Procfile's types (`cmd`, the image's own command, is implied).
    pub procfile: BTreeMap<String, String>,
    /// The buildpack that built it (`Dockerfile` for a Dockerfile build).
    pub buildpack: String,
    /// Whether this is a Dockerfile build: `slug` is then a container image.
    pub dockerfile: bool,
}

/// Builds apps into slugs.
#[derive(Debug, Clone)]
pub struct Builder {
    settings: BuilderSettings,
}

impl Builder {
    /// A builder with these settings.
    pub fn new(settings: BuilderSettings) -> Self {
        Builder { settings }
    }

    /// The settings in force.
    pub fn settings(&self) -> &BuilderSettings {
        &self.settings
    }

    /// The directory kept between builds of an app (the buildpack `CACHE_DIR`).
    pub fn cache_dir(&self, app: &str) -> PathBuf {
        self.settings.data_dir.join("cache").join(app)
    }

    /// The slug store.
    pub fn slugs(&self) -> &SlugStore {
        &self.settings.slugs
    }

    /// Deletes what the builder keeps for `app` besides its repository: the build cache,
    /// every stored slug and, with an image builder, the images of its Dockerfile builds
    /// (when the app is destroyed).
    pub async fn remove_app(&self, app: &str) -> Result<(), BuildError> {
        deis_core::validation::app_id(app, &[]).map_err(|e| BuildError::Rejected(e.to_string()))?;
        match tokio::fs::remove_dir_all(self.cache_dir(app)).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(BuildError::io("removing the build cache")(e)),
        }
        self.settings.slugs.remove_app(app).await?;
        if let Some(images) = &self.settings.image_builder {
            images.remove_app_images(app).await?;
        }
        Ok(())
    }

    /// Runs the whole pipeline, streaming progress to `log`.
    pub async fn build(
        &self,
        request: &BuildRequest,
        log: &BuildLog,
    ) -> Result<BuildOutput, BuildError> {
        deis_core::validation::app_id(&request.app, &[])
            .map_err(|e| BuildError::Rejected(e.to_string()))?;
        if request.sha.is_empty() || !request.sha.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(BuildError::Rejected(format!(
                "{:?} is not a commit id",
                request.sha
            )));
        }
        let build_dir = request.source_dir.as_path();
        let limits = self.settings.limits;
        let dir = build_dir.to_path_buf();
        blocking(move || slug::check_tree(&dir, limits)).await?;
        let has_dockerfile = build_dir.join("Dockerfile").is_file();
        let buildpack_url = request
            .env
            .get("BUILDPACK_URL")
            .map(|u| u.trim())
            .filter(|u| !u.is_empty());
        if has_dockerfile && buildpack_url.is_none() {
            if let Some(images) = &self.settings.image_builder {
                return self.build_image(images, request, log).await;
            }
        }
        let dir = build_dir.to_path_buf();
        let ignored = blocking(move || slug::apply_slugignore(&dir)).await?;
        if ignored > 0 {
            say(
                log,
                format!("-----> Removed {ignored} path(s) named in .slugignore"),
            )
            .await;
        }
        let repo_procfile = match tokio::fs::read_to_string(build_dir.join("Procfile")).await {
            Ok(text) => Some(procfile::parse(&text)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(BuildError::io("reading the Procfile")(e)),
        };
        let timeout = self.settings.step_timeout;
        let pack = match buildpack_url {
            Some(url) => {
                buildpack::fetch(
                    url,
                    &self.settings.data_dir.join("buildpacks"),
                    log,
                    timeout,
                )
                .await?
            }
            None => {
                match buildpack::detect(&self.settings.buildpacks, build_dir, log, timeout).await {
                    Err(BuildError::NoBuildpack) if has_dockerfile => {
                        return Err(BuildError::Rejected(format!(
                            "this app has a Dockerfile: {NO_IMAGE_BUILDS}. Add a Procfile to \
                             run it with buildpacks."
                        )))
                    }
                    Ok(pack) if has_dockerfile => {
                        say(
                            log,
                            format!(
                                "-----> Dockerfile ignored: {NO_IMAGE_BUILDS}; building with \
                                 the {} buildpack",
                                pack.name()
                            ),
                        )
                        .await;
                        pack
                    }
                    other => other?,
                }
            }
        };
        say(log, format!("-----> {} app detected", pack.name())).await;
        let mut processes = BTreeMap::new();
        if let Buildpack::Directory { name, path } = &pack {
            processes = self.compile(request, name, path, log).await?;
        }
        if let Some(declared) = repo_procfile {
            processes.extend(declared);
        }
        if processes.is_empty() {
            return Err(BuildError::Rejected(
                "no process types: add a Procfile (e.g. `web: ./server`)".into(),
            ));
        }
        say(log, "-----> Discovering process types".into()).await;
        let types: Vec<&str> = processes.keys().map(String::as_str).collect();
        say(
            log,
            format!("       Procfile declares types -> {}", types.join(", ")),
        )
        .await;
        let dir = build_dir.to_path_buf();
        blocking(move || slug::check_tree(&dir, limits)).await?;
        let staging = self.settings.data_dir.join("tmp").join(format!(
            "slug-{}-{}.tgz",
            request.app,
            uuid::Uuid::new_v4().simple()
        ));
        let dir = build_dir.to_path_buf();
        let target = staging.clone();
        let packed = blocking(move || slug::pack(&dir, &target)).await;
        let stored = match packed {
            Ok(bytes) => self
                .settings
                .slugs
                .upload(&request.app, &request.sha, &staging)
                .await
                .map(|location| (bytes, location)),
            Err(error) => Err(error),
        };
        let _ = tokio::fs::remove_file(&staging).await;
        let (slug_bytes, location) = stored?;
        say(
            log,
            format!("-----> Compiled slug size is {}", human_size(slug_bytes)),
        )
        .await;
        Ok(BuildOutput {
            slug: location,
            slug_bytes,
            procfile: processes,
            buildpack: pack.name().to_string(),
            dockerfile: false,
        })
    }

    /// A Dockerfile build: the image, its process types (a Procfile adds to `cmd`), and a
    /// refusal when it has nothing to run.
    async fn build_image(
        &self,
        images: &ImageBuilder,
        request: &BuildRequest,
        log: &BuildLog,
    ) -> Result<BuildOutput, BuildError> {
        let build_dir = request.source_dir.as_path();
        let procfile = match tokio::fs::read_to_string(build_dir.join("Procfile")).await {
            Ok(text) => procfile::parse(&text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(BuildError::io("reading the Procfile")(e)),
        };
        say(
            log,
            "-----> Dockerfile app detected; building the image".into(),
        )
        .await;
        let tmp = self.settings.data_dir.join("tmp");
        tokio::fs::create_dir_all(&tmp)
            .await
            .map_err(BuildError::io("creating a temporary directory"))?;
        let staging = tmp.join(format!(
            "context-{}-{}.tar",
            request.app,
            uuid::Uuid::new_v4().simple()
        ));
        let built = images
            .build(
                &request.app,
                &request.sha,
                build_dir,
                &staging,
                log,
                self.settings.step_timeout,
            )
            .await?;
        if !built.has_command && procfile.is_empty() {
            let _ = images.remove(&built.image).await;
            return Err(BuildError::Rejected(
                "the image has no CMD (or ENTRYPOINT) and there is no Procfile: \
                 nothing to run"
                    .into(),
            ));
        }
        let mut types: Vec<&str> = procfile.keys().map(String::as_str).collect();
        if built.has_command && !procfile.contains_key("cmd") {
            types.insert(0, "cmd");
        }
        say(log, format!("-----> Built image {}", built.image)).await;
        let image = images
            .push_built(&request.app, &built.image, log, self.settings.step_timeout)
            .await?;
        if let Some(port) = built.exposed_port {
            say(log, format!("       Exposes port {port}")).await;
        }
        say(log, format!("       Process types -> {}", types.join(", "))).await;
        Ok(BuildOutput {
            slug: image,
            slug_bytes: 0,
            procfile,
            buildpack: "Dockerfile".into(),
            dockerfile: true,
        })
    }

    async fn compile(
        &self,
        request: &BuildRequest,
        name: &str,
        path: &Path,
        log: &BuildLog,
    ) -> Result<BTreeMap<String, String>, BuildError> {
        let timeout = self.settings.step_timeout;
        let build_dir = request.source_dir.as_path();
        let cache_dir = self.cache_dir(&request.app);
        tokio::fs::create_dir_all(&cache_dir)
            .await
            .map_err(BuildError::io("creating the build cache"))?;
        let env_dir = tempfile_dir(&self.settings.data_dir).await?;
        for (key, value) in &request.env {
            tokio::fs::write(env_dir.join(key), value)
                .await
                .map_err(BuildError::io("writing ENV_DIR"))?;
        }
        let mut env = request.env.clone();
        env.insert("SOURCE_VERSION".into(), request.sha.clone());
        env.insert("HOME".into(), build_dir.display().to_string());
        let compile = path.join("bin/compile");
        let result = buildpack::run_step(
            "compile",
            &compile,
            &[build_dir, cache_dir.as_path(), env_dir.as_path()],
            &env,
            log,
            false,
            timeout,
        )
        .await;
        let _ = tokio::fs::remove_dir_all(&env_dir).await;
        let result = result?;
        if result.exit_code != Some(0) {
            return Err(BuildError::Step {
                buildpack: name.into(),
                step: "compile",
                exit_code: result.exit_code,
            });
        }
        let release = path.join("bin/release");
        if !release.is_file() {
            return Ok(BTreeMap::new());
        }
        let result =
            buildpack::run_step("release", &release, &[build_dir], &env, log, true, timeout)
                .await?;
        if result.exit_code != Some(0) {
            return Err(BuildError::Step {
                buildpack: name.into(),
                step: "release",
                exit_code: result.exit_code,
            });
        }
        Ok(procfile::parse_release_defaults(&result.stdout))
    }
}

async fn say(log: &BuildLog, line: String) {
    let _ = log.send(line).await;
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, BuildError> + Send + 'static,
) -> Result<T, BuildError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(BuildError::Rejected(format!("build task failed: {e}"))))
}

async fn tempfile_dir(data_dir: &Path) -> Result<PathBuf, BuildError> {
    let root = data_dir.join("tmp");
    tokio::fs::create_dir_all(&root)
        .await
        .map_err(BuildError::io("creating a temporary directory"))?;
    for attempt in 0..100u32 {
        let candidate = root.join(format!("env-{}-{attempt}", std::process::id()));
        match tokio::fs::create_dir(&candidate).await {
            Ok(()) => return Ok(candidate),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(BuildError::io("creating a temporary directory")(e)),
        }
    }
    Err(BuildError::Rejected(
        "could not create a temporary directory".into(),
    ))
}

fn human_size(bytes: u64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1}M", bytes as f64 / (1024.0 * 1024.0))
    } else {
        format!("{:.1}K", bytes as f64 / 1024.0)
    }
}
