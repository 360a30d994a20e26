//! One error type for every handler: user mistakes become 4xx JSON bodies, internal
//! failures an opaque 500 whose cause is logged, never sent.

use crate::controller::ServiceError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A controller failure.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The body is larger than the limit.
    #[error("request body larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// No route has this path.
    #[error("not found")]
    RouteNotFound,
    /// The path exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The client's `DEIS_VERSION` differs from the server's API version.
    #[error("client and server versions do not match")]
    VersionMismatch {
        /// What the client sent.
        client: String,
    },
}

impl ApiError {
    /// The status code and JSON body of the error.
    pub fn status_and_body(&self) -> (StatusCode, Value) {
        let detail = |status: StatusCode, message: &str| (status, json!({ "detail": message }));
        match self {
            ApiError::Service(error) => match error {
                ServiceError::Unauthenticated(m) => detail(StatusCode::UNAUTHORIZED, m),
                ServiceError::Forbidden(m) => detail(StatusCode::FORBIDDEN, m),
                ServiceError::NotFound(m) => detail(StatusCode::NOT_FOUND, m),
                ServiceError::Invalid(v) => (
                    StatusCode::BAD_REQUEST,
                    json!({ v.field.as_str(): [v.message.as_str()] }),
                ),
                ServiceError::BadRequest(m) => detail(StatusCode::BAD_REQUEST, m),
                ServiceError::Conflict(m) => detail(StatusCode::CONFLICT, m),
                ServiceError::Unavailable(m) => detail(StatusCode::SERVICE_UNAVAILABLE, m),
                ServiceError::NotImplemented(m) => detail(StatusCode::NOT_IMPLEMENTED, m),
                ServiceError::Internal(cause) => {
                    tracing::error!(error = %cause, source = ?std::error::Error::source(cause.as_ref()), "internal error");
                    detail(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error.")
                }
            },
            ApiError::PayloadTooLarge(limit) => detail(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("Request body is larger than {limit} bytes."),
            ),
            ApiError::RouteNotFound => detail(StatusCode::NOT_FOUND, "Not found."),
            ApiError::MethodNotAllowed => {
                detail(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.")
            }
            ApiError::VersionMismatch { client } => (
                StatusCode::METHOD_NOT_ALLOWED,
                json!({ "error": format!(
                    "Client and server versions do not match. Client version: {client} Server version: {}",
                    super::API_VERSION
                ) }),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = self.status_and_body();
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Token"));
        }
        response
    }
}

/// The result of handlers.
pub type ApiResult<T> = Result<T, ApiError>;

/// The 404 of unknown routes.
pub async fn route_not_found() -> ApiError {
    ApiError::RouteNotFound
}

/// The 405 of known routes called with another method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

#[cfg(test)]
mod tests {
    use super::*;
    use deis_core::{Error as CoreError, Kind, ValidationError};

    fn status_of(error: CoreError) -> (StatusCode, Value) {
        ApiError::Service(error.into()).status_and_body()
    }

    #[test]
    fn backend_failures_are_opaque_500s() {
        let (status, body) = status_of(CoreError::backend(
            "sqlite",
            "disk I/O error at /var/lib/deis/secret.db",
        ));
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body, json!({"detail": "Internal server error."}));
        let (status, body) = status_of(CoreError::Compacted {
            requested: 1,
            oldest: 2,
        });
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.to_string().contains("revision"));
    }

    #[test]
    fn core_errors_map_to_deis_statuses() {
        assert_eq!(
            status_of(CoreError::not_found(Kind::App, "go")),
            (
                StatusCode::NOT_FOUND,
                json!({"detail": "app not found: go"})
            )
        );
        assert_eq!(
            status_of(CoreError::already_exists(Kind::Domain, "a.example.com")).0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status_of(CoreError::already_exists(Kind::Domain, "a.example.com")).1["domain"][0],
            "domain a.example.com already exists."
        );
        assert_eq!(
            status_of(CoreError::precondition("stale")).0,
            StatusCode::CONFLICT
        );
        assert_eq!(
            status_of(CoreError::Unavailable {
                backend: "etcd",
                message: "down".into()
            }),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"detail": "etcd unavailable: down"})
            )
        );
        assert_eq!(
            status_of(CoreError::NotImplemented {
                operation: "run",
                backend: "memory"
            })
            .0,
            StatusCode::NOT_IMPLEMENTED
        );
        assert_eq!(
            status_of(CoreError::Invalid(ValidationError::new(
                "memory", "invalid", "bad"
            ))),
            (StatusCode::BAD_REQUEST, json!({"memory": ["bad"]}))
        );
    }

    #[test]
    fn unauthenticated_answers_carry_www_authenticate() {
        let response = ApiError::Service(ServiceError::Unauthenticated("Invalid token.".into()))
            .into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Token");
        assert_eq!(
            ApiError::PayloadTooLarge(10).status_and_body().0,
            StatusCode::PAYLOAD_TOO_LARGE
        );
    }
}
