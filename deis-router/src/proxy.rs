//! The request path: resolve the host, check the allow-list and limits, pick an endpoint,
//! forward (retrying a failed connect on another endpoint), and proxy upgrades.

use crate::balance::pick;
use crate::body::{ResponseBody, UpstreamBody};
use crate::config::RouterConfig;
use crate::headers::{set_forwarded, strip_hop_by_hop, upgrade_protocol};
use crate::metrics::Metrics;
use crate::table::{AppEntry, Compiled};
use crate::upstream::{self, PoolLimits, SendError};
use arc_swap::ArcSwap;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::{Body, Incoming};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// State shared by every connection of one router.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) table: Arc<ArcSwap<Compiled>>,
    pub(crate) config: RouterConfig,
    pub(crate) metrics: Metrics,
    pub(crate) hsts: Option<HeaderValue>,
}

impl Shared {
    pub(crate) fn pool_limits(&self) -> PoolLimits {
        PoolLimits {
            connect_timeout: self.config.connect_timeout,
            idle_timeout: self.config.pool_idle_timeout,
            max_idle: self.config.pool_max_idle_per_host,
        }
    }
}

/// What the proxy knows about the client's connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnInfo {
    /// The client: the peer address, or the PROXY header's source.
    pub(crate) client: SocketAddr,
    /// Whether the connection is TLS.
    pub(crate) https: bool,
    /// The port the client connected to.
    pub(crate) port: u16,
}

fn answer(status: StatusCode, text: &'static str) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::text(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn request_host<B>(req: &Request<B>) -> Option<&str> {
    req.uri()
        .authority()
        .map(|a| a.as_str())
        .or_else(|| req.headers().get(header::HOST)?.to_str().ok())
}

/// Serves one request of an app listener.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    conn: ConnInfo,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let compiled = shared.table.load_full();
    let host = request_host(&req).unwrap_or_default().to_string();
    let entry = compiled.lookup(&host).map(|(_, entry)| entry);
    let Some(entry) = entry else {
        let response = default_server(&req);
        shared
            .metrics
            .default_app()
            .record_status(response.status().as_u16());
        return Ok(response);
    };
    let conn = ConnInfo {
        https: conn.https || (shared.config.trust_forwarded_proto && forwarded_https(&req)),
        ..conn
    };
    let mut response = route(&shared, conn, entry, &host, req).await;
    if conn.https {
        if let Some(hsts) = &shared.hsts {
            response
                .headers_mut()
                .insert(header::STRICT_TRANSPORT_SECURITY, hsts.clone());
        }
    }
    entry.metrics.record_status(response.status().as_u16());
    Ok(response)
}

/// Whether the first `X-Forwarded-Proto` value is `https`.
fn forwarded_https<B>(req: &Request<B>) -> bool {
    req.headers()
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(',').next())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

/// Deis's default server: `/health-check` answers 200, anything else 404.
fn default_server<B>(req: &Request<B>) -> Response<ResponseBody> {
    let health = req.uri().path() == "/health-check"
        && (req.method() == Method::GET || req.method() == Method::HEAD);
    if health {
        answer(StatusCode::OK, "OK\n")
    } else {
        answer(StatusCode::NOT_FOUND, "no app answers at this host\n")
    }
}

async fn route(
    shared: &Shared,
    conn: ConnInfo,
    entry: &AppEntry,
    host: &str,
    mut req: Request<Incoming>,
) -> Response<ResponseBody> {
    if !entry.allow.allows(conn.client.ip()) {
        return answer(StatusCode::FORBIDDEN, "forbidden\n");
    }
    if shared.config.redirect_to_https && !conn.https {
        return redirect(host, req.uri(), shared.config.https_port);
    }
    if entry.endpoints.is_empty() {
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "the app has no running instance\n",
        );
    }
    if let Some(limit) = shared.config.max_body_size {
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let hinted = req.body().size_hint().lower();
        if declared.unwrap_or(0) > limit || hinted > limit {
            return answer(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n");
        }
    }
    let upgrade = match req.version() {
        Version::HTTP_11 => upgrade_protocol(req.headers()),
        _ => None,
    };
    let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));
    let (parts, body) = req.into_parts();
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers);
    if let Some(protocol) = &upgrade {
        headers.insert(header::UPGRADE, protocol.clone());
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
    match HeaderValue::from_str(host) {
        Ok(value) => headers.insert(header::HOST, value),
        Err(_) => return answer(StatusCode::BAD_REQUEST, "bad host\n"),
    };
    set_forwarded(&mut headers, conn.client.ip(), conn.https, conn.port);
    let path = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
    let body = UpstreamBody::new(body, shared.config.max_body_size);
    let forward = Forward {
        method: parts.method,
        path,
        headers,
        body,
    };
    let response = forward.send(shared, entry, upgrade.is_some()).await;
    let mut response = match response {
        Ok(response) => response,
        Err(status) => return error_answer(status),
    };
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(client_upgrade) = client_upgrade {
            let upstream_upgrade = hyper::upgrade::on(&mut response);
            tokio::spawn(async move {
                let (client, upstream) = match tokio::join!(client_upgrade, upstream_upgrade) {
                    (Ok(client), Ok(upstream)) => (client, upstream),
                    (client, upstream) => {
                        tracing::debug!(client = ?client.err(), upstream = ?upstream.err(), "upgrade failed");
                        return;
                    }
                };
                let mut client = TokioIo::new(client);
                let mut upstream = TokioIo::new(upstream);
                if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await
                {
                    tracing::debug!(%error, "upgraded connection ended");
                }
            });
            let (parts, _) = response.into_parts();
            return Response::from_parts(parts, ResponseBody::text(""));
        }
    }
    strip_hop_by_hop(response.headers_mut());
    response
}

