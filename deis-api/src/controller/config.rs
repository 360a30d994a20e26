//! Config: read the latest, and change it with Deis's merge rules (a new release).

use super::deploy::FormationChange;
use super::{Access, AppGuard, Controller, ServiceResult};
use deis_core::model::{Config, User};
use deis_core::release::{config_summary, ConfigPatch};
use deis_core::store::{BuildChoice, ConfigChoice, NewRelease};

/// The result of a config write.
#[derive(Debug, Clone)]
pub struct ConfigChange {
    /// The config now in force (with `DEIS_APP`/`DEIS_RELEASE` added when a release was
    /// made, as Deis answered).
    pub config: Config,
    /// The new release's version, or `None` when the patch changed nothing.
    pub release: Option<u64>,
}

impl Controller {
    /// `GET /v1/apps/<id>/config/`: the config of the latest release.
    pub async fn get_config(&self, caller: &User, app: &str) -> ServiceResult<Config> {
        let app = self.authorize_app(caller, app, Access::Use).await?;
        Ok(self.store.current_config(&app.id).await?)
    }

    /// `POST /v1/apps/<id>/config/`: merges `{values, memory, cpu, tags}` into the latest
    /// config (a `null` unsets), appends a release and rolls it out. A patch that changes
    /// nothing makes no release. Writers of one app wait for each other (at most
    /// `apply_timeout`, then 409), and the store's revision check makes a write based on a
    /// stale read fail with 409 across processes too.
    pub async fn set_config(
        &self,
        caller: &User,
        app: &str,
        body: &serde_json::Value,
    ) -> ServiceResult<ConfigChange> {
        let app = self.authorize_app(caller, app, Access::Use).await?;
        let patch = ConfigPatch::from_json(body)?;
        let guard = self.lock_app(&app.id).await?;
        let base = self.store.current_config(&app.id).await?;
        self.write_config_locked(&guard, caller, &app.id, &patch, base)
            .await
    }

    /// Applies `patch` to `base`, the config the caller read; fails with 409 when the
    /// app's config is no longer at `base.revision`.
    pub async fn write_config(
        &self,
        caller: &User,
        app: &str,
        patch: &ConfigPatch,
        base: Config,
    ) -> ServiceResult<ConfigChange> {
        let guard = self.lock_app(app).await?;
        self.write_config_locked(&guard, caller, app, patch, base)
            .await
    }

    async fn write_config_locked(
        &self,
        guard: &AppGuard,
        caller: &User,
        app: &str,
        patch: &ConfigPatch,
        base: Config,
    ) -> ServiceResult<ConfigChange> {
        let Some(next) = patch.apply(&base, &caller.username) else {
            return Ok(ConfigChange {
                config: base,
                release: None,
            });
        };
        let summary = config_summary(&caller.username, &base, &next);
        let request = NewRelease {
            app: app.to_string(),
            owner: caller.username.clone(),
            summary,
            build: BuildChoice::Current,
            config: ConfigChoice::New {
                config: Box::new(next),
                expected_revision: base.revision,
            },
        };
        let (release, mut config) = self
            .release_and_rollout(guard, app, request, FormationChange::Keep)
            .await?;
        config.values.insert("DEIS_APP".into(), app.to_string());
        config
            .values
            .insert("DEIS_RELEASE".into(), format!("v{}", release.version));
        Ok(ConfigChange {
            config,
            release: Some(release.version),
        })
    }
}
