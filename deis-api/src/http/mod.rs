//! The Deis v1 REST API (v1.7) over the [`Controller`], on axum.
//!
//! Routes come from one table ([`routes::ROUTES`]); every path works with and without its
//! trailing slash. Cross-cutting concerns are layers: the version headers on every
//! response (and the `DEIS_VERSION` check), the body limit (413), and JSON 404/405
//! fallbacks.

pub mod account;
pub mod apps;
pub mod auth;
pub mod errors;
pub mod extract;
pub mod hooks;
pub mod pagination;
pub mod releases;
pub mod routes;

use crate::controller::Controller;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use errors::ApiError;
use std::sync::Arc;
use std::time::Instant;

/// The API version this server speaks.
pub const API_VERSION: &str = "1.7";

/// The state every handler gets: the controller.
pub type AppState = Arc<Controller>;

/// `GET /v1/openapi.json`.
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(crate::openapi::document())
}

#[derive(Clone)]
struct VersionHeaders {
    platform: HeaderValue,
}

async fn version_layer(
    State(headers): State<Arc<VersionHeaders>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let traced = tracing::enabled!(tracing::Level::DEBUG)
        .then(|| (request.method().clone(), request.uri().path().to_string()));
    let client_version = request
        .headers()
        .get("deis_version")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let mut response = match client_version {
        Some(client) if !same_minor(&client, API_VERSION) => {
            ApiError::VersionMismatch { client }.into_response()
        }
        _ => next.run(request).await,
    };
    let api = HeaderValue::from_static(API_VERSION);
    let out = response.headers_mut();
    out.insert(HeaderName::from_static("deis_api_version"), api.clone());
    out.insert(HeaderName::from_static("x_deis_api_version"), api);
    out.insert(
        HeaderName::from_static("deis_platform_version"),
        headers.platform.clone(),
    );
    out.insert(
        HeaderName::from_static("x_deis_platform_version"),
        headers.platform.clone(),
    );
    if let Some((method, path)) = traced {
        tracing::debug!(%method, path, status = response.status().as_u16(),
            elapsed_us = started.elapsed().as_micros() as u64, "request");
    }
    response
}

/// Whether two versions share major and minor (`1.7.2` and `1.7`).
fn same_minor(a: &str, b: &str) -> bool {
    let key = |v: &str| v.trim().split('.').take(2).collect::<Vec<_>>().join(".");
    key(a) == key(b)
}

/// The API's router over a controller.
pub fn router(controller: Arc<Controller>) -> Router {
    let platform = HeaderValue::from_str(&controller.settings().platform_version)
        .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
    let body_limit = controller.settings().body_limit_bytes;
    let mut router: Router<AppState> = Router::new();
    for route in routes::ROUTES {
        router = router.route(route.path, (route.handler)());
        let alternate = match route.path.strip_suffix('/') {
            Some(bare) if !bare.is_empty() && route.path != "/v1/" => bare.to_string(),
            Some(_) => "/v1".to_string(),
            None if route.path.starts_with("/v1/") && !route.path.ends_with(".json") => {
                format!("{}/", route.path)
            }
            None => continue,
        };
        router = router.route(&alternate, (route.handler)());
    }
    router
        .fallback(errors::route_not_found)
        .method_not_allowed_fallback(errors::method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(
            Arc::new(VersionHeaders { platform }),
            version_layer,
        ))
        .with_state(controller)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_minor() {
        assert!(same_minor("1.7", "1.7"));
        assert!(same_minor("1.7.3", "1.7"));
        assert!(!same_minor("1.6", "1.7"));
        assert!(!same_minor("2.7", "1.7"));
    }
}
