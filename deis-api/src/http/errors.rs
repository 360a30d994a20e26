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
