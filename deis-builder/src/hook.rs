//! The builder's side of the `pre-receive` hook: a unix-socket endpoint the hook sends the
//! pushed tree to, which builds it, hands the result to the controller and streams the
//! output back, ending with a `deis-build-result: ok|failed` line.

use crate::git::PushContext;
use crate::pipeline::{BuildOutput, BuildRequest, Builder};
use crate::slug;
use crate::BuildError;
use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixListener;
use tokio::sync::mpsc;

/// What the builder needs from the controller during a push.
#[async_trait]
pub trait PushHandler: std::fmt::Debug + Send + Sync + 'static {
    /// Records the push (an audit record) and returns the app's config values for the
    /// build. An error rejects the push with that message.
    async fn begin(
        &self,
        push: &PushContext,
        sha: &str,
    ) -> Result<BTreeMap<String, String>, String>;
    /// Records the build, makes the release and rolls it out. Returns lines to show the
    /// pusher (e.g. `done, go:v3 deployed`). An error rejects the push.
    async fn deploy(
        &self,
        push: &PushContext,
        sha: &str,
        output: &BuildOutput,
    ) -> Result<Vec<String>, String>;
}

/// The unix-socket endpoint the `pre-receive` hook talks to.
#[derive(Debug)]
pub struct HookServer {
    socket: PathBuf,
    builder: Builder,
    handler: Arc<dyn PushHandler>,
    tickets: Mutex<HashMap<String, PushContext>>,
    building: Mutex<HashSet<String>>,
}

/// Proof that a push was authorised by a transport; valid while the git process lives.
#[derive(Debug)]
pub struct PushTicket {
    secret: String,
    server: Arc<HookServer>,
}

impl PushTicket {
    /// The secret the hook presents.
    pub fn secret(&self) -> &str {
        &self.secret
    }
}

impl Drop for PushTicket {
    fn drop(&mut self) {
        self.server.lock_tickets().remove(&self.secret);
    }
}

struct AppLock<'a> {
    server: &'a HookServer,
    app: String,
}

impl Drop for AppLock<'_> {
    fn drop(&mut self) {
        self.server
            .building
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.app);
    }
}

