//! The test harness: a controller over the store the test binary was built for (see
//! [`StoreBackend`]) and in-memory scheduler, discovery and logs, driven with `oneshot`.

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use deis_api::secrets::PasswordCost;
use deis_api::{Controller, MemoryLogs, Settings};
use deis_core::memory::{MemoryDiscovery, MemoryScheduler, MemoryStore};
use deis_core::model::Instance;
use deis_core::scheduler::{
    AppSpec, InstanceEvent, InstanceSelector, RunOutcome, RunRequest, Scheduler,
};
use deis_core::Store;
use futures::stream::BoxStream;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt;

pub const BUILDER_KEY: &str = "builder-secret-key";
pub const DOMAIN: &str = "example.test";
pub const SSH_KEY_ALICE: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICQk0Hl1OOHHiTlKWBZdF1xSiyAGxogZUv+a1h+q9tF7 alice@laptop";
pub const SSH_KEY_BOB: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJxutID/nTfIBwenWqRjK/z/c9GfGltgEJbYzNkDOk77 bob@desk";
pub const CERT: &str = include_str!("fixtures/www.crt");
pub const CERT_KEY: &str = include_str!("fixtures/www.key");
pub const WILDCARD_CERT: &str = include_str!("fixtures/wild.crt");
pub const WILDCARD_KEY: &str = include_str!("fixtures/wild.key");

/// A scheduler over `MemoryScheduler` that can be told to fail or stall, records every
/// spec it is asked to apply, and runs one-off commands by echoing them.
#[derive(Debug, Default)]
pub struct TestScheduler {
    pub inner: MemoryScheduler,
    pub fail_apply: AtomicBool,
    pub stall_apply: AtomicBool,
    pub applied: Mutex<Vec<AppSpec>>,
    pub runs: AtomicU64,
    /// Behave as the local scheduler: slugs only, no container images.
    pub slugs_only: AtomicBool,
}

#[async_trait]
impl Scheduler for TestScheduler {
    fn backend(&self) -> &'static str {
        "test"
    }

    fn runs_images(&self) -> bool {
        !self.slugs_only.load(Ordering::SeqCst)
    }

    async fn apply(&self, spec: &AppSpec) -> deis_core::Result<Vec<Instance>> {
        // A real scheduler awaits I/O here; let concurrent requests interleave.
        tokio::task::yield_now().await;
        if self.stall_apply.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        if self.fail_apply.load(Ordering::SeqCst) {
            return Err(deis_core::Error::Unavailable {
                backend: "test",
                message: "instances never became healthy".into(),
            });
        }
        self.applied.lock().unwrap().push(spec.clone());
        self.inner.apply(spec).await
    }

    async fn instances(&self, app: &str) -> deis_core::Result<Vec<Instance>> {
        self.inner.instances(app).await
    }

    async fn restart(
        &self,
        app: &str,
        selector: &InstanceSelector,
    ) -> deis_core::Result<Vec<Instance>> {
        self.inner.restart(app, selector).await
    }

    async fn run(&self, request: &RunRequest) -> deis_core::Result<RunOutcome> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        Ok(RunOutcome {
            exit_code: 0,
            output: format!(
                "{} on v{}: {}\n",
                request.spec.app, request.spec.release, request.command
            ),
        })
    }

    async fn remove(&self, app: &str) -> deis_core::Result<()> {
        self.inner.remove(app).await
    }

    fn events(&self) -> BoxStream<'static, InstanceEvent> {
        self.inner.events()
    }
}

/// The store a test binary runs the suite on: the crate root names it (`tests/api/main.rs`
/// the in-memory store, `tests/api_sqlite.rs` SQLite), so the same tests and the same
/// snapshots cover both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)] // each test binary constructs one of them
pub enum StoreBackend {
    /// `MemoryStore`.
    Memory,
    /// `SqliteStore` on a new file in a temporary directory per harness.
    Sqlite,
}

/// A new, empty store of the suite's backend, and the directory that holds its files.
pub async fn new_store() -> (Arc<dyn Store>, Option<tempfile::TempDir>) {
    match crate::STORE {
        StoreBackend::Memory => (Arc::new(MemoryStore::new()), None),
        StoreBackend::Sqlite => {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let store = deis_store::SqliteStore::open(dir.path().join("deis.db"))
                .await
                .expect("a new SQLite store");
            (Arc::new(store), Some(dir))
        }
    }
}

pub fn settings() -> Settings {
    Settings {
        platform_domain: DOMAIN.into(),
        builder_key: Some(BUILDER_KEY.into()),
        password_cost: PasswordCost::MINIMAL_FOR_TESTS,
        apply_timeout: Duration::from_secs(10),
        ..Settings::default()
    }
}

