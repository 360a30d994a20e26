//! A typed client of the REST API (reqwest): every endpoint as a method returning
//! deis-core model types or the small response structs of [`crate::wire`].

mod account;
mod apps;
mod hooks;
mod logger;

pub use hooks::ControllerHooks;
pub use logger::{RemoteLogs, SHIP_QUEUE};

use crate::wire::*;
use deis_core::model::User;
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
