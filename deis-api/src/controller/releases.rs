//! Builds (image deploys), releases and rollback.

use super::deploy::FormationChange;
use super::{Access, Controller, ServiceError, ServiceResult};
use crate::wire::BuildRequest;
use deis_core::model::{Build, Page, PageRequest, Release, User};
use deis_core::release::rollback_summary;
use deis_core::store::{BuildChoice, ConfigChoice, NewRelease};
use deis_core::validation;
use uuid::Uuid;

/// The longest commit id a build may carry.
const SHA_MAX_LEN: usize = 40;

impl Controller {
    /// `GET /v1/apps/<id>/builds/`.
    pub async fn list_builds(
        &self,
        caller: &User,
        app: &str,
        page: PageRequest,
    ) -> ServiceResult<Page<Build>> {
        let app = self.authorize_app(caller, app, Access::Use).await?;
        Ok(self.store.list_builds(&app.id, page).await?)
    }

    /// `GET /v1/apps/<id>/builds/<uuid>/`.
    pub async fn get_build(&self, caller: &User, app: &str, uuid: &str) -> ServiceResult<Build> {
        let app = self.authorize_app(caller, app, Access::Use).await?;
        let uuid = Uuid::parse_str(uuid)
            .map_err(|_| ServiceError::NotFound(format!("build not found: {uuid}")))?;
        Ok(self.store.get_build(&app.id, uuid).await?)
    }

