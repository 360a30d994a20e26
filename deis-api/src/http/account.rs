//! Handlers of `/v1/keys/` and `/v1/certs/`.

use super::errors::ApiResult;
use super::extract::{ApiJson, ApiPath, Caller};
use super::pagination::Pager;
use super::AppState;
use crate::wire::{CertificateRequest, KeyRequest, Paginated};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use deis_core::model::{Certificate, Key};

/// `GET /v1/keys/`.
pub async fn list_keys(
    State(state): State<AppState>,
    Caller(caller): Caller,
    pager: Pager,
) -> ApiResult<Json<Paginated<Key>>> {
    let page = state.list_keys(&caller, pager.request()).await?;
    Ok(Json(pager.respond(page)?))
}

/// `POST /v1/keys/`.
pub async fn add_key(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<KeyRequest>,
) -> ApiResult<(StatusCode, Json<Key>)> {
    Ok((
        StatusCode::CREATED,
        Json(state.add_key(&caller, &body).await?),
    ))
}

/// `GET /v1/keys/<id>/`.
pub async fn get_key(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Key>> {
    Ok(Json(state.get_key(&caller, &id).await?))
}

/// `DELETE /v1/keys/<id>/`.
pub async fn remove_key(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    state.remove_key(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/certs/`.
pub async fn list_certs(
    State(state): State<AppState>,
    Caller(caller): Caller,
    pager: Pager,
) -> ApiResult<Json<Paginated<Certificate>>> {
    let page = state.list_certificates(&caller, pager.request()).await?;
    Ok(Json(pager.respond(page)?))
}

/// `POST /v1/certs/`.
pub async fn add_cert(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<CertificateRequest>,
) -> ApiResult<(StatusCode, Json<Certificate>)> {
    Ok((
        StatusCode::CREATED,
        Json(state.add_certificate(&caller, &body).await?),
    ))
}

/// `GET /v1/certs/<common_name>/`.
pub async fn get_cert(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(common_name): ApiPath<String>,
) -> ApiResult<Json<Certificate>> {
    Ok(Json(state.get_certificate(&caller, &common_name).await?))
}

/// `DELETE /v1/certs/<common_name>/`.
pub async fn remove_cert(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(common_name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    state.remove_certificate(&caller, &common_name).await?;
    Ok(StatusCode::NO_CONTENT)
}
