//! Handlers of `/v1/auth/`, `/v1/users/`, `/v1/admin/perms/` and the root checks.

use super::errors::ApiResult;
use super::extract::{ApiJson, ApiPath, Caller, MaybeCaller};
use super::pagination::Pager;
use super::AppState;
use crate::wire::{
    AdminPerm, CancelRequest, LoginRequest, Paginated, PasswdRequest, RegisterRequest,
    StatusResponse, TokenResponse, TokensRequest, UsernameRequest,
};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use deis_core::model::User;

/// `GET /healthz`.
pub async fn healthz() -> &'static str {
    "OK"
}

/// `GET /v1/`: 401 without a token (the Deis CLI's login check), `{}` with one.
pub async fn root(Caller(_): Caller) -> Json<serde_json::Value> {
    Json(serde_json::json!({}))
}

/// `POST /v1/auth/register/`.
pub async fn register(
    State(state): State<AppState>,
    MaybeCaller(caller): MaybeCaller,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<User>)> {
    let user = state.register(caller.as_ref(), &body).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// `POST /v1/auth/login/`.
pub async fn login(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<LoginRequest>,
) -> ApiResult<Json<TokenResponse>> {
    let token = state.login(&body.username, &body.password).await?;
    Ok(Json(TokenResponse { token }))
}

/// `DELETE /v1/auth/cancel/`.
pub async fn cancel(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<CancelRequest>,
) -> ApiResult<StatusCode> {
    state.cancel(&caller, &body).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/auth/passwd/`.
pub async fn passwd(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<PasswdRequest>,
) -> ApiResult<Json<StatusResponse>> {
    state.passwd(&caller, &body).await?;
    Ok(Json(StatusResponse {
        status: "password set".into(),
    }))
}

/// `POST /v1/auth/tokens/`.
pub async fn tokens(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<TokensRequest>,
) -> ApiResult<Response> {
    Ok(match state.regenerate_token(&caller, &body).await? {
        Some(token) => Json(TokenResponse { token }).into_response(),
        None => StatusCode::OK.into_response(),
    })
}

/// `GET /v1/users/`.
pub async fn list_users(
    State(state): State<AppState>,
    Caller(caller): Caller,
    pager: Pager,
) -> ApiResult<Json<Paginated<User>>> {
    let page = state.list_users(&caller, pager.request()).await?;
    Ok(Json(pager.respond(page)?))
}

/// `GET /v1/admin/perms/`.
pub async fn list_admins(
    State(state): State<AppState>,
    Caller(caller): Caller,
    pager: Pager,
) -> ApiResult<Json<Paginated<AdminPerm>>> {
    let page = state.list_admins(&caller, pager.request()).await?;
    Ok(Json(pager.respond(page)?))
}

/// `POST /v1/admin/perms/`.
pub async fn grant_admin(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<UsernameRequest>,
) -> ApiResult<StatusCode> {
    state.set_admin(&caller, &body.username, true).await?;
    Ok(StatusCode::CREATED)
}

/// `DELETE /v1/admin/perms/<username>/`.
pub async fn revoke_admin(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(username): ApiPath<String>,
) -> ApiResult<StatusCode> {
    state.set_admin(&caller, &username, false).await?;
    Ok(StatusCode::NO_CONTENT)
}
