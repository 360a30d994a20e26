//! The request and response bodies of the REST API that are not deis-core model types,
//! shared by the server, the typed client and the OpenAPI document.

use deis_core::model::{Instance, InstanceState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use utoipa::ToSchema;

/// One page of a list: `{"count","next","previous","results"}` as Django REST Framework.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Paginated<T> {
    /// How many records exist across all pages.
    pub count: u64,
    /// The absolute URL of the next page, if any.
    pub next: Option<String>,
    /// The absolute URL of the previous page, if any.
    pub previous: Option<String>,
    /// This page's records.
    pub results: Vec<T>,
}

/// A running process as Deis v1 showed it ("container").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Container {
    /// The app's name.
    pub app: String,
    /// The app's owner.
    pub owner: String,
    /// The release it runs, as `vN`.
    pub release: String,
    /// The process type, e.g. `web`.
    #[serde(rename = "type")]
    pub process_type: String,
    /// The number within its type, from 1.
    pub num: u32,
    /// The live state, e.g. `up`.
    #[schema(value_type = String)]
    pub state: InstanceState,
}

impl Container {
    /// The container view of a scheduler instance of an app owned by `owner`.
    pub fn from_instance(instance: &Instance, owner: &str) -> Self {
        Container {
            app: instance.app.clone(),
            owner: owner.to_string(),
            release: format!("v{}", instance.release),
            process_type: instance.process_type.clone(),
            num: instance.num,
            state: instance.state,
        }
    }
}

/// `POST /v1/auth/register/`.
#[derive(Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// The login name.
    pub username: String,
    /// The password (write-only).
    pub password: String,
    /// The e-mail address.
    pub email: String,
    /// Given name.
    #[serde(default)]
    pub first_name: String,
    /// Family name.
    #[serde(default)]
    pub last_name: String,
}

impl RegisterRequest {
    /// A registration with a user name, password and e-mail address (no given or family
    /// name), as an embedding program or a test makes one.
    ///
    /// ```
    /// let request = deis_api::wire::RegisterRequest::new("ada", "pw-ada", "ada@example.com");
    /// assert_eq!(request.username, "ada");
    /// assert!(request.first_name.is_empty());
    /// ```
    pub fn new(
        username: impl Into<String>,
        password: impl Into<String>,
        email: impl Into<String>,
    ) -> Self {
        RegisterRequest {
            username: username.into(),
            password: password.into(),
            email: email.into(),
            ..RegisterRequest::default()
        }
    }
}

impl fmt::Debug for RegisterRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisterRequest")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// `POST /v1/auth/login/`.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct LoginRequest {
    /// The login name.
    pub username: String,
    /// The password.
    pub password: String,
}

impl fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginRequest")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A token, as login and token regeneration return it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// The 40-hex-character API token for `Authorization: token …`.
    pub token: String,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenResponse { token: <redacted> }")
    }
}

/// `DELETE /v1/auth/cancel/`: yourself, or another user when you are an admin.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CancelRequest {
    /// The user to delete; yourself when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// `POST /v1/auth/passwd/`.
#[derive(Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct PasswdRequest {
    /// The current password; admins changing someone else's may leave it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The new password.
    pub new_password: String,
    /// Whose password to change; yourself when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

impl fmt::Debug for PasswdRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswdRequest")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// `{"status": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatusResponse {
    /// What happened.
    pub status: String,
}

/// `POST /v1/auth/tokens/`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct TokensRequest {
    /// Regenerate this user's token (admins only) instead of your own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Regenerate every user's token (admins only); nothing is returned.
    #[serde(default)]
    pub all: bool,
}

/// `POST /v1/apps/`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CreateAppRequest {
    /// The app's name; a random `adjective-noun` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// `POST /v1/apps/<id>/`: transfer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TransferRequest {
    /// The new owner's username.
    pub owner: String,
}

/// `POST /v1/apps/<id>/builds/`: deploy an image.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct BuildRequest {
    /// The image to run, e.g. `deis/example-go:latest`, or a slug location (`….tgz`).
    pub image: String,
    /// Process types and their commands.
    #[serde(default)]
    pub procfile: BTreeMap<String, String>,
    /// The git commit, if any.
    #[serde(default)]
    pub sha: String,
    /// `"true"` for Dockerfile builds.
    #[serde(default)]
    pub dockerfile: String,
}

/// `POST /v1/apps/<id>/releases/rollback/`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RollbackRequest {
    /// The release to go back to; the one before the latest when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

