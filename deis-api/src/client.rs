//! A typed client of the REST API (reqwest): every endpoint as a method returning
//! deis-core model types or the small response structs of [`crate::wire`].

use crate::wire::*;
use deis_core::model::{App, Build, Certificate, Config, Domain, Key, Push, Release, User};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::fmt;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error status.
    #[error("{status}: {message}")]
    Api {
        /// The HTTP status.
        status: StatusCode,
        /// The server's message (`detail`, `error`, or `field: message` lines).
        message: String,
        /// The whole error body, when it was JSON.
        body: Option<Value>,
    },
    /// The request could not be sent or the answer not read.
    #[error("transport error: {0}")]
    Transport(#[from] reqwest::Error),
    /// The answer was not the expected JSON.
    #[error("unexpected response: {0}")]
    Decode(String),
}

impl ClientError {
    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The result of client calls.
pub type ClientResult<T> = Result<T, ClientError>;

/// A successful answer of a release-creating call, with the release from `Deis-Release`.
#[derive(Debug, Clone, PartialEq)]
pub struct Released<T> {
    /// The response body.
    pub body: T,
    /// The new release's version, if the server made one.
    pub release: Option<u64>,
}

/// A client of one controller, optionally logged in.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    builder_key: Option<String>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// Turns an error body into one line for people.
fn message_of(body: &Value) -> Option<String> {
    let object = body.as_object()?;
    for key in ["detail", "error"] {
        if let Some(text) = object.get(key).and_then(Value::as_str) {
            return Some(text.to_string());
        }
    }
    let lines: Vec<String> = object
        .iter()
        .map(|(field, messages)| {
            let text = match messages {
                Value::Array(items) => items
                    .iter()
                    .map(|m| {
                        m.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| m.to_string())
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
                other => other.to_string(),
            };
            format!("{field}: {text}")
        })
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

fn segment(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

impl Client {
    /// A client of the controller at `base` (e.g. `http://127.0.0.1:8000`), not logged in.
    pub fn new(base: impl Into<String>) -> Self {
        Client {
            http: reqwest::Client::new(),
            base: base.into().trim_end_matches('/').to_string(),
            token: None,
            builder_key: None,
        }
    }

    /// The same client with a token.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The same client with the builder key for the hooks.
    pub fn with_builder_key(mut self, key: impl Into<String>) -> Self {
        self.builder_key = Some(key.into());
        self
    }

    /// The token in use, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&dyn erased::Body>,
    ) -> ClientResult<reqwest::Response> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("token {token}"));
        }
        if let Some(key) = &self.builder_key {
            request = request.header("X-Deis-Builder-Auth", key);
        }
        if let Some(body) = body {
            request = request.json(&body.to_value()?);
        }
        let response = request.send().await?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let bytes = response.bytes().await?;
        let body: Option<Value> = serde_json::from_slice(&bytes).ok();
        let message = body
            .as_ref()
            .and_then(message_of)
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
        Err(ClientError::Api {
            status,
            message,
            body,
        })
    }

