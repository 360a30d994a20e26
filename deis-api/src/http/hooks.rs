//! Handlers of the builder hooks (`X-Deis-Builder-Auth`).

use super::errors::ApiResult;
use super::extract::{ApiJson, ApiPath, Builder};
use super::releases::release_headers;
use super::AppState;
use crate::wire::{
    AppsHookResponse, AuthHookRequest, AuthHookResponse, BuildHookRequest, ConfigHookRequest,
    KeyHookResponse, PushHookRequest,
};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use deis_core::model::{Config, Push};

/// `POST /v1/hooks/push/`.
pub async fn push(
    State(state): State<AppState>,
    _builder: Builder,
    ApiJson(body): ApiJson<PushHookRequest>,
) -> ApiResult<(StatusCode, Json<Push>)> {
    Ok((StatusCode::CREATED, Json(state.hook_push(&body).await?)))
}

/// `POST /v1/hooks/build/`.
pub async fn build(
    State(state): State<AppState>,
    _builder: Builder,
    ApiJson(body): ApiJson<BuildHookRequest>,
) -> ApiResult<Response> {
    let response = state.hook_build(&body).await?;
    Ok((
        StatusCode::OK,
        release_headers(response.release.version),
        Json(response),
    )
        .into_response())
}

/// `POST /v1/hooks/config/`.
pub async fn config(
    State(state): State<AppState>,
    _builder: Builder,
    ApiJson(body): ApiJson<ConfigHookRequest>,
) -> ApiResult<Json<Config>> {
    Ok(Json(
        state
            .hook_config(&body.receive_user, &body.receive_repo)
            .await?,
    ))
}

/// `GET /v1/hooks/key/<fingerprint>/`: the active user who registered the key.
pub async fn key(
    State(state): State<AppState>,
    _builder: Builder,
    ApiPath(fingerprint): ApiPath<String>,
) -> ApiResult<Json<KeyHookResponse>> {
    Ok(Json(state.hook_key(&fingerprint).await?))
}

/// `POST /v1/hooks/auth/`: git smart HTTP credentials and the user's right to the app.
pub async fn auth(
    State(state): State<AppState>,
    _builder: Builder,
    ApiJson(body): ApiJson<AuthHookRequest>,
) -> ApiResult<Json<AuthHookResponse>> {
    Ok(Json(state.hook_auth(&body).await?))
}

/// `POST /v1/hooks/access/`: the user's right to the app (SSH), with the app's uuid.
pub async fn access(
    State(state): State<AppState>,
    _builder: Builder,
    ApiJson(body): ApiJson<ConfigHookRequest>,
) -> ApiResult<Json<AuthHookResponse>> {
    Ok(Json(
        state
            .hook_access(&body.receive_user, &body.receive_repo)
            .await?,
    ))
}

/// `GET /v1/hooks/apps/`: every app id.
pub async fn apps(
    State(state): State<AppState>,
    _builder: Builder,
) -> ApiResult<Json<AppsHookResponse>> {
    Ok(Json(state.hook_apps().await?))
}
