//! The logger component on its own (Deis v1's `deis-logger`): the log store, the syslog
//! listener (RFC 5424/3164 over UDP and TCP) and a small HTTP API that controllers read
//! logs from, follow, and ship lines to. [`crate::client::RemoteLogs`] is its client.
//!
//! Every route but `/healthz` needs the shared logger key in `X-Deis-Logger-Auth`.
//!
//! | Route | Meaning |
//! |---|---|
//! | `GET /healthz` | 200 while the logger runs |
//! | `GET /v1/logs/<app>/?lines=N` | the last N lines (`text/plain`), 204 when there are none |
//! | `GET /v1/logs/<app>/?lines=N&follow=true` | the tail, then every new line (chunked) |
//! | `POST /v1/logs/` `{"lines":[{"app","source","text"}]}` | appends lines, 204 |
//! | `DELETE /v1/logs/<app>/` | forgets the app's logs, 204 |

use crate::secrets::constant_time_eq;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use deis_core::{Error, Result};
use deis_store::logs::{LogSettings, LogStore, SyslogListener};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The header that carries the logger key.
pub const LOGGER_AUTH_HEADER: &str = "x-deis-logger-auth";

/// The most lines one read may ask for.
pub const MAX_LINES: usize = 10_000;

/// The most lines one `POST /v1/logs/` may carry.
pub const MAX_BATCH: usize = 5_000;

/// One line shipped to the logger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippedLine {
    /// The app.
    pub app: String,
    /// The source tag (`web.1`, `deis-controller`).
    pub source: String,
    /// The text, without the newline.
    pub text: String,
}

/// The body of `POST /v1/logs/`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ShippedLines {
    /// The lines, in order.
    pub lines: Vec<ShippedLine>,
}

/// Where the logger listens and keeps its files.
#[derive(Clone)]
pub struct LoggerConfig {
    /// The directory of the log files (`<app>.log`, rotated to `<app>.log.1`).
    pub data_dir: PathBuf,
    /// The HTTP address controllers use.
    pub http_addr: SocketAddr,
    /// The syslog address (UDP and TCP), if any.
    pub syslog_addr: Option<SocketAddr>,
    /// The shared key of the HTTP API; must not be empty.
    pub key: String,
}

impl std::fmt::Debug for LoggerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoggerConfig")
            .field("data_dir", &self.data_dir)
            .field("http_addr", &self.http_addr)
            .field("syslog_addr", &self.syslog_addr)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// A running logger.
#[derive(Debug)]
pub struct Logger {
    logs: LogStore,
    http_addr: SocketAddr,
    syslog: Option<SyslogListener>,
    server: crate::platform::HttpServer,
}

impl Logger {
    /// Opens the log store and starts the syslog listener and the HTTP API.
    pub async fn start(config: LoggerConfig) -> Result<Logger> {
        if config.key.is_empty() {
            return Err(invalid("logger_key", "the logger needs a non-empty key"));
        }
        let logs = LogStore::new(LogSettings {
            directory: Some(config.data_dir.join("logs")),
            ..LogSettings::default()
        })
        .map_err(|e| io_error("opening the log directory", e))?;
        let syslog = match config.syslog_addr {
            Some(addr) => Some(
                SyslogListener::start(addr, logs.clone())
                    .await
                    .map_err(|e| io_error("binding the syslog listener", e))?,
            ),
            None => None,
        };
        let server =
            crate::platform::HttpServer::start(config.http_addr, routes(logs.clone(), &config.key))
                .await?;
        Ok(Logger {
            logs,
            http_addr: server.local_addr(),
            syslog,
            server,
        })
    }

    /// The log store, for embedding programs.
    pub fn logs(&self) -> &LogStore {
        &self.logs
    }

    /// The HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The syslog addresses (UDP, TCP), if started.
    pub fn syslog_addrs(&self) -> Option<(SocketAddr, SocketAddr)> {
        self.syslog.as_ref().map(|s| (s.udp, s.tcp))
    }

