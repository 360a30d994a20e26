//! The controller's error: what went wrong in words the HTTP layer maps to status codes.

use deis_core::{Error as CoreError, Kind, ValidationError};

/// Why a controller operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No or an invalid token (HTTP 401).
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller may not do this (HTTP 403).
    #[error("{0}")]
    Forbidden(String),
    /// The record does not exist (HTTP 404).
    #[error("{0}")]
    NotFound(String),
    /// A field broke a rule (HTTP 400 `{"<field>": ["<message>"]}`).
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The request cannot be carried out as asked (HTTP 400 `{"detail"}`).
    #[error("{0}")]
    BadRequest(String),
    /// A conflicting state: a stale config revision, a user who still owns apps (HTTP 409).
    #[error("{0}")]
    Conflict(String),
    /// The scheduler or another backend failed or timed out (HTTP 503).
    #[error("{0}")]
    Unavailable(String),
    /// The backend does not support the operation (HTTP 501).
    #[error("{0}")]
    NotImplemented(String),
    /// An internal failure; the cause is logged, never sent (HTTP 500).
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// The result of controller operations.
pub type ServiceResult<T> = Result<T, ServiceError>;

impl ServiceError {
    /// An internal failure with a cause to log.
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        ServiceError::Internal(cause.into())
    }

    /// A field error.
    pub fn field(field: &str, rule: &'static str, message: impl Into<String>) -> Self {
        ServiceError::Invalid(ValidationError::new(field, rule, message))
    }
}

/// The request field that holds the unique key of a record kind.
fn unique_field(kind: Kind) -> Option<&'static str> {
    Some(match kind {
        Kind::App => "id",
        Kind::User => "username",
        Kind::Domain => "domain",
        Kind::Certificate => "common_name",
        Kind::Permission => "username",
        Kind::Key => "id",
        _ => return None,
    })
}

impl From<CoreError> for ServiceError {
    fn from(error: CoreError) -> Self {
        match error {
            CoreError::NotFound { kind, id } => {
                ServiceError::NotFound(format!("{kind} not found: {id}"))
            }
            CoreError::AlreadyExists { kind, id } => match unique_field(kind) {
                Some(field) => {
                    ServiceError::field(field, "unique", format!("{kind} {id} already exists."))
                }
                None => ServiceError::Conflict(format!("{kind} already exists: {id}")),
            },
            CoreError::Precondition { message } => ServiceError::Conflict(message),
            CoreError::Invalid(v) => ServiceError::Invalid(v),
            CoreError::Unavailable { backend, message } => {
                ServiceError::Unavailable(format!("{backend} unavailable: {message}"))
            }
            e @ CoreError::NotImplemented { .. } => ServiceError::NotImplemented(e.to_string()),
            other => ServiceError::internal(other),
        }
    }
}

impl From<crate::secrets::SecretError> for ServiceError {
    fn from(error: crate::secrets::SecretError) -> Self {
        ServiceError::internal(error)
    }
}
