//! Handlers of an app's config, builds and releases: the release-creating endpoints.

use super::errors::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath, Caller};
use super::pagination::Pager;
use super::AppState;
use crate::wire::{BuildRequest, Paginated, RollbackRequest, VersionResponse};
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use deis_core::model::{Build, Config, Release};

/// `Deis-Release: N` and the deprecated `X-Deis-Release: N`.
pub fn release_headers(version: u64) -> [(HeaderName, HeaderValue); 2] {
    let value = HeaderValue::from(version);
    [
        (HeaderName::from_static("deis-release"), value.clone()),
        (HeaderName::from_static("x-deis-release"), value),
    ]
}

/// `GET /v1/apps/<id>/config/`.
pub async fn get_config(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Config>> {
    Ok(Json(state.get_config(&caller, &id).await?))
}

/// `POST /v1/apps/<id>/config/`: 201 and `Deis-Release` when a release was made, 200 with
/// the unchanged config when the patch changed nothing.
pub async fn set_config(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult<Response> {
    let change = state.set_config(&caller, &id, &body).await?;
    Ok(match change.release {
        Some(version) => (
            StatusCode::CREATED,
            release_headers(version),
            Json(change.config),
        )
            .into_response(),
        None => (StatusCode::OK, Json(change.config)).into_response(),
    })
}

/// `GET /v1/apps/<id>/builds/`.
pub async fn list_builds(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
    pager: Pager,
) -> ApiResult<Json<Paginated<Build>>> {
    let page = state.list_builds(&caller, &id, pager.request()).await?;
    Ok(Json(pager.respond(page)?))
}

/// `GET /v1/apps/<id>/builds/<uuid>/`.
pub async fn get_build(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath((id, uuid)): ApiPath<(String, String)>,
) -> ApiResult<Json<Build>> {
    Ok(Json(state.get_build(&caller, &id, &uuid).await?))
}

/// `POST /v1/apps/<id>/builds/`.
pub async fn create_build(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<BuildRequest>,
) -> ApiResult<Response> {
    let (build, release) = state.create_build(&caller, &id, &body).await?;
    Ok((
        StatusCode::CREATED,
        release_headers(release.version),
        Json(build),
    )
        .into_response())
}

/// `GET /v1/apps/<id>/releases/`.
pub async fn list_releases(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
    pager: Pager,
) -> ApiResult<Json<Paginated<Release>>> {
    let page = state.list_releases(&caller, &id, pager.request()).await?;
    Ok(Json(pager.respond(page)?))
}

/// `GET /v1/apps/<id>/releases/v<N>/` (`<N>` alone is accepted too).
pub async fn get_release(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath((id, version)): ApiPath<(String, String)>,
) -> ApiResult<Json<Release>> {
    let number = version.strip_prefix('v').unwrap_or(&version);
    let version: u64 = number.parse().map_err(|_| ApiError::RouteNotFound)?;
    Ok(Json(state.get_release(&caller, &id, version).await?))
}

/// `POST /v1/apps/<id>/releases/rollback/`: 201 `{"version": new}`.
pub async fn rollback(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<RollbackRequest>,
) -> ApiResult<Response> {
    let release = state.rollback(&caller, &id, body.version).await?;
    Ok((
        StatusCode::CREATED,
        release_headers(release.version),
        Json(VersionResponse {
            version: release.version,
        }),
    )
        .into_response())
}
