//! The builder hooks, authenticated by the shared builder key.

use super::{Controller, ServiceError, ServiceResult};
use crate::secrets::constant_time_eq;
use crate::wire::{
    AppsHookResponse, AuthHookRequest, AuthHookResponse, BuildHookRequest, BuildHookResponse,
    BuildRequest, KeyHookResponse, PushHookRequest, VersionResponse,
};
use deis_core::model::{App, Config, PageRequest, Push, User};
use deis_core::store::AppFilter;
use deis_core::Timestamp;
use uuid::Uuid;

impl Controller {
    /// Checks `X-Deis-Builder-Auth`; 401 when it is missing, wrong, or no key is set.
    pub fn check_builder_key(&self, provided: Option<&str>) -> ServiceResult<()> {
        let (Some(expected), Some(provided)) = (self.settings.builder_key.as_deref(), provided)
        else {
            return Err(ServiceError::Unauthenticated(
                "Builder authentication credentials were not provided.".into(),
            ));
        };
        if expected.is_empty() || !constant_time_eq(expected.as_bytes(), provided.as_bytes()) {
            return Err(ServiceError::Unauthenticated("Invalid builder key.".into()));
        }
        Ok(())
    }

    /// The user a hook acts for and the app; the user must be owner, collaborator or admin.
    async fn hook_subject(&self, user: &str, app: &str) -> ServiceResult<(User, App)> {
        let user = self.store.get_user(user).await?;
        let app = self.store.get_app(app).await?;
        if !self.may_use(&user, &app).await? {
            return Err(ServiceError::Forbidden(format!(
                "{} does not have permission to use {}.",
                user.username, app.id
            )));
        }
        Ok((user, app))
    }

    /// `POST /v1/hooks/push/`: records a push.
    pub async fn hook_push(&self, request: &PushHookRequest) -> ServiceResult<Push> {
        let (user, app) = self
            .hook_subject(&request.receive_user, &request.receive_repo)
            .await?;
        let now = Timestamp::now();
        Ok(self
            .store
            .record_push(Push {
                uuid: Uuid::new_v4(),
                app: app.id,
                owner: user.username,
                sha: request.sha.clone(),
                fingerprint: request.fingerprint.clone(),
                receive_user: request.receive_user.clone(),
                receive_repo: request.receive_repo.clone(),
                ssh_connection: request.ssh_connection.clone(),
                ssh_original_command: request.ssh_original_command.clone(),
                created: now,
                updated: now,
            })
            .await?)
    }

    /// `POST /v1/hooks/build/`: records the build, makes the release and deploys it.
    pub async fn hook_build(&self, request: &BuildHookRequest) -> ServiceResult<BuildHookResponse> {
        let (user, app) = self
            .hook_subject(&request.receive_user, &request.receive_repo)
            .await?;
        let build = self.new_build(
            &app.id,
            &user.username,
            &BuildRequest {
                image: request.image.clone(),
                procfile: request.procfile.clone(),
                sha: request.sha.clone(),
                dockerfile: request.dockerfile.clone(),
            },
        )?;
        let release = self.deploy_build(&app, &user.username, build).await?;
        Ok(BuildHookResponse {
            release: VersionResponse {
                version: release.version,
            },
            domains: vec![self.app_url(&app.id)],
        })
    }

    /// `POST /v1/hooks/config/`: the app's latest config, for the build environment.
    pub async fn hook_config(&self, user: &str, app: &str) -> ServiceResult<Config> {
        let (_, app) = self.hook_subject(user, app).await?;
        Ok(self.store.current_config(&app.id).await?)
    }

    /// `POST /v1/hooks/auth/`: checks git smart HTTP credentials for a builder that serves
    /// git apart from the controller. 401 unless the token is the named active user's, then
    /// 404/403 as the other hooks when the app is missing or not the user's to use.
    pub async fn hook_auth(&self, request: &AuthHookRequest) -> ServiceResult<AuthHookResponse> {
        let invalid = || ServiceError::Unauthenticated("Invalid user name or token.".into());
        let user = self
            .authenticate(&request.token)
            .await
            .map_err(|e| match e {
                ServiceError::Unauthenticated(_) => invalid(),
                other => other,
            })?;
        if user.username != request.receive_user {
            return Err(invalid());
        }
        let (user, app) = self
            .hook_subject(&user.username, &request.receive_repo)
            .await?;
        Ok(AuthHookResponse {
            username: user.username,
            app_uuid: app.uuid.to_string(),
            app: app.id,
        })
    }

    /// `POST /v1/hooks/access/`: whether `user` may use `app` (an SSH push or fetch, the key
    /// already checked), and the app's uuid. 404/403 as the other hooks.
    pub async fn hook_access(&self, user: &str, app: &str) -> ServiceResult<AuthHookResponse> {
        let (user, app) = self.hook_subject(user, app).await?;
        Ok(AuthHookResponse {
            username: user.username,
            app_uuid: app.uuid.to_string(),
            app: app.id,
        })
    }

    /// `GET /v1/hooks/apps/`: every app id, for a builder to delete what destroyed apps
    /// left (repositories, build caches, slugs).
    pub async fn hook_apps(&self) -> ServiceResult<AppsHookResponse> {
        let mut apps: Vec<String> = self
            .store
            .list_apps(AppFilter::All, PageRequest::ALL)
            .await?
            .items
            .into_iter()
            .map(|app| app.id)
            .collect();
        apps.sort();
        Ok(AppsHookResponse { apps })
    }

    /// `GET /v1/hooks/key/<fingerprint>/`: the owner of an SSH key, for the builder's SSH
    /// server (Deis v1 mirrored keys into `/deis/builder/users`; here the builder asks).
    /// 404 when no key has this fingerprint or its owner is deactivated.
    pub async fn hook_key(&self, fingerprint: &str) -> ServiceResult<KeyHookResponse> {
        let key = self.store.key_by_fingerprint(fingerprint).await?;
        let user = self.store.get_user(&key.owner).await?;
        if !user.is_active {
            return Err(ServiceError::NotFound(format!(
                "No active user has the key {fingerprint}."
            )));
        }
        Ok(KeyHookResponse {
            username: user.username,
            fingerprint: fingerprint.to_string(),
        })
    }
}
