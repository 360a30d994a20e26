//! Mapping of etcd-client errors into `deis_core::Error`, so no library type leaks out.

use deis_core::error::{Error, Kind};

/// The backend name used in every error of this module.
pub(crate) const BACKEND: &str = "etcd";

// gRPC status codes (numeric, to avoid depending on tonic directly).
const CANCELLED: i32 = 1;
const UNKNOWN: i32 = 2;
const DEADLINE_EXCEEDED: i32 = 4;
const NOT_FOUND: i32 = 5;
const RESOURCE_EXHAUSTED: i32 = 8;
const ABORTED: i32 = 10;
const OUT_OF_RANGE: i32 = 11;
const UNAVAILABLE: i32 = 14;

/// What an etcd-client error means to us, before it becomes a `deis_core::Error`.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The cluster could not be reached or could not answer now (retryable).
    Unavailable(String),
    /// No connection could be made, so the request was never sent (safe to send again).
    Unreachable(String),
    /// The server said the thing (a lease) does not exist.
    NotFound,
    /// The requested revision was compacted (a read at an old revision).
    Compacted,
    /// The request was malformed (bad endpoint, bad argument).
    Invalid(String),
    /// Anything else.
    Other(String),
}

/// Classifies an etcd-client error.
pub(crate) fn classify(error: &etcd_client::Error) -> Failure {
    use etcd_client::Error as E;
    match error {
        E::GRpcStatus(status) => {
            let message = status.message().to_string();
            match status.code() as i32 {
                NOT_FOUND => Failure::NotFound,
                OUT_OF_RANGE if message.contains("compacted") => Failure::Compacted,
                UNAVAILABLE if is_connect_failure(&message) => Failure::Unreachable(message),
                CANCELLED | DEADLINE_EXCEEDED | RESOURCE_EXHAUSTED | ABORTED | UNAVAILABLE => {
                    Failure::Unavailable(message)
                }
                // Leader changes and transport resets arrive as Unknown with a telling text.
                UNKNOWN if is_transient_text(&message) => Failure::Unavailable(message),
                _ => Failure::Other(message),
            }
        }
        // etcd-client's own check of the first keep-alive answer (TTL <= 0).
        E::LeaseKeepAliveError(message) if message.contains("not found") => Failure::NotFound,
        E::TransportError(_) | E::IoError(_) if is_connect_failure(&error.to_string()) => {
            Failure::Unreachable(error.to_string())
        }
        E::TransportError(_) | E::IoError(_) | E::WatchError(_) | E::LeaseKeepAliveError(_) => {
            Failure::Unavailable(error.to_string())
        }
        E::InvalidArgs(_) | E::InvalidUri(_) | E::EndpointError(_) => {
            Failure::Invalid(error.to_string())
        }
        _ => Failure::Other(error.to_string()),
    }
}

/// Whether an error text says no connection could be made (so nothing was sent).
fn is_connect_failure(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    message.contains("tcp connect error")
        || message.contains("error trying to connect")
        || message.contains("connection refused")
}

/// The words that mark an `Unavailable` error whose request was never sent.
const UNSENT: &str = "could not connect";

/// Whether a mapped error says the request was never sent, so any request, even one that
/// is not idempotent, may be sent again.
pub(crate) fn is_unsent(error: &Error) -> bool {
    matches!(error, Error::Unavailable { message, .. } if message.contains(UNSENT))
}

fn is_transient_text(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    [
        "leader",
        "timeout",
        "timed out",
        "connection",
        "transport",
        "broken pipe",
        "unavailable",
    ]
    .iter()
    .any(|needle| message.contains(needle))
}

/// An `Unavailable` error for etcd.
pub(crate) fn unavailable(message: impl Into<String>) -> Error {
    Error::Unavailable {
        backend: BACKEND,
        message: message.into(),
    }
}

/// Maps an error of an operation described by `what` (e.g. `put /deis/x`).
///
/// A `NotFound` from the server only ever means a lease here (keys that do not exist are
/// empty answers, not errors), so it is reported against `lease` when given.
pub(crate) fn map(error: etcd_client::Error, what: &str, lease: Option<i64>) -> Error {
    match classify(&error) {
        Failure::Unavailable(message) => unavailable(format!("{what}: {message}")),
        Failure::Unreachable(message) => unavailable(format!("{what}: {UNSENT}: {message}")),
        Failure::NotFound => match lease {
            Some(id) => Error::not_found(Kind::Lease, id.to_string()),
            None => Error::backend(BACKEND, format!("{what}: not found")),
        },
        Failure::Compacted => Error::backend(
            BACKEND,
            format!("{what}: the revision read was compacted meanwhile"),
        ),
        Failure::Invalid(message) => Error::backend(BACKEND, format!("{what}: {message}")),
        Failure::Other(message) => Error::backend(BACKEND, format!("{what}: {message}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_failures_are_retryable() {
        let error = map(
            etcd_client::Error::IoError(std::io::Error::from(
                std::io::ErrorKind::ConnectionRefused,
            )),
            "get /x",
            None,
        );
        assert!(error.is_retryable(), "{error}");
        assert!(error.to_string().contains("get /x"));
        let error = map(
            etcd_client::Error::WatchError("channel closed".into()),
            "watch",
            None,
        );
        assert!(matches!(
            error,
            Error::Unavailable {
                backend: "etcd",
                ..
            }
        ));
    }

    #[test]
    fn a_lapsed_lease_is_not_found() {
        let error = map(
            etcd_client::Error::LeaseKeepAliveError("lease not found".into()),
            "keep lease alive",
            Some(7),
        );
        assert!(error.is_not_found(), "{error:?}");
        assert_eq!(error.to_string(), "lease not found: 7");
    }

    #[test]
    fn connect_failures_are_unsent() {
        let error = map(
            etcd_client::Error::IoError(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "Connection refused (os error 111)",
            )),
            "revoke lease",
            Some(1),
        );
        assert!(is_unsent(&error), "{error:?}");
        let error = map(
            etcd_client::Error::WatchError("channel closed".into()),
            "watch",
            None,
        );
        assert!(!is_unsent(&error), "{error:?}");
    }

    #[test]
    fn bad_arguments_are_not_retryable() {
        let error = map(
            etcd_client::Error::InvalidArgs("empty endpoints".into()),
            "connect",
            None,
        );
        assert!(!error.is_retryable());
    }

    #[test]
    fn transient_texts() {
        assert!(is_transient_text("etcdserver: leader changed"));
        assert!(is_transient_text(
            "error trying to connect: Connection refused"
        ));
        assert!(!is_transient_text("etcdserver: key is not provided"));
    }
}