fn error_answer(status: StatusCode) -> Response<ResponseBody> {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => answer(status, "request body too large\n"),
        StatusCode::GATEWAY_TIMEOUT => answer(status, "the app did not answer in time\n"),
        _ => answer(StatusCode::BAD_GATEWAY, "the app could not be reached\n"),
    }
}

fn redirect(host: &str, uri: &Uri, https_port: u16) -> Response<ResponseBody> {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    match https_location(host, path, https_port) {
        Some(location) => {
            let mut response = answer(StatusCode::MOVED_PERMANENTLY, "moved to https\n");
            if let Ok(location) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
        None => answer(StatusCode::BAD_REQUEST, "bad host\n"),
    }
}

/// The https URL of `host` (its port replaced by `https_port`, left out when 443) and
/// `path`; `None` when that is no valid header value.
pub(crate) fn https_location(host: &str, path: &str, https_port: u16) -> Option<String> {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if !name.is_empty() && !port.contains(']') => name,
        _ => host,
    };
    let location = if https_port == 443 {
        format!("https://{name}{path}")
    } else {
        format!("https://{name}:{https_port}{path}")
    };
    HeaderValue::from_str(&location).is_ok().then_some(location)
}

/// One request on its way upstream, possibly tried on several endpoints.
struct Forward {
    method: Method,
    path: http::uri::PathAndQuery,
    headers: HeaderMap,
    body: UpstreamBody,
}

impl Forward {
    async fn send(
        mut self,
        shared: &Shared,
        entry: &AppEntry,
        upgrade: bool,
    ) -> Result<Response<ResponseBody>, StatusCode> {
        let attempts = shared.config.connect_attempts.clamp(1, 64);
        let mut tried = 0u64;
        for attempt in 0..attempts {
            let Some(index) = pick(&entry.endpoints, &entry.cursor, tried) else {
                break;
            };
            tried |= 1 << index.min(63);
            let endpoint = &entry.endpoints[index];
            let mut request = Request::new(self.body.clone());
            *request.method_mut() = self.method.clone();
            *request.uri_mut() = Uri::from(self.path.clone());
            *request.version_mut() = Version::HTTP_11;
            // The headers are copied only while another endpoint may still be tried.
            let last_try = attempt + 1 >= attempts.min(entry.endpoints.len());
            *request.headers_mut() = if last_try {
                std::mem::take(&mut self.headers)
            } else {
                self.headers.clone()
            };
            let guard = endpoint.start();
            let started = Instant::now();
            let limits = shared.pool_limits();
            let sent = tokio::time::timeout(shared.config.response_header_timeout, async {
                if upgrade {
                    let response = upstream::send_upgrade(endpoint, limits, request).await?;
                    let (parts, body) = response.into_parts();
                    Ok(Response::from_parts(
                        parts,
                        ResponseBody::Upstream(body, Some(guard)),
                    ))
                } else {
                    let response = upstream::send(endpoint, limits, request, guard).await?;
                    let (parts, body) = response.into_parts();
                    Ok(Response::from_parts(parts, ResponseBody::Pooled(body)))
                }
            })
            .await;
            match sent {
                Ok(Ok(response)) => {
                    entry.metrics.record_latency(started.elapsed());
                    return Ok(response);
                }
                Ok(Err(error)) => {
                    if self.body.too_large() {
                        return Err(StatusCode::PAYLOAD_TOO_LARGE);
                    }
                    let retry = matches!(error, SendError::Connect(_)) && self.body.reusable();
                    tracing::debug!(endpoint = %endpoint.address, %error, retry, "upstream request failed");
                    if !retry {
                        return Err(StatusCode::BAD_GATEWAY);
                    }
                    if attempt + 1 < attempts {
                        shared.metrics.connect_retry();
                    }
                }
                Err(_elapsed) => {
                    tracing::debug!(endpoint = %endpoint.address, "upstream response timed out");
                    return Err(StatusCode::GATEWAY_TIMEOUT);
                }
            }
        }
        Err(StatusCode::BAD_GATEWAY)
    }
}

/// Serves one request of the admin listener: `/metrics` and `/health-check`.
pub(crate) async fn admin(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let response = match req.uri().path() {
        "/metrics" if req.method() == Method::GET => {
            let mut response = Response::new(ResponseBody::text(shared.metrics.render()));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        "/health-check" => answer(StatusCode::OK, "OK\n"),
        _ => answer(StatusCode::NOT_FOUND, "not found\n"),
    };
    Ok(response)
}
