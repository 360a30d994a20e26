//! Orchestration: the one path by which a release is made and rolled out.
//!
//! A new build, a config change or a rollback appends a release with
//! `Store::append_release`, then converges the scheduler to an [`AppSpec`] built from it,
//! within `Settings::apply_timeout`. If the rollout fails or times out, the release is
//! discarded with `Store::discard_release`, so the app stays on its previous release, and
//! the caller gets 503. Releases of one app are serialized by a per-app lock in this
//! process; across processes the store's optimistic config revision check still holds.

use super::apps::scheduler_failure;
use super::{AppGuard, Controller, ServiceError, ServiceResult};
use deis_core::discovery::keys;
use deis_core::model::{App, Build, Config, Formation, PageRequest, Release};
use deis_core::release::default_formation;
use deis_core::scheduler::{AppSpec, Artifact, ProcessLimits};
use deis_core::store::{BuildChoice, NewRelease};
use deis_core::validation;
use std::collections::BTreeSet;

/// The config key the router reads from discovery; the only one written there.
pub(crate) const WHITELIST_KEY: &str = "DEIS_WHITELIST";

/// Whether a build's `image` names a slug (a `.tgz`/`.tar.gz` archive, a path or a blob
/// key) rather than a container image.
pub fn is_slug_location(image: &str) -> bool {
    let path = image.split(['?', '#']).next().unwrap_or(image);
    path.ends_with(".tgz") || path.ends_with(".tar.gz")
}

/// What the build makes the scheduler run.
pub fn artifact_of(build: Option<&Build>) -> Artifact {
    match build {
        None => Artifact::None,
        Some(b) if is_slug_location(&b.image) => Artifact::Slug {
            location: b.image.clone(),
        },
        Some(b) => Artifact::Image {
            name: b.image.clone(),
        },
    }
}

/// The spec a scheduler converges to for `release` of `app` with `formation`.
pub fn build_spec(
    app: &App,
    release: &Release,
    build: Option<&Build>,
    config: &Config,
    formation: Formation,
) -> AppSpec {
    let mut spec = AppSpec::new(app.id.clone(), release.version);
    spec.artifact = artifact_of(build);
    spec.processes = build.map(|b| b.procfile.clone()).unwrap_or_default();
    spec.formation = formation;
    spec.env = config.values.clone();
    spec.env.insert("DEIS_APP".into(), app.id.clone());
    spec.env
        .insert("DEIS_RELEASE".into(), format!("v{}", release.version));
    let types = config.memory.keys().chain(config.cpu.keys());
    for process_type in types {
        let limits = ProcessLimits {
            memory_bytes: config
                .memory
                .get(process_type)
                .and_then(|m| validation::parse_memory_bytes(m)),
            cpu_shares: config.cpu.get(process_type).copied(),
        };
        spec.limits.insert(process_type.clone(), limits);
    }
    spec.tags = config.tags.clone();
    spec.healthcheck = config.healthcheck();
    spec
}

/// How a new release changes the formation.
pub(crate) enum FormationChange {
    /// Keep the app's formation (config changes, rollbacks).
    Keep,
    /// A new build: the default formation if the app was never scaled, and types that
    /// left the Procfile dropped.
    NewBuild {
        /// The build the release introduces.
        build: Box<Build>,
        /// The procfile of the previous build, if there was one.
        previous_procfile: Option<std::collections::BTreeMap<String, String>>,
    },
}

impl Controller {
    /// The spec of an existing release (used by scale and run).
    pub(crate) async fn spec_for_release(
        &self,
        app: &App,
        release: &Release,
        formation: Formation,
    ) -> ServiceResult<AppSpec> {
        let build = match release.build {
            Some(uuid) => Some(self.store.get_build(&app.id, uuid).await?),
            None => None,
        };
        let config = self.store.get_config(&app.id, release.config).await?;
        Ok(build_spec(app, release, build.as_ref(), &config, formation))
    }

