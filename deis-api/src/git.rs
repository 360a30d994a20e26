//! The builder wired to the controller: the controller's side of a push
//! ([`ControllerPushHandler`]), SSH key lookup and permission checks
//! ([`ControllerSshAuthorizer`]), and git smart HTTP on the API port ([`routes`]), where a
//! client authenticates with HTTP basic auth as `<username>:<API token>`.

use crate::controller::Controller;
use crate::controller::ServiceError;
use crate::wire::{
    AuthHookRequest, AuthHookResponse, BuildHookRequest, BuildHookResponse, PushHookRequest,
};
use async_trait::async_trait;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use deis_builder::git::{app_from_repo_path, GitRepos, GitService, PushContext};
use deis_builder::hook::PushHandler;
use deis_builder::smart_http;
use deis_builder::ssh::SshAuthorizer;
use deis_builder::BuildOutput;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The controller's side of a push: permission check and audit record, the app's config
/// for the build, then the build, release and rollout.
#[derive(Debug, Clone)]
pub struct ControllerPushHandler {
    controller: Arc<Controller>,
}

impl ControllerPushHandler {
    /// A handler over `controller`.
    pub fn new(controller: Arc<Controller>) -> Self {
        ControllerPushHandler { controller }
    }
}

#[async_trait]
impl PushHandler for ControllerPushHandler {
    async fn begin(
        &self,
        push: &PushContext,
        sha: &str,
    ) -> Result<BTreeMap<String, String>, String> {
        let request = push_request(push, sha);
        self.controller
            .hook_push(&request)
            .await
            .map_err(|e| e.to_string())?;
        let config = self
            .controller
            .hook_config(&push.user, &push.app)
            .await
            .map_err(|e| e.to_string())?;
        Ok(config.values)
    }

    async fn deploy(
        &self,
        push: &PushContext,
        sha: &str,
        output: &BuildOutput,
    ) -> Result<Vec<String>, String> {
        let request = build_request(push, sha, output);
        let response = self
            .controller
            .hook_build(&request)
            .await
            .map_err(|e| e.to_string())?;
        Ok(deploy_lines(&push.app, &response))
    }
}

/// The `/v1/hooks/push/` request of a push.
pub(crate) fn push_request(push: &PushContext, sha: &str) -> PushHookRequest {
    PushHookRequest {
        receive_user: push.user.clone(),
        receive_repo: push.app.clone(),
        sha: sha.to_string(),
        fingerprint: push.fingerprint.clone().unwrap_or_default(),
        ssh_connection: push.connection.clone(),
        ssh_original_command: format!("git-receive-pack '{}.git'", push.app),
    }
}

/// The `/v1/hooks/build/` request of a finished build.
pub(crate) fn build_request(
    push: &PushContext,
    sha: &str,
    output: &BuildOutput,
) -> BuildHookRequest {
    BuildHookRequest {
        receive_user: push.user.clone(),
        receive_repo: push.app.clone(),
        image: output.slug.clone(),
        sha: sha.chars().take(7).collect(),
        procfile: output.procfile.clone(),
        // Deis v1's builder sent the flag as the string "true".
        dockerfile: if output.dockerfile {
            "true".into()
        } else {
            String::new()
        },
    }
}

/// What the pusher sees after a deploy, as Deis v1's builder printed it.
pub(crate) fn deploy_lines(app: &str, response: &BuildHookResponse) -> Vec<String> {
    let mut lines = vec![
        "-----> Launching... ".to_string(),
        format!(
            "       done, {}:v{} deployed to Deis",
            app, response.release.version
        ),
        String::new(),
    ];
    for domain in &response.domains {
        lines.push(format!("       http://{domain}"));
    }
    lines.push(String::new());
    lines.push("       To learn more, use `deis help` or visit http://deis.io".into());
    lines
}

/// SSH keys and permissions for the builder's SSH server, from the store.
#[derive(Debug, Clone)]
pub struct ControllerSshAuthorizer {
    controller: Arc<Controller>,
}

impl ControllerSshAuthorizer {
    /// An authorizer over `controller`.
    pub fn new(controller: Arc<Controller>) -> Self {
        ControllerSshAuthorizer { controller }
    }
}

#[async_trait]
impl SshAuthorizer for ControllerSshAuthorizer {
    async fn user_for_key(&self, fingerprint: &str) -> Option<String> {
        let key = self
            .controller
            .store()
            .key_by_fingerprint(fingerprint)
            .await
            .ok()?;
        let user = self.controller.store().get_user(&key.owner).await.ok()?;
        user.is_active.then_some(user.username)
    }

    async fn authorize(&self, user: &str, app: &str) -> Result<String, String> {
        self.controller
            .hook_access(user, app)
            .await
            .map(|answer| answer.app_uuid)
            .map_err(|e| e.to_string())
    }
}

/// Why a git smart HTTP request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitDenial {
    /// Missing or wrong credentials: 401 with a basic-auth challenge (git asks again).
    Unauthenticated(String),
    /// The user may not use the app: 403.
    Forbidden(String),
    /// No such app: 404.
    NotFound(String),
    /// The check could not be made (the controller is unreachable): 503.
    Unavailable(String),
}