    async fn json<T: DeserializeOwned>(response: reqwest::Response) -> ClientResult<T> {
        let bytes = response.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()))
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&dyn erased::Body>,
    ) -> ClientResult<T> {
        Self::json(self.send(method, path, body).await?).await
    }

    async fn released<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &dyn erased::Body,
    ) -> ClientResult<Released<T>> {
        let response = self.send(Method::POST, path, Some(body)).await?;
        let release = response
            .headers()
            .get("deis-release")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        Ok(Released {
            body: Self::json(response).await?,
            release,
        })
    }

    async fn empty(
        &self,
        method: Method,
        path: &str,
        body: Option<&dyn erased::Body>,
    ) -> ClientResult<()> {
        self.send(method, path, body).await.map(|_| ())
    }

    fn page_path(path: &str, page: Option<u64>, page_size: Option<u64>) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Some(page) = page {
            query.append_pair("page", &page.to_string());
        }
        if let Some(size) = page_size {
            query.append_pair("page_size", &size.to_string());
        }
        let query = query.finish();
        if query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{query}")
        }
    }

    // Meta.

    /// `GET /healthz`: true when the server answers `OK`.
    pub async fn healthz(&self) -> ClientResult<bool> {
        let response = self.send(Method::GET, "/healthz", None).await?;
        Ok(response.text().await? == "OK")
    }

    /// `GET /v1/openapi.json`.
    pub async fn openapi(&self) -> ClientResult<Value> {
        self.call(Method::GET, "/v1/openapi.json", None).await
    }

    // Auth.

    /// `POST /v1/auth/register/`.
    pub async fn register(&self, request: &RegisterRequest) -> ClientResult<User> {
        self.call(Method::POST, "/v1/auth/register/", Some(request))
            .await
    }

    /// `POST /v1/auth/login/`: returns a client holding the new token.
    pub async fn login(&self, username: &str, password: &str) -> ClientResult<Client> {
        let request = LoginRequest {
            username: username.into(),
            password: password.into(),
        };
        let response: TokenResponse = self
            .call(Method::POST, "/v1/auth/login/", Some(&request))
            .await?;
        Ok(self.clone().with_token(response.token))
    }

    /// `DELETE /v1/auth/cancel/`.
    pub async fn cancel(&self, username: Option<&str>) -> ClientResult<()> {
        let request = CancelRequest {
            username: username.map(str::to_string),
        };
        self.empty(Method::DELETE, "/v1/auth/cancel/", Some(&request))
            .await
    }

    /// `POST /v1/auth/passwd/`.
    pub async fn passwd(&self, request: &PasswdRequest) -> ClientResult<StatusResponse> {
        self.call(Method::POST, "/v1/auth/passwd/", Some(request))
            .await
    }

    /// `POST /v1/auth/tokens/`: the new token (`None` for `all`).
    pub async fn regenerate_token(&self, request: &TokensRequest) -> ClientResult<Option<String>> {
        let response = self
            .send(Method::POST, "/v1/auth/tokens/", Some(request))
            .await?;
        let bytes = response.bytes().await?;
        if bytes.is_empty() {
            return Ok(None);
        }
        let token: TokenResponse =
            serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()))?;
        Ok(Some(token.token))
    }

    /// `GET /v1/users/`.
    pub async fn list_users(
        &self,
        page: Option<u64>,
        page_size: Option<u64>,
    ) -> ClientResult<Paginated<User>> {
        self.call(
            Method::GET,
            &Self::page_path("/v1/users/", page, page_size),
            None,
        )
        .await
    }

    /// `GET /v1/admin/perms/`.
    pub async fn list_admins(&self) -> ClientResult<Paginated<AdminPerm>> {
        self.call(Method::GET, "/v1/admin/perms/", None).await
    }

    /// `POST /v1/admin/perms/`.
    pub async fn grant_admin(&self, username: &str) -> ClientResult<()> {
        let request = UsernameRequest {
            username: username.into(),
        };
        self.empty(Method::POST, "/v1/admin/perms/", Some(&request))
            .await
    }

    /// `DELETE /v1/admin/perms/<username>/`.
    pub async fn revoke_admin(&self, username: &str) -> ClientResult<()> {
        self.empty(
            Method::DELETE,
            &format!("/v1/admin/perms/{}/", segment(username)),
            None,
        )
        .await
    }

    // Apps.

    /// `GET /v1/apps/`.
    pub async fn list_apps(
        &self,
        page: Option<u64>,
        page_size: Option<u64>,
    ) -> ClientResult<Paginated<App>> {
        self.call(
            Method::GET,
            &Self::page_path("/v1/apps/", page, page_size),
            None,
        )
        .await
    }

    /// `POST /v1/apps/`.
    pub async fn create_app(&self, id: Option<&str>) -> ClientResult<App> {
        let request = CreateAppRequest {
            id: id.map(str::to_string),
        };
        self.call(Method::POST, "/v1/apps/", Some(&request)).await
    }

    /// `GET /v1/apps/<id>/`.
    pub async fn get_app(&self, app: &str) -> ClientResult<App> {
        self.call(Method::GET, &format!("/v1/apps/{}/", segment(app)), None)
            .await
    }

    /// `POST /v1/apps/<id>/`: transfer.
    pub async fn transfer_app(&self, app: &str, owner: &str) -> ClientResult<App> {
        let request = TransferRequest {
            owner: owner.into(),
        };
        self.call(
            Method::POST,
            &format!("/v1/apps/{}/", segment(app)),
            Some(&request),
        )
        .await
    }

    /// `DELETE /v1/apps/<id>/`.
    pub async fn destroy_app(&self, app: &str) -> ClientResult<()> {
        self.empty(Method::DELETE, &format!("/v1/apps/{}/", segment(app)), None)
            .await
    }

    /// `POST /v1/apps/<id>/scale/`.
    pub async fn scale(
        &self,
        app: &str,
        counts: &std::collections::BTreeMap<String, u32>,
    ) -> ClientResult<()> {
        self.empty(
            Method::POST,
            &format!("/v1/apps/{}/scale/", segment(app)),
            Some(counts),
        )
        .await
    }

    /// `GET /v1/apps/<id>/logs/`: `None` when there are no logs (204).
    pub async fn logs(&self, app: &str, lines: Option<usize>) -> ClientResult<Option<String>> {
        let mut path = format!("/v1/apps/{}/logs/", segment(app));
        if let Some(lines) = lines {
            path.push_str(&format!("?log_lines={lines}"));
        }
        let response = self.send(Method::GET, &path, None).await?;
        if response.status() == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        Ok(Some(response.text().await?))
    }

    /// `POST /v1/apps/<id>/run/`: exit code and output.
    pub async fn run(&self, app: &str, command: &str) -> ClientResult<(i32, String)> {
        let request = RunCommandRequest {
            command: command.into(),
        };
        self.call(
            Method::POST,
            &format!("/v1/apps/{}/run/", segment(app)),
            Some(&request),
        )
        .await
    }

    /// `GET /v1/apps/<id>/containers/[<type>/]`.
    pub async fn containers(
        &self,
        app: &str,
        process_type: Option<&str>,
    ) -> ClientResult<Paginated<Container>> {
        let path = match process_type {
            None => format!("/v1/apps/{}/containers/", segment(app)),
            Some(t) => format!("/v1/apps/{}/containers/{}/", segment(app), segment(t)),
        };
        self.call(Method::GET, &path, None).await
    }

    /// `GET /v1/apps/<id>/containers/<type>/<num>/`.
    pub async fn container(
        &self,
        app: &str,
        process_type: &str,
        num: u32,
    ) -> ClientResult<Container> {
        self.call(
            Method::GET,
            &format!(
                "/v1/apps/{}/containers/{}/{num}/",
                segment(app),
                segment(process_type)
            ),
            None,
        )
        .await
    }

    /// `POST /v1/apps/<id>/containers/[<type>/[<num>/]]restart/`.
    pub async fn restart(
        &self,
        app: &str,
        process_type: Option<&str>,
        num: Option<u32>,
    ) -> ClientResult<Vec<Container>> {
        let mut path = format!("/v1/apps/{}/containers/", segment(app));
        if let Some(t) = process_type {
            path.push_str(&format!("{}/", segment(t)));
            if let Some(n) = num {
                path.push_str(&format!("{n}/"));
            }
        }
        path.push_str("restart/");
        self.call(Method::POST, &path, None).await
    }

    // Config, builds, releases.

    /// `GET /v1/apps/<id>/config/`.
    pub async fn get_config(&self, app: &str) -> ClientResult<Config> {
        self.call(
            Method::GET,
            &format!("/v1/apps/{}/config/", segment(app)),
            None,
        )
        .await
    }

    /// `POST /v1/apps/<id>/config/` with a patch such as
    /// `{"values": {"FOO": "bar", "OLD": null}}`.
    pub async fn set_config(&self, app: &str, patch: &Value) -> ClientResult<Released<Config>> {
        self.released(&format!("/v1/apps/{}/config/", segment(app)), patch)
            .await
    }

    /// `GET /v1/apps/<id>/builds/`.
    pub async fn list_builds(&self, app: &str) -> ClientResult<Paginated<Build>> {
        self.call(
            Method::GET,
            &format!("/v1/apps/{}/builds/", segment(app)),
            None,
        )
        .await
    }

    /// `GET /v1/apps/<id>/builds/<uuid>/`.
    pub async fn get_build(&self, app: &str, uuid: &str) -> ClientResult<Build> {
        self.call(
            Method::GET,
            &format!("/v1/apps/{}/builds/{}/", segment(app), segment(uuid)),
            None,
        )
        .await
    }

    /// `POST /v1/apps/<id>/builds/`: deploys an image.
    pub async fn create_build(
        &self,
        app: &str,
        request: &BuildRequest,
    ) -> ClientResult<Released<Build>> {
        self.released(&format!("/v1/apps/{}/builds/", segment(app)), request)
            .await
    }

    /// `GET /v1/apps/<id>/releases/`.
    pub async fn list_releases(&self, app: &str) -> ClientResult<Paginated<Release>> {
        self.call(
            Method::GET,
            &format!("/v1/apps/{}/releases/", segment(app)),
            None,
        )
        .await
    }

    /// `GET /v1/apps/<id>/releases/v<N>/`.
    pub async fn get_release(&self, app: &str, version: u64) -> ClientResult<Release> {
        self.call(
            Method::GET,
            &format!("/v1/apps/{}/releases/v{version}/", segment(app)),
            None,
        )
        .await
    }

    /// `POST /v1/apps/<id>/releases/rollback/`: the new release's version.
    pub async fn rollback(&self, app: &str, version: Option<u64>) -> ClientResult<u64> {
        let request = RollbackRequest { version };
        let response: Released<VersionResponse> = self
            .released(
                &format!("/v1/apps/{}/releases/rollback/", segment(app)),
                &request,
            )
            .await?;
        Ok(response.body.version)
    }

    // Domains and perms.

    /// `GET /v1/apps/<id>/domains/`.
    pub async fn list_domains(&self, app: &str) -> ClientResult<Paginated<Domain>> {
        self.call(
            Method::GET,
            &format!("/v1/apps/{}/domains/", segment(app)),
            None,
        )
        .await
    }

    /// `POST /v1/apps/<id>/domains/`.
    pub async fn add_domain(&self, app: &str, domain: &str) -> ClientResult<Domain> {
        let request = DomainRequest {
            domain: domain.into(),
        };
        self.call(
            Method::POST,
            &format!("/v1/apps/{}/domains/", segment(app)),
            Some(&request),
        )
        .await
    }

    /// `DELETE /v1/apps/<id>/domains/<domain>/`.
    pub async fn remove_domain(&self, app: &str, domain: &str) -> ClientResult<()> {
        self.empty(
            Method::DELETE,
            &format!("/v1/apps/{}/domains/{}/", segment(app), segment(domain)),
            None,
        )
        .await
    }

    /// `GET /v1/apps/<id>/perms/`.
    pub async fn list_perms(&self, app: &str) -> ClientResult<PermsResponse> {
        self.call(
            Method::GET,
            &format!("/v1/apps/{}/perms/", segment(app)),
            None,
        )
        .await
    }

    /// `POST /v1/apps/<id>/perms/`.
    pub async fn grant_perm(&self, app: &str, username: &str) -> ClientResult<()> {
        let request = UsernameRequest {
            username: username.into(),
        };
        self.empty(
            Method::POST,
            &format!("/v1/apps/{}/perms/", segment(app)),
            Some(&request),
        )
        .await
    }

    /// `DELETE /v1/apps/<id>/perms/<username>/`.
    pub async fn revoke_perm(&self, app: &str, username: &str) -> ClientResult<()> {
        self.empty(
            Method::DELETE,
            &format!("/v1/apps/{}/perms/{}/", segment(app), segment(username)),
            None,
        )
        .await
    }

    // Keys and certificates.

    /// `GET /v1/keys/`.
    pub async fn list_keys(&self) -> ClientResult<Paginated<Key>> {
        self.call(Method::GET, "/v1/keys/", None).await
    }

    /// `POST /v1/keys/`.
    pub async fn add_key(&self, id: &str, public: &str) -> ClientResult<Key> {
        let request = KeyRequest {
            id: id.into(),
            public: public.into(),
        };
        self.call(Method::POST, "/v1/keys/", Some(&request)).await
    }

    /// `GET /v1/keys/<id>/`.
    pub async fn get_key(&self, id: &str) -> ClientResult<Key> {
        self.call(Method::GET, &format!("/v1/keys/{}/", segment(id)), None)
            .await
    }

    /// `DELETE /v1/keys/<id>/`.
    pub async fn remove_key(&self, id: &str) -> ClientResult<()> {
        self.empty(Method::DELETE, &format!("/v1/keys/{}/", segment(id)), None)
            .await
    }

    /// `GET /v1/certs/`.
    pub async fn list_certs(&self) -> ClientResult<Paginated<Certificate>> {
        self.call(Method::GET, "/v1/certs/", None).await
    }

    /// `POST /v1/certs/`.
    pub async fn add_cert(&self, request: &CertificateRequest) -> ClientResult<Certificate> {
        self.call(Method::POST, "/v1/certs/", Some(request)).await
    }

    /// `GET /v1/certs/<common_name>/`.
    pub async fn get_cert(&self, common_name: &str) -> ClientResult<Certificate> {
        self.call(
            Method::GET,
            &format!("/v1/certs/{}/", segment(common_name)),
            None,
        )
        .await
    }

    /// `DELETE /v1/certs/<common_name>/`.
    pub async fn remove_cert(&self, common_name: &str) -> ClientResult<()> {
        self.empty(
            Method::DELETE,
            &format!("/v1/certs/{}/", segment(common_name)),
            None,
        )
        .await
    }

    // Builder hooks (need `with_builder_key`).

    /// `POST /v1/hooks/push/`.
    pub async fn hook_push(&self, request: &PushHookRequest) -> ClientResult<Push> {
        self.call(Method::POST, "/v1/hooks/push/", Some(request))
            .await
    }

    /// `POST /v1/hooks/build/`.
    pub async fn hook_build(&self, request: &BuildHookRequest) -> ClientResult<BuildHookResponse> {
        self.call(Method::POST, "/v1/hooks/build/", Some(request))
            .await
    }

    /// `POST /v1/hooks/config/`.
    pub async fn hook_config(&self, user: &str, app: &str) -> ClientResult<Config> {
        let request = ConfigHookRequest {
            receive_user: user.into(),
            receive_repo: app.into(),
        };
        self.call(Method::POST, "/v1/hooks/config/", Some(&request))
            .await
    }
}

/// Object-safe serialization of request bodies.
mod erased {
    use super::{ClientError, ClientResult};
    use serde_json::Value;

    /// A body that can become JSON.
    pub trait Body: Send + Sync {
        /// The body as a JSON value.
        fn to_value(&self) -> ClientResult<Value>;
    }

    impl<T: super::Serialize + Send + Sync> Body for T {
        fn to_value(&self) -> ClientResult<Value> {
            serde_json::to_value(self).map_err(|e| ClientError::Decode(e.to_string()))
        }
    }
}