    /// Appends a release and rolls it out, holding the app's deploy lock; on failure the
    /// release is discarded and the app keeps running its previous release. Returns the
    /// release and its config.
    pub(crate) async fn release_and_rollout(
        &self,
        _guard: &AppGuard,
        app_id: &str,
        request: NewRelease,
        change: FormationChange,
    ) -> ServiceResult<(Release, Config)> {
        let app = self.store.get_app(app_id).await?;
        let release = self.store.append_release(request).await?;
        let outcome = self.rollout(&app, &release, change).await;
        match outcome {
            Ok(config) => {
                self.logs.record(
                    &app.id,
                    crate::logs::CONTROLLER_SOURCE,
                    &format!("{} (v{})", release.summary, release.version),
                );
                Ok((release, config))
            }
            Err(error) => {
                self.logs.record(
                    &app.id,
                    crate::logs::CONTROLLER_SOURCE,
                    &format!(
                        "v{} was not deployed ({error}); the app stays on its previous release",
                        release.version
                    ),
                );
                if let Err(e) = self.store.discard_release(&app.id, release.version).await {
                    tracing::error!(app = %app.id, version = release.version, error = %e,
                        "could not discard the release of a failed rollout");
                }
                Err(error)
            }
        }
    }

    async fn rollout(
        &self,
        app: &App,
        release: &Release,
        change: FormationChange,
    ) -> ServiceResult<Config> {
        let config = self.store.get_config(&app.id, release.config).await?;
        let build = match release.build {
            Some(uuid) => Some(self.store.get_build(&app.id, uuid).await?),
            None => None,
        };
        let formation = match &change {
            FormationChange::Keep => app.structure.clone(),
            FormationChange::NewBuild {
                build,
                previous_procfile,
            } => {
                if app.structure.is_empty() {
                    default_formation(build)
                } else {
                    let mut formation = app.structure.clone();
                    if let Some(old) = previous_procfile {
                        formation
                            .retain(|t, _| !old.contains_key(t) || build.procfile.contains_key(t));
                    }
                    formation
                }
            }
        };
        let spec = build_spec(app, release, build.as_ref(), &config, formation.clone());
        tokio::time::timeout(self.settings.apply_timeout, self.scheduler.apply(&spec))
            .await
            .map_err(|_| {
                ServiceError::Unavailable(format!(
                    "Rolling out v{} of {} did not finish within {} s; the app stays on its previous release.",
                    release.version,
                    app.id,
                    self.settings.apply_timeout.as_secs()
                ))
            })?
            .map_err(scheduler_failure)?;
        if formation != app.structure {
            self.store.set_formation(&app.id, &formation).await?;
        }
        self.sync_router_config(&app.id, &config).await;
        Ok(config)
    }

    /// Writes the router-relevant config (`DEIS_WHITELIST`) to discovery, and nothing else:
    /// other values may be secrets. Discovery is derived state, so a failure is logged.
    pub(crate) async fn sync_router_config(&self, app: &str, config: &Config) {
        let key = keys::config(app, WHITELIST_KEY);
        let result = match config.values.get(WHITELIST_KEY) {
            Some(value) => self.discovery.put(&key, value, None).await.map(|_| ()),
            None => self.discovery.delete_prefix(&key).await.map(|_| ()),
        };
        if let Err(e) = result {
            tracing::error!(app, error = %e, "could not write the whitelist to discovery");
        }
    }

    /// A release that introduces a new build, rolled out with the formation rules of a
    /// first or later build.
    pub(crate) async fn deploy_build(
        &self,
        app: &App,
        owner: &str,
        build: Build,
    ) -> ServiceResult<Release> {
        let guard = self.lock_app(&app.id).await?;
        let previous = self.store.latest_release(&app.id).await?;
        let previous_procfile = match previous.build {
            Some(uuid) => Some(self.store.get_build(&app.id, uuid).await?.procfile),
            None => None,
        };
        let summary = deis_core::release::build_summary(owner, &build);
        let build = Box::new(build);
        let request = NewRelease {
            app: app.id.clone(),
            owner: owner.to_string(),
            summary,
            build: BuildChoice::New(build.clone()),
            config: deis_core::store::ConfigChoice::Current,
        };
        let (release, _) = self
            .release_and_rollout(
                &guard,
                &app.id,
                request,
                FormationChange::NewBuild {
                    build,
                    previous_procfile,
                },
            )
            .await?;
        match self.collect_slugs(&app.id).await {
            Ok(deleted) if !deleted.is_empty() => {
                tracing::info!(app = %app.id, count = deleted.len(), "collected old slugs");
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(app = %app.id, %error, "could not collect old slugs");
            }
        }
        Ok(release)
    }

