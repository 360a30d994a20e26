//! Scaling: the formation is not a release, but it is applied through the scheduler.

use super::apps::scheduler_failure;
use super::{Access, Controller, ServiceError, ServiceResult};
use crate::logs::CONTROLLER_SOURCE;
use deis_core::model::User;
use deis_core::release::default_formation;
use deis_core::validation;

impl Controller {
    /// `POST /v1/apps/<id>/scale/`: `{"web": 3, "worker": 1}`. The app must have a build,
    /// and each type must be in the latest build's Procfile, except `cmd`.
    pub async fn scale(
        &self,
        caller: &User,
        app: &str,
        body: &serde_json::Value,
    ) -> ServiceResult<()> {
        let app = self.authorize_app(caller, app, Access::Use).await?;
        let object = body.as_object().ok_or_else(|| {
            ServiceError::field(
                "structure",
                "not_an_object",
                "Expected an object of process types and counts, e.g. {\"web\": 1}.",
            )
        })?;
        let counts = validation::scale(object)?;
        let _guard = self.lock_app(&app.id).await?;
        let app = self.store.get_app(&app.id).await?;
        let release = self.store.latest_release(&app.id).await?;
        let Some(build_id) = release.build else {
            return Err(ServiceError::BadRequest(
                "No build associated with this release; push code or deploy an image first.".into(),
            ));
        };
        let build = self.store.get_build(&app.id, build_id).await?;
        let defaults = default_formation(&build);
        for process_type in counts.keys() {
            let known = process_type == "cmd"
                || build.procfile.contains_key(process_type)
                || (build.procfile.is_empty() && defaults.contains_key(process_type));
            if !known {
                return Err(ServiceError::BadRequest(format!(
                    "Container type {process_type} does not exist in application"
                )));
            }
        }
        let mut formation = app.structure.clone();
        formation.extend(counts);
        let spec = self
            .spec_for_release(&app, &release, formation.clone())
            .await?;
        tokio::time::timeout(self.settings.apply_timeout, self.scheduler.apply(&spec))
            .await
            .map_err(|_| {
                ServiceError::Unavailable(format!(
                    "Scaling {} did not finish within {} s.",
                    app.id,
                    self.settings.apply_timeout.as_secs()
                ))
            })?
            .map_err(scheduler_failure)?;
        self.store.set_formation(&app.id, &formation).await?;
        let scaled: Vec<String> = formation.iter().map(|(t, n)| format!("{t}={n}")).collect();
        self.logs.record(
            &app.id,
            CONTROLLER_SOURCE,
            &format!("{} scaled containers {}", caller.username, scaled.join(" ")),
        );
        Ok(())
    }
}