impl HookServer {
    /// Listens on `socket` (replacing a stale socket file, mode 0600) and serves hook calls.
    pub async fn start(
        socket: impl Into<PathBuf>,
        builder: Builder,
        handler: Arc<dyn PushHandler>,
    ) -> Result<Arc<HookServer>, BuildError> {
        let socket = socket.into();
        if let Some(parent) = socket.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(BuildError::io("creating the socket directory"))?;
        }
        let _ = tokio::fs::remove_file(&socket).await;
        let listener =
            UnixListener::bind(&socket).map_err(BuildError::io("binding the builder socket"))?;
        {
            use std::os::unix::fs::PermissionsExt;
            tokio::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))
                .await
                .map_err(BuildError::io("securing the builder socket"))?;
        }
        let server = Arc::new(HookServer {
            socket,
            builder,
            handler,
            tickets: Mutex::new(HashMap::new()),
            building: Mutex::new(HashSet::new()),
        });
        let weak = Arc::downgrade(&server);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let Some(server) = weak.upgrade() else {
                    return;
                };
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let server = server.clone();
                        async move { Ok::<_, Infallible>(server.handle(request).await) }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        Ok(server)
    }

    /// The builder that builds the pushes.
    pub fn builder(&self) -> &Builder {
        &self.builder
    }

    /// The socket path the hook connects to.
    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    fn lock_tickets(&self) -> std::sync::MutexGuard<'_, HashMap<String, PushContext>> {
        self.tickets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Issues a ticket for an authorised push.
    pub fn issue(self: &Arc<Self>, context: PushContext) -> Result<PushTicket, BuildError> {
        let secret = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        self.lock_tickets().insert(secret.clone(), context);
        Ok(PushTicket {
            secret,
            server: self.clone(),
        })
    }

    fn lock_app(&self, app: &str) -> Option<AppLock<'_>> {
        let mut building = self.building.lock().unwrap_or_else(|e| e.into_inner());
        if !building.insert(app.to_string()) {
            return None;
        }
        Some(AppLock {
            server: self,
            app: app.to_string(),
        })
    }

    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Response<BoxBody> {
        if request.uri().path() != "/push" || request.method() != hyper::Method::POST {
            return plain(StatusCode::NOT_FOUND, "not found\n");
        }
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let context = header("x-deis-push-ticket")
            .and_then(|secret| self.lock_tickets().get(&secret).cloned());
        let Some(context) = context else {
            return plain(
                StatusCode::FORBIDDEN,
                "deis: this push was not authorised\ndeis-build-result: failed\n",
            );
        };
        let sha = header("x-deis-sha").unwrap_or_default();
        let (sender, receiver) = mpsc::channel::<Bytes>(64);
        let body = request.into_body();
        tokio::spawn(async move {
            let ok = self.run_push(&context, &sha, body, &sender).await;
            let last = if ok {
                "deis-build-result: ok\n"
            } else {
                "deis-build-result: failed\n"
            };
            let _ = sender.send(Bytes::from(last)).await;
        });
        let stream = futures::stream::unfold(receiver, |mut receiver| async move {
            receiver
                .recv()
                .await
                .map(|bytes| (Ok::<_, Infallible>(Frame::data(bytes)), receiver))
        });
        Response::builder()
            .header("content-type", "text/plain")
            .body(StreamBody::new(stream).boxed())
            .expect("a valid response")
    }

    /// Builds and deploys one push, streaming lines to `out`; returns whether it succeeded.
    async fn run_push(
        &self,
        context: &PushContext,
        sha: &str,
        body: Incoming,
        out: &mpsc::Sender<Bytes>,
    ) -> bool {
        let say = |line: String| async move {
            let _ = out.send(Bytes::from(format!("{line}\n"))).await;
        };
        let Some(_lock) = self.lock_app(&context.app) else {
            say(format!(
                "deis: another git push is ongoing for {}; try again when it is done",
                context.app
            ))
            .await;
            return false;
        };
        let env = match self.handler.begin(context, sha).await {
            Ok(env) => env,
            Err(message) => {
                say(format!("deis: {message}")).await;
                return false;
            }
        };
        say(format!("-----> Building {} at {}", context.app, short(sha))).await;
        let work = self.builder.settings().data_dir.join("tmp").join(format!(
            "push-{}-{}",
            context.app,
            uuid::Uuid::new_v4().simple()
        ));
        let result = self.build_in(&work, context, sha, env, body, out).await;
        let _ = tokio::fs::remove_dir_all(&work).await;
        let output = match result {
            Ok(output) => output,
            Err(error) => {
                say(format!("deis: build failed: {error}")).await;
                return false;
            }
        };
        match self.handler.deploy(context, sha, &output).await {
            Ok(lines) => {
                for line in lines {
                    say(line).await;
                }
                true
            }
            Err(message) => {
                say(format!("deis: deploy failed: {message}")).await;
                // No release names this slug; keep the store from filling with orphans. An
                // image is kept: its tag may be the one the running release uses (the same
                // commit pushed again).
                if !output.dockerfile {
                    if let Err(error) = self.builder.slugs().delete(&output.slug).await {
                        tracing::warn!(app = %context.app, %error, "could not delete an unused slug");
                    }
                }
                false
            }
        }
    }

    async fn build_in(
        &self,
        work: &Path,
        context: &PushContext,
        sha: &str,
        env: BTreeMap<String, String>,
        mut body: Incoming,
        out: &mpsc::Sender<Bytes>,
    ) -> Result<BuildOutput, BuildError> {
        let limits = self.builder.settings().limits;
        tokio::fs::create_dir_all(work)
            .await
            .map_err(BuildError::io("creating the build directory"))?;
        let archive = work.join("source.tar");
        let mut file = tokio::fs::File::create(&archive)
            .await
            .map_err(BuildError::io("receiving the source"))?;
        let mut received = 0u64;
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|e| BuildError::Rejected(format!("receiving the source: {e}")))?;
            if let Ok(data) = frame.into_data() {
                received += data.len() as u64;
                if received > limits.max_total_bytes {
                    return Err(BuildError::Rejected(format!(
                        "the pushed tree is larger than {} bytes",
                        limits.max_total_bytes
                    )));
                }
                file.write_all(&data)
                    .await
                    .map_err(BuildError::io("receiving the source"))?;
            }
        }
        file.flush()
            .await
            .map_err(BuildError::io("receiving the source"))?;
        drop(file);
        let source = work.join("app");
        let (from, to) = (archive.clone(), source.clone());
        tokio::task::spawn_blocking(move || slug::unpack_tar(&from, &to))
            .await
            .map_err(|e| BuildError::Rejected(format!("unpacking failed: {e}")))??;
        let (log, mut lines) = mpsc::channel::<String>(256);
        let forward_out = out.clone();
        let forward = tokio::spawn(async move {
            while let Some(line) = lines.recv().await {
                let _ = forward_out.send(Bytes::from(format!("{line}\n"))).await;
            }
        });
        let request = BuildRequest {
            app: context.app.clone(),
            sha: sha.to_string(),
            source_dir: source,
            env,
        };
        let result = self.builder.build(&request, &log).await;
        drop(log);
        let _ = forward.await;
        result
    }
}

type BoxBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

fn plain(status: StatusCode, text: &'static str) -> Response<BoxBody> {
    Response::builder()
        .status(status)
        .body(Full::new(Bytes::from(text)).boxed())
        .expect("a valid response")
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(7)]
}
