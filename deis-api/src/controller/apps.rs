//! Apps: list, create, show, transfer, destroy, and what runs: containers, restart, one-off
//! runs and logs.

use super::{Access, Controller, ServiceError, ServiceResult};
use crate::names;
use crate::wire::Container;
use deis_core::model::{App, Page, PageRequest, User};
use deis_core::scheduler::{InstanceSelector, RunRequest};
use deis_core::store::AppFilter;
use deis_core::validation;
use deis_core::DiscoveryExt;

/// How many random names are tried before giving up.
const NAME_ATTEMPTS: usize = 32;

impl Controller {
    /// `GET /v1/apps/`: the apps the caller owns or collaborates on; admins see all.
    pub async fn list_apps(&self, caller: &User, page: PageRequest) -> ServiceResult<Page<App>> {
        let filter = if caller.is_superuser {
            AppFilter::All
        } else {
            AppFilter::VisibleTo(caller.username.clone())
        };
        let mut page = self.store.list_apps(filter, page).await?;
        page.items = page.items.into_iter().map(|a| self.present(a)).collect();
        Ok(page)
    }

    /// `POST /v1/apps/`: creates an app (with config revision 1 and release v1), with a
    /// random `adjective-noun` id when none is given.
    pub async fn create_app(&self, caller: &User, id: Option<&str>) -> ServiceResult<App> {
        let reserved: Vec<&str> = self
            .settings
            .reserved_app_ids
            .iter()
            .map(String::as_str)
            .collect();
        if let Some(id) = id {
            validation::app_id(id, &reserved)?;
            let app = self
                .store
                .create_app(App::new(id, caller.username.as_str()))
                .await
                .map_err(|e| match e {
                    deis_core::Error::AlreadyExists { .. } => {
                        ServiceError::field("id", "unique", "App with this id already exists.")
                    }
                    other => other.into(),
                })?;
            return Ok(self.present(app));
        }
        for _ in 0..NAME_ATTEMPTS {
            let name = names::random_app_name();
            if validation::app_id(&name, &reserved).is_err() {
                continue;
            }
            match self
                .store
                .create_app(App::new(name.as_str(), caller.username.as_str()))
                .await
            {
                Ok(app) => return Ok(self.present(app)),
                Err(deis_core::Error::AlreadyExists { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::Conflict(
            "Could not find a free app name; give one with id.".into(),
        ))
    }

    /// `GET /v1/apps/<id>/`.
    pub async fn get_app(&self, caller: &User, id: &str) -> ServiceResult<App> {
        self.authorize_app(caller, id, Access::Use).await
    }

    /// `POST /v1/apps/<id>/`: transfers the app to another user (owner or admin).
    pub async fn transfer_app(&self, caller: &User, id: &str, owner: &str) -> ServiceResult<App> {
        let app = self.authorize_app(caller, id, Access::Manage).await?;
        self.store.get_user(owner).await?;
        let app = self.store.set_owner(&app.id, owner).await?;
        Ok(self.present(app))
    }

    /// `DELETE /v1/apps/<id>/`: stops everything, deletes the app's repository, build
    /// cache and slugs, forgets logs and discovery keys, then deletes the records.
    pub async fn destroy_app(&self, caller: &User, id: &str) -> ServiceResult<()> {
        let app = self.authorize_app(caller, id, Access::Destroy).await?;
        let _guard = self.lock_app(&app.id).await?;
        let domains: Vec<String> = self
            .store
            .list_domains(&app.id, PageRequest::ALL)
            .await?
            .items
            .into_iter()
            .map(|d| d.domain)
            .collect();
        match tokio::time::timeout(self.settings.apply_timeout, self.scheduler.remove(&app.id))
            .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(app = %app.id, error = %e, "could not remove the app's instances")
            }
            Err(_) => tracing::warn!(app = %app.id, "removing the app's instances timed out"),
        }
        if let Some(storage) = self.build_storage.get() {
            if let Err(e) = storage.remove_app(&app.id).await {
                tracing::warn!(app = %app.id, error = %e,
                    "could not delete the app's repository, build cache or slugs");
            }
        }
        if let Err(e) = self.logs.delete(&app.id).await {
            tracing::warn!(app = %app.id, error = %e, "could not delete the app's logs");
        }
        self.store.delete_app(&app.id).await?;
        if let Err(e) = self.discovery.forget_app(&app.id, &domains).await {
            tracing::error!(app = %app.id, error = %e, "could not remove the app from discovery");
        }
        self.forget_app_lock(&app.id);
        Ok(())
    }

    /// `GET /v1/apps/<id>/containers/[<type>/[<num>/]]`: the live instances, without `run`
    /// containers unless a type is given.
    pub async fn containers(
        &self,
        caller: &User,
        id: &str,
        process_type: Option<&str>,
        num: Option<u32>,
    ) -> ServiceResult<Vec<Container>> {
        let app = self.authorize_app(caller, id, Access::Use).await?;
        let instances = self.scheduler.instances(&app.id).await?;
        Ok(instances
            .iter()
            .filter(|i| match process_type {
                Some(t) => i.process_type == t,
                None => i.process_type != "run",
            })
            .filter(|i| num.is_none_or(|n| i.num == n))
            .map(|i| Container::from_instance(i, &app.owner))
            .collect())
    }

    /// `POST /v1/apps/<id>/containers/[<type>/[<num>/]]restart/`.
    pub async fn restart(
        &self,
        caller: &User,
        id: &str,
        process_type: Option<&str>,
        num: Option<u32>,
    ) -> ServiceResult<Vec<Container>> {
        let app = self.authorize_app(caller, id, Access::Use).await?;
        let selector = InstanceSelector {
            process_type: process_type.map(str::to_string),
            num,
        };
        let restarted = tokio::time::timeout(
            self.settings.apply_timeout,
            self.scheduler.restart(&app.id, &selector),
        )
        .await
        .map_err(|_| ServiceError::Unavailable(format!("restarting {} timed out", app.id)))?
        .map_err(scheduler_failure)?;
        Ok(restarted
            .iter()
            .map(|i| Container::from_instance(i, &app.owner))
            .collect())
    }

    /// `POST /v1/apps/<id>/run/`: runs a one-off command against the latest release and
    /// returns its exit code and output.
    pub async fn run_command(
        &self,
        caller: &User,
        id: &str,
        command: &str,
    ) -> ServiceResult<(i32, String)> {
        let app = self.authorize_app(caller, id, Access::Use).await?;
        if command.trim().is_empty() {
            return Err(ServiceError::field(
                "command",
                "empty",
                "The command may not be empty.",
            ));
        }
        if command.contains('\0') {
            return Err(ServiceError::field(
                "command",
                "invalid_characters",
                "The command may not contain NUL bytes.",
            ));
        }
        let release = self.store.latest_release(&app.id).await?;
        if release.build.is_none() {
            return Err(ServiceError::BadRequest(
                "No build associated with this release to run this command".into(),
            ));
        }
        let spec = self
            .spec_for_release(&app, &release, app.structure.clone())
            .await?;
        let request = RunRequest {
            spec,
            command: command.to_string(),
        };
        let outcome =
            tokio::time::timeout(self.settings.apply_timeout, self.scheduler.run(&request))
                .await
                .map_err(|_| {
                    ServiceError::Unavailable(format!("the command on {} timed out", app.id))
                })?
                .map_err(scheduler_failure)?;
        Ok((outcome.exit_code, outcome.output))
    }

    /// `GET /v1/apps/<id>/logs/?log_lines=N`: `None` when there are no logs.
    pub async fn logs(
        &self,
        caller: &User,
        id: &str,
        lines: usize,
    ) -> ServiceResult<Option<String>> {
        let app = self.authorize_app(caller, id, Access::Use).await?;
        Ok(self.logs.tail(&app.id, lines).await?)
    }

    /// The last `lines` lines of the app's log, then every line that follows, with no gap
    /// between them (see [`crate::LogSource::follow`]).
    pub async fn follow_logs(
        &self,
        caller: &User,
        id: &str,
        lines: usize,
    ) -> ServiceResult<futures::stream::BoxStream<'static, String>> {
        let app = self.authorize_app(caller, id, Access::Use).await?;
        self.logs.follow(&app.id, lines).await?.ok_or_else(|| {
            ServiceError::NotImplemented("This platform's log source cannot follow logs.".into())
        })
    }
}

/// A scheduler failure as Deis reported it: 503 with the reason (501 when the backend
/// cannot do it at all; internal details stay in the log).
pub(crate) fn scheduler_failure(error: deis_core::Error) -> ServiceError {
    match error {
        e @ deis_core::Error::NotImplemented { .. } => ServiceError::NotImplemented(e.to_string()),
        deis_core::Error::NotFound { kind, id } => {
            ServiceError::NotFound(format!("{kind} not found: {id}"))
        }
        e @ (deis_core::Error::Backend { .. } | deis_core::Error::Compacted { .. }) => {
            tracing::error!(error = %e, "scheduler failure");
            ServiceError::Unavailable("The scheduler failed; see the controller's log.".into())
        }
        e => ServiceError::Unavailable(e.to_string()),
    }
}
