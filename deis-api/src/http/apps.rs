//! Handlers of `/v1/apps/` and the app's processes, domains and permissions.

use super::errors::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath, Caller};
use super::pagination::Pager;
use super::AppState;
use crate::controller::ServiceError;
use crate::wire::{
    Container, CreateAppRequest, DomainRequest, Paginated, PermsResponse, RunCommandRequest,
    TransferRequest, UsernameRequest,
};
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use deis_core::model::{App, Domain};

/// The default and the largest `log_lines`.
const LOG_LINES_DEFAULT: usize = 100;
const LOG_LINES_MAX: usize = 10_000;

/// `GET /v1/apps/`.
pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    pager: Pager,
) -> ApiResult<Json<Paginated<App>>> {
    let page = state.list_apps(&caller, pager.request()).await?;
    Ok(Json(pager.respond(page)?))
}

/// `POST /v1/apps/`.
pub async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<CreateAppRequest>,
) -> ApiResult<(StatusCode, Json<App>)> {
    let app = state.create_app(&caller, body.id.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(app)))
}

/// `GET /v1/apps/<id>/`.
pub async fn show(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<App>> {
    Ok(Json(state.get_app(&caller, &id).await?))
}

/// `POST /v1/apps/<id>/`: transfer.
pub async fn transfer(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<TransferRequest>,
) -> ApiResult<Json<App>> {
    Ok(Json(state.transfer_app(&caller, &id, &body.owner).await?))
}

/// `DELETE /v1/apps/<id>/`.
pub async fn destroy(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    state.destroy_app(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/apps/<id>/scale/`.
pub async fn scale(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult<StatusCode> {
    state.scale(&caller, &id, &body).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/apps/<id>/logs/?log_lines=N`: `text/plain`, 204 when there are none. With
/// `&follow=true` the answer streams (chunked) the tail and then every new line until the
/// client hangs up (`deis logs -f`).
pub async fn logs(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let query = query.unwrap_or_default();
    let requested = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "log_lines")
        .map(|(_, v)| v.into_owned());
    let follow = url::form_urlencoded::parse(query.as_bytes())
        .any(|(k, v)| k == "follow" && matches!(v.as_ref(), "1" | "true" | "yes"));
    let lines = match requested {
        None => LOG_LINES_DEFAULT,
        Some(text) => match text.trim().parse::<usize>() {
            Ok(n) if (1..=LOG_LINES_MAX).contains(&n) => n,
            _ => {
                return Err(ApiError::Service(ServiceError::field(
                    "log_lines",
                    "invalid",
                    format!("log_lines must be an integer from 1 to {LOG_LINES_MAX}."),
                )))
            }
        },
    };
    if follow {
        use futures::StreamExt;
        let lines = state.follow_logs(&caller, &id, lines).await?;
        let body =
            lines.map(|line| Ok::<_, std::convert::Infallible>(bytes::Bytes::from(line + "\n")));
        return Ok((
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            axum::body::Body::from_stream(body),
        )
            .into_response());
    }
    Ok(match state.logs(&caller, &id, lines).await? {
        None => StatusCode::NO_CONTENT.into_response(),
        Some(text) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response(),
    })
}

/// `POST /v1/apps/<id>/run/`: `[exit code, "output"]`.
pub async fn run(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<RunCommandRequest>,
) -> ApiResult<Json<(i32, String)>> {
    Ok(Json(state.run_command(&caller, &id, &body.command).await?))
}

fn parse_num(num: &str) -> Result<u32, ApiError> {
    num.parse::<u32>().map_err(|_| ApiError::RouteNotFound)
}

/// `GET /v1/apps/<id>/containers/`.
pub async fn containers(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
    pager: Pager,
) -> ApiResult<Json<Paginated<Container>>> {
    let all = state.containers(&caller, &id, None, None).await?;
    Ok(Json(pager.respond(pager.request().slice(&all))?))
}

/// `GET /v1/apps/<id>/containers/<type>/`.
pub async fn containers_of_type(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath((id, process_type)): ApiPath<(String, String)>,
    pager: Pager,
) -> ApiResult<Json<Paginated<Container>>> {
    let all = state
        .containers(&caller, &id, Some(&process_type), None)
        .await?;
    Ok(Json(pager.respond(pager.request().slice(&all))?))
}

/// `GET /v1/apps/<id>/containers/<type>/<num>/`.
pub async fn container(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath((id, process_type, num)): ApiPath<(String, String, String)>,
) -> ApiResult<Json<Container>> {
    let num = parse_num(&num)?;
    state
        .containers(&caller, &id, Some(&process_type), Some(num))
        .await?
        .into_iter()
        .next()
        .map(Json)
        .ok_or_else(|| {
            ApiError::Service(ServiceError::NotFound(format!(
                "container not found: {process_type}.{num}"
            )))
        })
}

/// `POST /v1/apps/<id>/containers/restart/`.
pub async fn restart_all(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<Container>>> {
    Ok(Json(state.restart(&caller, &id, None, None).await?))
}

/// `POST /v1/apps/<id>/containers/<type>/restart/`.
pub async fn restart_type(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath((id, process_type)): ApiPath<(String, String)>,
) -> ApiResult<Json<Vec<Container>>> {
    Ok(Json(
        state
            .restart(&caller, &id, Some(&process_type), None)
            .await?,
    ))
}

/// `POST /v1/apps/<id>/containers/<type>/<num>/restart/`.
pub async fn restart_one(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath((id, process_type, num)): ApiPath<(String, String, String)>,
) -> ApiResult<Json<Vec<Container>>> {
    let num = parse_num(&num)?;
    Ok(Json(
        state
            .restart(&caller, &id, Some(&process_type), Some(num))
            .await?,
    ))
}

/// `GET /v1/apps/<id>/domains/`.
pub async fn list_domains(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
    pager: Pager,
) -> ApiResult<Json<Paginated<Domain>>> {
    let page = state.list_domains(&caller, &id, pager.request()).await?;
    Ok(Json(pager.respond(page)?))
}

/// `POST /v1/apps/<id>/domains/`.
pub async fn add_domain(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<DomainRequest>,
) -> ApiResult<(StatusCode, Json<Domain>)> {
    let domain = state.add_domain(&caller, &id, &body.domain).await?;
    Ok((StatusCode::CREATED, Json(domain)))
}

/// `DELETE /v1/apps/<id>/domains/<domain>/`.
pub async fn remove_domain(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath((id, domain)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    state.remove_domain(&caller, &id, &domain).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/apps/<id>/perms/`.
pub async fn list_perms(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<PermsResponse>> {
    Ok(Json(state.list_perms(&caller, &id).await?))
}

/// `POST /v1/apps/<id>/perms/`.
pub async fn grant_perm(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UsernameRequest>,
) -> ApiResult<StatusCode> {
    state.grant_perm(&caller, &id, &body.username).await?;
    Ok(StatusCode::CREATED)
}

/// `DELETE /v1/apps/<id>/perms/<username>/`.
pub async fn revoke_perm(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath((id, username)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    state.revoke_perm(&caller, &id, &username).await?;
    Ok(StatusCode::NO_CONTENT)
}
