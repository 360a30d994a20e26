//! [`ControllerHooks`]: the builder's side of the builder hooks over HTTP, for a builder
//! that runs apart from the controller (`deisd --role builder`). It is the builder's
//! [`PushHandler`] (`/v1/hooks/push/`, `/v1/hooks/config/`, `/v1/hooks/build/`) and its
//! SSH server's [`SshAuthorizer`] (`/v1/hooks/key/<fingerprint>/`, `/v1/hooks/config/`),
//! its git smart HTTP [`GitHttpAuthorizer`] (`/v1/hooks/auth/`) and the
//! [`AppDirectory`] it deletes destroyed apps' repositories by (`/v1/hooks/apps/`), all
//! authenticated with the builder key as Deis v1's builder was.

use super::{Client, ClientError};
use crate::git::{GitDenial, GitHttpAuthorizer};
use crate::repo_gc::AppDirectory;
use crate::wire::{AuthHookRequest, AuthHookResponse, BuildHookRequest};
use async_trait::async_trait;
use deis_builder::git::PushContext;
use deis_builder::hook::PushHandler;
use deis_builder::ssh::SshAuthorizer;
use deis_builder::BuildOutput;
use std::collections::BTreeMap;

/// The controller's builder hooks, called over HTTP.
#[derive(Debug, Clone)]
pub struct ControllerHooks {
    client: Client,
}

impl ControllerHooks {
    /// Hooks of the controller at `base` (e.g. `http://10.0.0.2:8000`) with the builder key.
    pub fn new(base: impl Into<String>, builder_key: impl Into<String>) -> Self {
        ControllerHooks {
            client: Client::new(base).with_builder_key(builder_key),
        }
    }
}

/// What the pusher sees when a hook fails: the controller's message, or why it could not
/// be reached.
fn shown(error: ClientError) -> String {
    match error {
        ClientError::Api { message, .. } => message,
        ClientError::Transport(e) => format!("the controller could not be reached: {e}"),
        other => other.to_string(),
    }
}

#[async_trait]
impl PushHandler for ControllerHooks {
    async fn begin(
        &self,
        push: &PushContext,
        sha: &str,
    ) -> Result<BTreeMap<String, String>, String> {
        self.client
            .hook_push(&crate::git::push_request(push, sha))
            .await
            .map_err(shown)?;
        let config = self
            .client
            .hook_config(&push.user, &push.app)
            .await
            .map_err(shown)?;
        Ok(config.values)
    }

    async fn deploy(
        &self,
        push: &PushContext,
        sha: &str,
        output: &BuildOutput,
    ) -> Result<Vec<String>, String> {
        let request: BuildHookRequest = crate::git::build_request(push, sha, output);
        let response = self.client.hook_build(&request).await.map_err(shown)?;
        Ok(crate::git::deploy_lines(&push.app, &response))
    }
}

#[async_trait]
impl SshAuthorizer for ControllerHooks {
    async fn user_for_key(&self, fingerprint: &str) -> Option<String> {
        match self.client.hook_key(fingerprint).await {
            Ok(key) => Some(key.username),
            Err(ClientError::Api { status, .. }) if status.as_u16() == 404 => None,
            Err(error) => {
                tracing::warn!(%error, "the controller could not check an SSH key");
                None
            }
        }
    }

    async fn authorize(&self, user: &str, app: &str) -> Result<String, String> {
        self.client
            .hook_access(user, app)
            .await
            .map(|answer| answer.app_uuid)
            .map_err(shown)
    }
}

#[async_trait]
impl GitHttpAuthorizer for ControllerHooks {
    async fn authorize_http(
        &self,
        username: &str,
        token: &str,
        app: &str,
    ) -> Result<AuthHookResponse, GitDenial> {
        let request = AuthHookRequest {
            receive_user: username.into(),
            receive_repo: app.into(),
            token: token.into(),
        };
        match self.client.hook_auth(&request).await {
            Ok(answer) => Ok(answer),
            Err(ClientError::Api {
                status, message, ..
            }) => Err(match status.as_u16() {
                401 => {
                    if message.to_lowercase().contains("builder") {
                        tracing::warn!(%message, "the controller refused the builder key");
                    }
                    GitDenial::Unauthenticated("invalid user name or token".into())
                }
                403 => GitDenial::Forbidden(message),
                404 => GitDenial::NotFound(message),
                _ => GitDenial::Unavailable(message),
            }),
            Err(error) => Err(GitDenial::Unavailable(shown(error))),
        }
    }
}

#[async_trait]
impl AppDirectory for ControllerHooks {
    async fn app_ids(&self) -> Result<std::collections::BTreeSet<String>, String> {
        let answer = self.client.hook_apps().await.map_err(shown)?;
        Ok(answer.apps.into_iter().collect())
    }
}
