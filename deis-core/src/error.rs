//! The one error type shared by the four traits and the validation rules.

use std::fmt;

/// A rule that an input value broke, naming the field and the rule in words.
///
/// Every validation function in [`crate::validation`] returns this, so an API can answer
/// `400 {"<field>": ["<message>"]}` exactly as Deis v1 did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ValidationError {
    /// The field that holds the bad value, e.g. `id`, `values`, `memory`, `domain`.
    pub field: String,
    /// A short, stable, machine-readable name of the broken rule, e.g. `too_long`.
    pub rule: &'static str,
    /// A sentence for people saying what is wrong and what is allowed.
    pub message: String,
}

impl ValidationError {
    /// Builds a validation error for `field` that broke `rule`.
    pub fn new(field: impl Into<String>, rule: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            rule,
            message: message.into(),
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for ValidationError {}

/// The kind of record an error is about, so messages read "app not found: foo".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Kind {
    /// A platform user.
    User,
    /// An API token.
    Token,
    /// An SSH public key.
    Key,
    /// An application.
    App,
    /// A build.
    Build,
    /// A config revision.
    Config,
    /// A release.
    Release,
    /// A custom domain.
    Domain,
    /// A TLS certificate.
    Certificate,
    /// An app permission (collaborator grant).
    Permission,
    /// A running instance (container or process).
    Instance,
    /// A key in the discovery key space.
    DiscoveryKey,
    /// A discovery lease.
    Lease,
    /// A git push record.
    Push,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Kind::User => "user",
            Kind::Token => "token",
            Kind::Key => "key",
            Kind::App => "app",
            Kind::Build => "build",
            Kind::Config => "config",
            Kind::Release => "release",
            Kind::Domain => "domain",
            Kind::Certificate => "certificate",
            Kind::Permission => "permission",
            Kind::Instance => "instance",
            Kind::DiscoveryKey => "discovery key",
            Kind::Lease => "lease",
            Kind::Push => "push",
        };
        f.write_str(name)
    }
}

/// The error of every `Store`, `Scheduler`, `Discovery` and `Router` backend.
///
/// Backends keep their own private error types (sqlx, bollard, etcd-client…) and map them
/// into these semantic variants; library types never appear here except as an opaque
/// `source`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The record does not exist.
    #[error("{kind} not found: {id}")]
    NotFound {
        /// What kind of record was looked up.
        kind: Kind,
        /// The id, name or key that was looked up.
        id: String,
    },
    /// A record with the same unique key exists already.
    #[error("{kind} already exists: {id}")]
    AlreadyExists {
        /// What kind of record collided.
        kind: Kind,
        /// The unique key that collided.
        id: String,
    },
    /// A condition of the write no longer holds (a stale revision, a record still in use).
    #[error("precondition failed: {message}")]
    Precondition {
        /// What did not hold, for people.
        message: String,
    },
    /// The input broke a validation rule.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The backend is unreachable or overloaded right now; trying again later may work.
    #[error("{backend} unavailable: {message}")]
    Unavailable {
        /// The backend's name, e.g. `postgres`, `etcd`, `docker`.
        backend: &'static str,
        /// What happened, for people.
        message: String,
    },
    /// The read position is no longer available (an etcd compaction, a trimmed history);
    /// the reader must take a fresh snapshot.
    #[error("revision {requested} was compacted; the oldest available is {oldest}")]
    Compacted {
        /// The revision that was asked for.
        requested: u64,
        /// The oldest revision the backend can still replay from.
        oldest: u64,
    },
    /// This backend does not implement the operation.
    #[error("{operation} is not implemented by the {backend} backend")]
    NotImplemented {
        /// The operation, e.g. `run`.
        operation: &'static str,
        /// The backend's name.
        backend: &'static str,
    },
    /// The backend failed in a way that has no semantic variant.
    #[error("{backend} error: {source}")]
    Backend {
        /// The backend's name.
        backend: &'static str,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

impl Error {
    /// A `NotFound` error for `kind` with the given id.
    pub fn not_found(kind: Kind, id: impl Into<String>) -> Self {
        Error::NotFound {
            kind,
            id: id.into(),
        }
    }

    /// An `AlreadyExists` error for `kind` with the given id.
    pub fn already_exists(kind: Kind, id: impl Into<String>) -> Self {
        Error::AlreadyExists {
            kind,
            id: id.into(),
        }
    }

    /// A `Precondition` error with the given message.
    pub fn precondition(message: impl Into<String>) -> Self {
        Error::Precondition {
            message: message.into(),
        }
    }

    /// A `Backend` error wrapping any error type.
    pub fn backend(
        backend: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Error::Backend {
            backend,
            source: source.into(),
        }
    }

    /// Whether the same call may succeed if it is simply tried again later.
    ///
    /// Only transient conditions are retryable: an unavailable backend. A stale revision
    /// (`Precondition`) needs a fresh read first, so it is not.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Unavailable { .. })
    }

    /// Whether this is a `NotFound` error.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }
}

/// The result type of the four traits.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unavailable_is_retryable() {
        assert!(Error::Unavailable {
            backend: "etcd",
            message: "connection refused".into()
        }
        .is_retryable());
        assert!(!Error::precondition("stale").is_retryable());
        assert!(!Error::not_found(Kind::App, "x").is_retryable());
        assert!(!Error::backend("sqlite", "disk I/O error").is_retryable());
    }

    #[test]
    fn messages_name_the_record() {
        assert_eq!(
            Error::not_found(Kind::App, "foo").to_string(),
            "app not found: foo"
        );
        assert_eq!(
            Error::from(ValidationError::new(
                "id",
                "too_long",
                "at most 64 characters"
            ))
            .to_string(),
            "id: at most 64 characters"
        );
    }
}