/// `{"version": N}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VersionResponse {
    /// A release version.
    pub version: u64,
}

/// `POST /v1/apps/<id>/run/`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RunCommandRequest {
    /// The shell command to run.
    pub command: String,
}

/// `POST /v1/apps/<id>/domains/`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DomainRequest {
    /// The fully qualified domain.
    pub domain: String,
}

/// `POST /v1/apps/<id>/perms/` and `POST /v1/admin/perms/`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UsernameRequest {
    /// The user to grant.
    pub username: String,
}

/// `GET /v1/apps/<id>/perms/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PermsResponse {
    /// The app's collaborators.
    pub users: Vec<String>,
}

/// One administrator in `GET /v1/admin/perms/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AdminPerm {
    /// The user.
    pub username: String,
    /// Always true in the list.
    pub is_superuser: bool,
}

/// `POST /v1/keys/`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyRequest {
    /// The key's name, e.g. `alice@laptop`.
    pub id: String,
    /// The OpenSSH public key line.
    pub public: String,
}

/// `POST /v1/certs/`.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct CertificateRequest {
    /// The PEM certificate chain.
    pub certificate: String,
    /// The PEM private key (write-only).
    pub key: String,
    /// The domain; the certificate's subject common name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_name: Option<String>,
}

impl fmt::Debug for CertificateRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateRequest")
            .field("common_name", &self.common_name)
            .finish_non_exhaustive()
    }
}

/// `POST /v1/hooks/push/`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct PushHookRequest {
    /// The pushing user.
    pub receive_user: String,
    /// The app (repository) pushed to.
    pub receive_repo: String,
    /// The pushed commit.
    #[serde(default)]
    pub sha: String,
    /// The SSH key fingerprint.
    #[serde(default)]
    pub fingerprint: String,
    /// `SSH_CONNECTION`.
    #[serde(default)]
    pub ssh_connection: String,
    /// `SSH_ORIGINAL_COMMAND`.
    #[serde(default)]
    pub ssh_original_command: String,
}

/// `POST /v1/hooks/build/`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct BuildHookRequest {
    /// The pushing user.
    pub receive_user: String,
    /// The app.
    pub receive_repo: String,
    /// The built image or slug location.
    pub image: String,
    /// The commit.
    #[serde(default)]
    pub sha: String,
    /// Process types and their commands.
    #[serde(default)]
    pub procfile: BTreeMap<String, String>,
    /// `"true"` for Dockerfile builds.
    #[serde(default)]
    pub dockerfile: String,
}

/// `POST /v1/hooks/build/` response: `{"release":{"version":N},"domains":[…]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BuildHookResponse {
    /// The new release.
    pub release: VersionResponse,
    /// Where the app answers.
    pub domains: Vec<String>,
}

/// `POST /v1/hooks/config/`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ConfigHookRequest {
    /// The pushing user.
    pub receive_user: String,
    /// The app.
    pub receive_repo: String,
}

/// `GET /v1/hooks/key/<fingerprint>/`: whose SSH key this is, for the builder's SSH server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyHookResponse {
    /// The key's owner (an active user).
    pub username: String,
    /// The key's MD5 fingerprint (`aa:bb:…`).
    pub fingerprint: String,
}

/// `POST /v1/hooks/auth/`: a builder checks git smart HTTP credentials (user name and API
/// token, as HTTP basic auth) and the user's right to use the app.
#[derive(Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct AuthHookRequest {
    /// The user name the git client sent.
    pub receive_user: String,
    /// The app.
    pub receive_repo: String,
    /// The API token the git client sent as its password.
    pub token: String,
}

impl fmt::Debug for AuthHookRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthHookRequest")
            .field("receive_user", &self.receive_user)
            .field("receive_repo", &self.receive_repo)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// The answer of `POST /v1/hooks/auth/` and `POST /v1/hooks/access/`: who may push to (or
/// fetch) which app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuthHookResponse {
    /// The authenticated user.
    pub username: String,
    /// The app.
    pub app: String,
    /// The app's uuid: a builder replaces a repository (and build cache) it made for an
    /// earlier app of the same name, destroyed since.
    #[serde(default)]
    pub app_uuid: String,
}

/// `GET /v1/hooks/apps/`: the ids of every app, so a builder can delete the repositories
/// and build caches of destroyed apps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AppsHookResponse {
    /// The app ids, sorted.
    pub apps: Vec<String>,
}
