//! Extractors that answer in JSON: the token caller, the builder key, JSON bodies and
//! path parameters.

use super::errors::ApiError;
use super::AppState;
use crate::controller::ServiceError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use deis_core::model::User;
use serde::de::DeserializeOwned;

/// The authenticated user of a request (`Authorization: token <key>`).
#[derive(Debug, Clone)]
pub struct Caller(pub User);

/// The token of a request, if it has an `Authorization` header: `Err` for a malformed one.
fn bearer(parts: &Parts) -> Result<Option<&str>, ApiError> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let invalid = || {
        ApiError::Service(ServiceError::Unauthenticated(
            "Invalid token header.".into(),
        ))
    };
    let text = value.to_str().map_err(|_| invalid())?;
    let (scheme, token) = text.trim().split_once(' ').ok_or_else(invalid)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("token") || token.is_empty() || token.contains(' ') {
        return Err(invalid());
    }
    Ok(Some(token))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)?.ok_or_else(|| {
            ApiError::Service(ServiceError::Unauthenticated(
                "Authentication credentials were not provided.".into(),
            ))
        })?;
        Ok(Caller(state.authenticate(token).await?))
    }
}

/// The authenticated user, if the request carries a token (registration in `admin_only`).
#[derive(Debug, Clone)]
pub struct MaybeCaller(pub Option<User>);

impl FromRequestParts<AppState> for MaybeCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match bearer(parts)? {
            None => Ok(MaybeCaller(None)),
            Some(token) => Ok(MaybeCaller(Some(state.authenticate(token).await?))),
        }
    }
}

/// Proof that the request carries the builder key (`X-Deis-Builder-Auth`).
#[derive(Debug, Clone, Copy)]
pub struct Builder;

impl FromRequestParts<AppState> for Builder {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let provided = parts
            .headers
            .get("x-deis-builder-auth")
            .and_then(|v| v.to_str().ok());
        state.check_builder_key(provided)?;
        Ok(Builder)
    }
}

/// A JSON body whose every failure is a JSON 400 naming the field (413 when too large).
/// An empty body reads as `{}`.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

fn parse_error(message: impl Into<String>) -> ApiError {
    ApiError::Service(ServiceError::BadRequest(message.into()))
}

/// Parses a JSON body into `T`, naming the field of a type error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    let mut deserializer = serde_json::Deserializer::from_slice(text);
    let value: T = match serde_path_to_error::deserialize(&mut deserializer) {
        Ok(value) => value,
        Err(error) => {
            let path = error.path().to_string();
            let inner = error.into_inner();
            if !inner.is_data() {
                return Err(parse_error(format!("JSON parse error - {inner}")));
            }
            let message = inner.to_string();
            let message = message
                .split(" at line ")
                .next()
                .unwrap_or(&message)
                .to_string();
            let field = if path == "." || path.is_empty() {
                missing_field_name(&message).unwrap_or("non_field_errors".into())
            } else {
                path
            };
            let message = if message.starts_with("missing field") {
                "This field is required.".to_string()
            } else {
                message
            };
            return Err(ApiError::Service(ServiceError::field(
                &field, "invalid", message,
            )));
        }
    };
    deserializer
        .end()
        .map_err(|e| parse_error(format!("JSON parse error - {e}")))?;
    Ok(value)
}

/// `missing field `name`` → `name`.
fn missing_field_name(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_string())
}

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(state.settings().body_limit_bytes)
            } else {
                parse_error("Could not read the request body.")
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Path parameters; a malformed one is a JSON 404, as an unmatched URL would be.
#[derive(Debug, Clone)]
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| ApiPath(value))
            .map_err(|_| ApiError::RouteNotFound)
    }
}
