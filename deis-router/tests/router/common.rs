//! Helpers: echo upstreams, tables, a router on port 0, curl.

use bytes::Bytes;
use deis_core::route::{AppRoute, RouteTable};
use deis_core::Router;
use deis_router::{BuiltinRouter, ListenerKind, ListenerOptions, Listening, RouterConfig};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;

pub const DOMAIN: &str = "example.test";

/// A test upstream answering JSON: which backend answered, the path, the headers it saw.
pub struct Upstream {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    pub fn address(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn echo(
    name: String,
    delay: Duration,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    tokio::time::sleep(delay).await;
    let path = req.uri().path().to_string();
    if let Some(ms) = path.strip_prefix("/sleep/") {
        let ms: u64 = ms.parse().unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let mut headers = serde_json::Map::new();
    for (name, value) in req.headers() {
        let entry = headers
            .entry(name.as_str().to_string())
            .or_insert_with(|| Value::Array(vec![]));
        if let Value::Array(values) = entry {
            values.push(Value::String(value.to_str().unwrap_or("").to_string()));
        }
    }
    let version = format!("{:?}", req.version());
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().len())
        .unwrap_or(0);
    let reply = json!({
        "backend": name,
        "path": path,
        "version": version,
        "headers": headers,
        "body_len": body,
    });
    let mut response = Response::new(Full::new(Bytes::from(reply.to_string())));
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    response
        .headers_mut()
        .insert("x-backend", name.parse().unwrap());
    Ok(response)
}

/// Starts an HTTP/1.1 echo upstream called `name` on 127.0.0.1:0.
pub async fn upstream(name: &str) -> Upstream {
    slow_upstream(name, Duration::ZERO).await
}

/// An echo upstream that waits `delay` before every answer.
pub async fn slow_upstream(name: &str, delay: Duration) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let name = name.to_string();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let name = name.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| echo(name.clone(), delay, req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Upstream { addr, task }
}

/// An address where nothing listens (connect is refused).
pub async fn dead_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr.to_string()
}

/// A table on [`DOMAIN`] with the given apps and their endpoints.
pub fn table(revision: u64, apps: &[(&str, &[String])]) -> RouteTable {
    let mut table = RouteTable {
        revision,
        platform_domain: Some(DOMAIN.to_string()),
        ..RouteTable::default()
    };
    for (app, endpoints) in apps {
        let mut route = AppRoute::default();
        for (i, endpoint) in endpoints.iter().enumerate() {
            route
                .endpoints
                .insert(format!("{app}_v1.web.{}", i + 1), endpoint.clone());
        }
        table.apps.insert(app.to_string(), route);
    }
    table
}

/// A router with `config` and one http listener on 127.0.0.1:0.
pub async fn router(config: RouterConfig) -> (BuiltinRouter, Listening) {
    let router = BuiltinRouter::new(config).unwrap();
    let listening = router
        .listen(ListenerOptions::new(
            ListenerKind::Http,
            "127.0.0.1:0".parse().unwrap(),
        ))
        .await
        .unwrap();
    (router, listening)
}

/// A router applying `table`, with one http listener.
pub async fn router_with(table: &RouteTable) -> (BuiltinRouter, Listening) {
    let (router, listening) = router(RouterConfig::default()).await;
    router.apply(table).await.unwrap();
    (router, listening)
}

/// A reqwest client that resolves every name under [`DOMAIN`] used here to `addr`.
pub fn client(addr: SocketAddr, hosts: &[&str]) -> reqwest::Client {
    let mut builder = reqwest::Client::builder().no_proxy();
    for host in hosts {
        builder = builder.resolve(host, addr);
    }
    builder.build().unwrap()
}

/// Runs curl with `args`; returns (HTTP status, body). `-s` and a status trailer are added.
pub async fn curl(args: &[&str]) -> (u16, String) {
    let output = tokio::process::Command::new("curl")
        .args(["-s", "--max-time", "10", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .await
        .expect("running curl");
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (status.trim().parse().unwrap_or(0), body.to_string())
}

/// The JSON an echo upstream answered.
pub fn echoed(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not echo JSON ({e}): {body}"))
}

/// The first value of `header` the upstream saw.
pub fn seen_header(reply: &Value, header: &str) -> Option<String> {
    reply["headers"][header][0].as_str().map(str::to_string)
}