impl GitDenial {
    /// The answer git receives: a `text/plain` body, which git shows to the pusher as
    /// `remote: deis: …` lines.
    fn into_response(self) -> Response {
        let (status, message) = match self {
            GitDenial::Unauthenticated(message) => return challenge(&message),
            GitDenial::Forbidden(message) => (StatusCode::FORBIDDEN, message),
            GitDenial::NotFound(message) => (StatusCode::NOT_FOUND, message),
            GitDenial::Unavailable(message) => (StatusCode::SERVICE_UNAVAILABLE, message),
        };
        plain(status, &message)
    }
}

fn plain(status: StatusCode, message: &str) -> Response {
    (
        status,
        [("content-type", "text/plain; charset=utf-8")],
        format!("deis: {message}\n"),
    )
        .into_response()
}

/// Checks the credentials of git smart HTTP (HTTP basic auth: user name and API token) and
/// the user's right to use the app: the controller in process ([`ControllerHttpAuthorizer`])
/// or, for a builder apart from it, the controller's `POST /v1/hooks/auth/`
/// ([`crate::client::ControllerHooks`]).
#[async_trait]
pub trait GitHttpAuthorizer: std::fmt::Debug + Send + Sync + 'static {
    /// The user and the app (with its uuid) when `token` is `username`'s API token and they
    /// may use `app`.
    async fn authorize_http(
        &self,
        username: &str,
        token: &str,
        app: &str,
    ) -> Result<AuthHookResponse, GitDenial>;
}

/// Git smart HTTP credentials checked against the controller in this process.
#[derive(Debug, Clone)]
pub struct ControllerHttpAuthorizer {
    controller: Arc<Controller>,
}

impl ControllerHttpAuthorizer {
    /// An authorizer over `controller`.
    pub fn new(controller: Arc<Controller>) -> Self {
        ControllerHttpAuthorizer { controller }
    }
}

/// A controller refusal as a git denial.
pub(crate) fn denial(error: ServiceError) -> GitDenial {
    match error {
        ServiceError::Unauthenticated(message) => GitDenial::Unauthenticated(message),
        ServiceError::Forbidden(message) => GitDenial::Forbidden(message),
        ServiceError::NotFound(message) => GitDenial::NotFound(message),
        other => GitDenial::Unavailable(other.to_string()),
    }
}

#[async_trait]
impl GitHttpAuthorizer for ControllerHttpAuthorizer {
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
        self.controller.hook_auth(&request).await.map_err(denial)
    }
}

#[derive(Clone)]
struct GitState {
    authorizer: Arc<dyn GitHttpAuthorizer>,
    repos: GitRepos,
}

/// The git smart HTTP routes (`/<app>.git/info/refs`, `/<app>.git/git-receive-pack`,
/// `/<app>.git/git-upload-pack`) for the API port.
pub fn routes(controller: Arc<Controller>, repos: GitRepos) -> Router {
    routes_with(Arc::new(ControllerHttpAuthorizer::new(controller)), repos)
}

/// The same git smart HTTP routes with credentials checked by `authorizer` (a builder
/// apart from the controller asks it over HTTP).
pub fn routes_with(authorizer: Arc<dyn GitHttpAuthorizer>, repos: GitRepos) -> Router {
    Router::new()
        .route("/{repo}/info/refs", get(info_refs))
        .route("/{repo}/{service}", post(rpc))
        .with_state(GitState { authorizer, repos })
}

fn challenge(message: &str) -> Response {
    let mut response = plain(StatusCode::UNAUTHORIZED, message);
    response.headers_mut().insert(
        http::header::WWW_AUTHENTICATE,
        http::HeaderValue::from_static("Basic realm=\"deis\""),
    );
    response
}

/// Authenticates `user:token` basic auth and checks the user may use the app.
async fn authorize(
    state: &GitState,
    headers: &HeaderMap,
    repo: &str,
) -> Result<PushContext, Response> {
    let Some(app) = repo.strip_suffix(".git").and_then(app_from_repo_path) else {
        return Err((StatusCode::NOT_FOUND, "not a repository\n").into_response());
    };
    let credentials = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| {
            base64::engine::general_purpose::STANDARD
                .decode(v.trim())
                .ok()
        })
        .and_then(|v| String::from_utf8(v).ok());
    let Some((username, token)) = credentials.as_deref().and_then(|c| c.split_once(':')) else {
        return Err(challenge("authenticate with your user name and API token"));
    };
    let access = state
        .authorizer
        .authorize_http(username, token, &app)
        .await
        .map_err(GitDenial::into_response)?;
    Ok(PushContext {
        app,
        user: access.username,
        app_uuid: access.app_uuid,
        fingerprint: None,
        connection: "smart-http".into(),
    })
}

async fn info_refs(
    State(state): State<GitState>,
    Path(repo): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let context = match authorize(&state, &headers, &repo).await {
        Ok(context) => context,
        Err(response) => return response,
    };
    smart_http::info_refs(
        &state.repos,
        &context,
        query.get("service").map(String::as_str),
    )
    .await
    .map(Body::new)
}

async fn rpc(
    State(state): State<GitState>,
    Path((repo, service)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(service) = GitService::parse(&service) else {
        return (StatusCode::NOT_FOUND, "unknown git service\n").into_response();
    };
    let context = match authorize(&state, &headers, &repo).await {
        Ok(context) => context,
        Err(response) => return response,
    };
    let gzip = headers
        .get("content-encoding")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    smart_http::rpc(&state.repos, service, &context, body, gzip)
        .await
        .map(Body::new)
}