pub struct Harness {
    pub controller: Arc<Controller>,
    pub router: Router,
    pub scheduler: Arc<TestScheduler>,
    pub discovery: Arc<MemoryDiscovery>,
    pub logs: Arc<MemoryLogs>,
    /// The SQLite store's directory, deleted when the harness is dropped.
    pub data_dir: Option<tempfile::TempDir>,
}

#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Harness {
    pub async fn new() -> Self {
        Self::with_settings(settings()).await
    }

    pub async fn with_settings(settings: Settings) -> Self {
        let (store, data_dir) = new_store().await;
        let scheduler = Arc::new(TestScheduler::default());
        let discovery = Arc::new(MemoryDiscovery::new());
        let logs = Arc::new(MemoryLogs::default());
        let controller = Arc::new(Controller::new(
            store,
            scheduler.clone(),
            discovery.clone(),
            logs.clone(),
            settings,
        ));
        Harness {
            router: deis_api::http::router(controller.clone()),
            controller,
            scheduler,
            discovery,
            logs,
            data_dir,
        }
    }

    pub async fn raw(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Resp {
        let mut request = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(uri)
            .header("host", "deis.example.test");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn call(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let auth = token.map(|t| format!("token {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(auth) = &auth {
            headers.push(("authorization", auth.as_str()));
        }
        let bytes = body
            .map(|b| serde_json::to_vec(&b).unwrap())
            .unwrap_or_default();
        self.raw(method, uri, &headers, bytes).await
    }

    pub async fn get(&self, uri: &str, token: &str) -> Resp {
        self.call("GET", uri, Some(token), None).await
    }

    pub async fn post(&self, uri: &str, token: &str, body: Value) -> Resp {
        self.call("POST", uri, Some(token), Some(body)).await
    }

    pub async fn delete(&self, uri: &str, token: &str) -> Resp {
        self.call("DELETE", uri, Some(token), None).await
    }

    pub async fn hook(&self, uri: &str, body: Value) -> Resp {
        let bytes = serde_json::to_vec(&body).unwrap();
        self.raw(
            "POST",
            uri,
            &[
                ("content-type", "application/json"),
                ("x-deis-builder-auth", BUILDER_KEY),
            ],
            bytes,
        )
        .await
    }

    /// Registers `name` (password `<name>-password`) and logs in; returns the token.
    pub async fn user(&self, name: &str) -> String {
        let r = self
            .call(
                "POST",
                "/v1/auth/register/",
                None,
                Some(json!({"username": name, "password": format!("{name}-password"), "email": format!("{name}@example.test")})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let r = self
            .call(
                "POST",
                "/v1/auth/login/",
                None,
                Some(json!({"username": name, "password": format!("{name}-password")})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.body["token"].as_str().unwrap().to_string()
    }

    pub async fn app(&self, token: &str, id: &str) {
        let r = self.post("/v1/apps/", token, json!({"id": id})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }

    /// Deploys an image with a Procfile of `web` and `worker`.
    pub async fn deploy(&self, token: &str, app: &str) -> Resp {
        let r = self
            .post(
                &format!("/v1/apps/{app}/builds/"),
                token,
                json!({"image": "deis/example-go:latest", "procfile": {"web": "./server", "worker": "./worker"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r
    }

    /// The standard cast: alice (admin, first user), bob owns `go`, carol collaborates on
    /// it, dave is an outsider.
    pub async fn cast() -> (Harness, Cast) {
        Self::cast_with(settings()).await
    }

    /// The standard cast on a platform with these settings.
    pub async fn cast_with(settings: Settings) -> (Harness, Cast) {
        let h = Harness::with_settings(settings).await;
        let alice = h.user("alice").await;
        let bob = h.user("bob").await;
        let carol = h.user("carol").await;
        let dave = h.user("dave").await;
        h.app(&bob, "go").await;
        let r = h
            .post("/v1/apps/go/perms/", &bob, json!({"username": "carol"}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        (
            h,
            Cast {
                alice,
                bob,
                carol,
                dave,
            },
        )
    }
}

pub struct Cast {
    pub alice: String,
    pub bob: String,
    pub carol: String,
    pub dave: String,
}

/// Replaces values that change from run to run (ids, times, tokens) with placeholders.
#[allow(dead_code)]
pub fn redact(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let redacted = match (k.as_str(), v) {
                        (_, Value::Null) => Value::Null,
                        ("uuid" | "config" | "build", Value::String(_)) => json!("[uuid]"),
                        (
                            "created" | "updated" | "date_joined" | "last_login",
                            Value::String(_),
                        ) => json!("[timestamp]"),
                        ("token", Value::String(_)) => json!("[token]"),
                        ("fingerprint", Value::String(s)) if s.is_empty() => json!(""),
                        _ => redact(v),
                    };
                    (k.clone(), redacted)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        Value::String(s) if s.len() == 36 && uuid::Uuid::parse_str(s).is_ok() => json!("[uuid]"),
        other => other.clone(),
    }
}