    /// Checks a build request and makes the build record.
    pub(crate) fn new_build(
        &self,
        app: &str,
        owner: &str,
        request: &BuildRequest,
    ) -> ServiceResult<Build> {
        let image = request.image.trim();
        if image.is_empty() {
            return Err(ServiceError::field(
                "image",
                "empty",
                "This field may not be blank.",
            ));
        }
        if image.len() > 512 || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ServiceError::field(
                "image",
                "invalid",
                "Image names are at most 512 characters, without whitespace.",
            ));
        }
        if request.sha.len() > SHA_MAX_LEN || !request.sha.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(ServiceError::field(
                "sha",
                "invalid",
                "A commit id is at most 40 hexadecimal characters.",
            ));
        }
        for (process_type, command) in &request.procfile {
            validation::process_type(process_type).map_err(|mut e| {
                e.field = "procfile".into();
                e
            })?;
            if command.contains('\0') {
                return Err(ServiceError::field(
                    "procfile",
                    "invalid_characters",
                    "Commands may not contain NUL bytes.",
                ));
            }
        }
        if super::deploy::is_slug_location(image)
            && !deis_builder::slug_store::is_app_slug(app, image)
        {
            return Err(ServiceError::field(
                "image",
                "invalid",
                format!(
                    "A slug must be one of this app's slugs in the slug store \
                     (blob:slugs/{app}/<name>.tgz); push code with git to make one."
                ),
            ));
        }
        if !super::deploy::is_slug_location(image) && !self.scheduler.runs_images() {
            return Err(ServiceError::field(
                "image",
                "images_not_supported",
                format!(
                    "Image deploys need the docker or swarm scheduler; this platform runs apps \
                     as local processes, which cannot run the container image {image}. Deploy \
                     with git push instead."
                ),
            ));
        }
        let mut build = Build::new(app, owner, image);
        build.sha = request.sha.to_lowercase();
        build.procfile = request.procfile.clone();
        build.dockerfile = request.dockerfile.clone();
        Ok(build)
    }

    /// `POST /v1/apps/<id>/builds/`: records a build and deploys it as a new release.
    pub async fn create_build(
        &self,
        caller: &User,
        app: &str,
        request: &BuildRequest,
    ) -> ServiceResult<(Build, Release)> {
        let app = self.authorize_app(caller, app, Access::Use).await?;
        let mut build = self.new_build(&app.id, &caller.username, request)?;
        self.check_image_owner(caller, &app.id, &build.image)
            .await?;
        build.image = self.publish_image(&app.id, &build.image).await?;
        let release = self
            .deploy_build(&app, &caller.username, build.clone())
            .await?;
        Ok((build, release))
    }

    /// `deis pull` of an image the builder made for another app (its `io.deis.app` label,
    /// e.g. `<other>:git-<sha7>` on the engine) is refused unless the caller may use that
    /// app: one app's code must not reach the owner of another. Images the engine does not
    /// have (yet) carry no label to check.
    async fn check_image_owner(&self, caller: &User, app: &str, image: &str) -> ServiceResult<()> {
        if super::deploy::is_slug_location(image) {
            return Ok(());
        }
        let Some(engine) = self.scheduler.image_engine() else {
            return Ok(());
        };
        let owner = deis_builder::ImageBuilder::new(engine.socket)
            .app_label(image)
            .await
            .map_err(|e| ServiceError::Unavailable(e.to_string()))?;
        match owner {
            Some(owner) if owner != app => {
                match self.authorize_app(caller, &owner, Access::Use).await {
                    Ok(_) => Ok(()),
                    Err(_) => Err(ServiceError::Forbidden(format!(
                        "the image {image} was built for another app, which {} may not use.",
                        caller.username
                    ))),
                }
            }
            _ => Ok(()),
        }
    }

    /// With a registry (the Swarm topology's), a container image deployed with `deis pull`
    /// is tagged into the registry and pushed through the scheduler's engine, and the
    /// release runs the registry reference, which every node can fetch (Deis v1's
    /// controller did the same). Slugs, and every image without a registry, are kept as
    /// named.
    async fn publish_image(&self, app: &str, image: &str) -> ServiceResult<String> {
        let Some(registry) = &self.settings.registry else {
            return Ok(image.to_string());
        };
        if super::deploy::is_slug_location(image) {
            return Ok(image.to_string());
        }
        let Some(engine) = self.scheduler.image_engine() else {
            return Ok(image.to_string());
        };
        deis_builder::ImageBuilder::new(engine.socket)
            .with_registry(registry.clone())
            .publish(image, app)
            .await
            .map_err(|e| match e {
                deis_builder::BuildError::ImageBuild(message)
                    if message.contains("is not on the engine") =>
                {
                    ServiceError::field("image", "not_found", message)
                }
                other => ServiceError::Unavailable(format!("publishing {image}: {other}")),
            })
    }

    /// `GET /v1/apps/<id>/releases/`.
    pub async fn list_releases(
        &self,
        caller: &User,
        app: &str,
        page: PageRequest,
    ) -> ServiceResult<Page<Release>> {
        let app = self.authorize_app(caller, app, Access::Use).await?;
        Ok(self.store.list_releases(&app.id, page).await?)
    }

    /// `GET /v1/apps/<id>/releases/v<N>/`.
    pub async fn get_release(
        &self,
        caller: &User,
        app: &str,
        version: u64,
    ) -> ServiceResult<Release> {
        let app = self.authorize_app(caller, app, Access::Use).await?;
        Ok(self.store.get_release(&app.id, version).await?)
    }

    /// `POST /v1/apps/<id>/releases/rollback/`: a new release with the build and config of
    /// an earlier one (by default the one before the latest).
    pub async fn rollback(
        &self,
        caller: &User,
        app: &str,
        version: Option<u64>,
    ) -> ServiceResult<Release> {
        let app = self.authorize_app(caller, app, Access::Use).await?;
        let guard = self.lock_app(&app.id).await?;
        let latest = self.store.latest_release(&app.id).await?;
        let target = version.unwrap_or(latest.version.saturating_sub(1));
        let target = validation::rollback_target(target, latest.version)?;
        let old = self.store.get_release(&app.id, target).await?;
        let Some(build) = old.build else {
            return Err(ServiceError::field(
                "version",
                "no_build",
                format!("Release v{target} has no build to roll back to."),
            ));
        };
        let old_build = self.store.get_build(&app.id, build).await?;
        self.check_slug_available(&old_build, target).await?;
        let request = NewRelease {
            app: app.id.clone(),
            owner: caller.username.clone(),
            summary: rollback_summary(&caller.username, target),
            build: BuildChoice::Existing(build),
            config: ConfigChoice::Existing(old.config),
        };
        let (release, _) = self
            .release_and_rollout(&guard, &app.id, request, FormationChange::Keep)
            .await?;
        Ok(release)
    }
}