    /// Stops the listeners; followers are cut off after a short grace period.
    pub async fn shutdown(self) {
        drop(self.syslog);
        self.server.shutdown(Duration::from_secs(2)).await;
    }
}

fn invalid(field: &str, message: &str) -> Error {
    Error::Invalid(deis_core::error::ValidationError::new(
        field, "invalid", message,
    ))
}

fn io_error(what: &str, e: std::io::Error) -> Error {
    Error::backend(
        "logger",
        std::io::Error::new(e.kind(), format!("{what}: {e}")),
    )
}

#[derive(Clone)]
struct LoggerState {
    logs: LogStore,
    key: Arc<str>,
}

/// The logger's HTTP routes over `logs`, guarded by `key`.
pub fn routes(logs: LogStore, key: &str) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "OK" }))
        .route("/v1/logs/", post(append))
        .route("/v1/logs/{app}/", get(read).delete(forget))
        .with_state(LoggerState {
            logs,
            key: Arc::from(key),
        })
}

fn problem(status: StatusCode, detail: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "detail": detail.into() }))).into_response()
}

/// The refusal when the logger key is missing or wrong.
fn check(state: &LoggerState, headers: &HeaderMap) -> Option<Response> {
    let provided = headers
        .get(LOGGER_AUTH_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if provided.is_empty() {
        return Some(problem(
            StatusCode::UNAUTHORIZED,
            "Logger authentication credentials were not provided.",
        ));
    }
    if !constant_time_eq(provided, state.key.as_bytes()) {
        return Some(problem(StatusCode::UNAUTHORIZED, "Invalid logger key."));
    }
    None
}

/// The refusal when `app` is not a valid app id.
fn check_app(app: &str) -> Option<Response> {
    deis_core::validation::app_id(app, &[])
        .err()
        .map(|e| problem(StatusCode::BAD_REQUEST, format!("app: {}", e.message)))
}

async fn read(
    State(state): State<LoggerState>,
    Path(app): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = check(&state, &headers).or_else(|| check_app(&app)) {
        return response;
    }
    let lines = match query.get("lines").map(|v| v.parse::<usize>()) {
        None => 100,
        Some(Ok(n)) if n <= MAX_LINES => n,
        Some(_) => {
            return problem(
                StatusCode::BAD_REQUEST,
                format!("lines must be an integer from 0 to {MAX_LINES}."),
            )
        }
    };
    let follow = query
        .get("follow")
        .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "yes"));
    let text_plain = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    if follow {
        use futures::StreamExt;
        // The tail and the live lines from one position: nothing missed, nothing twice.
        let body = state
            .logs
            .tail_and_follow(&app, lines)
            .map(|line| Ok::<_, std::convert::Infallible>(bytes::Bytes::from(line + "\n")));
        return (text_plain, Body::from_stream(body)).into_response();
    }
    let tail = state.logs.tail(&app, lines);
    if tail.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    (text_plain, tail.join("\n") + "\n").into_response()
}

async fn append(
    State(state): State<LoggerState>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Response {
    if let Some(response) = check(&state, &headers) {
        return response;
    }
    let batch: ShippedLines = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        Err(e) => return problem(StatusCode::BAD_REQUEST, format!("body: {e}")),
    };
    if batch.lines.len() > MAX_BATCH {
        return problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("at most {MAX_BATCH} lines per request"),
        );
    }
    for line in &batch.lines {
        if let Some(response) = check_app(&line.app) {
            return response;
        }
    }
    for line in batch.lines {
        state.logs.append(&line.app, &line.source, &line.text);
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn forget(
    State(state): State<LoggerState>,
    Path(app): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = check(&state, &headers).or_else(|| check_app(&app)) {
        return response;
    }
    state.logs.delete(&app);
    StatusCode::NO_CONTENT.into_response()
}