    /// Slug garbage collection for one app (see [`crate::slugs`] for the rules): keeps the
    /// slugs of the `slugs_kept` builds most recently released, deletes those of older
    /// builds and slugs no build names once older than [`crate::slugs::ORPHAN_GRACE`].
    /// Returns the deleted locations. Does nothing without attached build storage.
    pub async fn collect_slugs(&self, app: &str) -> ServiceResult<Vec<String>> {
        let Some(storage) = self.build_storage.get() else {
            return Ok(Vec::new());
        };
        let mut releases = self.store.list_releases(app, PageRequest::ALL).await?.items;
        releases.sort_by_key(|r| std::cmp::Reverse(r.version));
        let mut recent_builds = Vec::new();
        for release in &releases {
            if let Some(build) = release.build {
                if !recent_builds.contains(&build) {
                    recent_builds.push(build);
                }
            }
        }
        recent_builds.truncate(self.settings.slugs_kept.max(1));
        let mut keep = BTreeSet::new();
        for uuid in recent_builds {
            keep.insert(self.store.get_build(app, uuid).await?.image);
        }
        let named: BTreeSet<String> = self
            .store
            .list_builds(app, PageRequest::ALL)
            .await?
            .items
            .into_iter()
            .map(|b| b.image)
            .collect();
        let mut deleted = Vec::new();
        for slug in storage.list_slugs(app).await? {
            if keep.contains(&slug.location) {
                continue;
            }
            let orphan_expired = std::time::SystemTime::from(slug.stored_at.0)
                .elapsed()
                .is_ok_and(|age| age > crate::slugs::ORPHAN_GRACE);
            if named.contains(&slug.location) || orphan_expired {
                storage.delete_slug(&slug.location).await?;
                deleted.push(slug.location);
            }
        }
        Ok(deleted)
    }

    /// Refuses (409) to deploy `build` again when its slug is no longer stored.
    pub(crate) async fn check_slug_available(
        &self,
        build: &Build,
        version: u64,
    ) -> ServiceResult<()> {
        let Some(storage) = self.build_storage.get() else {
            return Ok(());
        };
        if !is_slug_location(&build.image) || storage.slug_exists(&build.image).await? {
            return Ok(());
        }
        Err(ServiceError::Conflict(format!(
            "The slug of release v{version} (build {}) was garbage collected: only the slugs \
             of the last {} builds are kept. Roll back to a newer release, or push that \
             commit again.",
            if build.sha.is_empty() {
                build.uuid.to_string()
            } else {
                build.sha.clone()
            },
            self.settings.slugs_kept.max(1)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_told_from_images() {
        assert!(is_slug_location("/var/lib/deis/slugs/go-v2.tgz"));
        assert!(is_slug_location("slugs/go/abc.tar.gz"));
        assert!(!is_slug_location("127.0.0.1:5000/go:v3"));
        assert!(!is_slug_location("deis/example-go:latest"));
    }

    #[test]
    fn spec_carries_env_limits_tags_and_healthcheck() {
        let app = App::new("go", "alice");
        let mut config = Config::initial("go", "alice");
        config.values.insert("FOO".into(), "bar".into());
        config
            .values
            .insert("HEALTHCHECK_URL".into(), "/health".into());
        config.memory.insert("web".into(), "512M".into());
        config.cpu.insert("worker".into(), 256);
        config.tags.insert("env".into(), "prod".into());
        let mut build = Build::new("go", "alice", "deis/example-go:latest");
        build.procfile.insert("web".into(), "serve".into());
        let release = Release {
            uuid: uuid::Uuid::new_v4(),
            app: "go".into(),
            owner: "alice".into(),
            version: 3,
            summary: String::new(),
            config: config.uuid,
            build: Some(build.uuid),
            created: config.created,
            updated: config.created,
        };
        let spec = build_spec(
            &app,
            &release,
            Some(&build),
            &config,
            Formation::from([("web".into(), 2)]),
        );
        assert_eq!(
            spec.artifact,
            Artifact::Image {
                name: "deis/example-go:latest".into()
            }
        );
        assert_eq!(spec.env["DEIS_APP"], "go");
        assert_eq!(spec.env["DEIS_RELEASE"], "v3");
        assert_eq!(spec.env["FOO"], "bar");
        assert_eq!(spec.limits["web"].memory_bytes, Some(512 * 1024 * 1024));
        assert_eq!(spec.limits["worker"].cpu_shares, Some(256));
        assert_eq!(spec.tags["env"], "prod");
        assert_eq!(spec.healthcheck.unwrap().url, "/health");
        assert_eq!(spec.processes["web"], "serve");
        assert_eq!(spec.formation["web"], 2);
    }
}
