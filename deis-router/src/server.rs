//! Listeners: accept, read an optional PROXY header, terminate TLS, serve HTTP/1.1 and
//! HTTP/2 (with upgrades), and shut down gracefully.

use crate::config::ListenerKind;
use crate::fast::{self, Rewind};
use crate::proxy::{self, ConnInfo, Shared};
use crate::proxy_protocol::{read_header, ProxyHeader};
use bytes::BytesMut;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// A running listener. Dropping it leaves it running; call [`Listening::shutdown`] to stop.
#[derive(Debug)]
pub struct Listening {
    local_addr: SocketAddr,
    kind: ListenerKind,
    stop: watch::Sender<Option<Duration>>,
    task: JoinHandle<()>,
}

impl Listening {
    /// The bound address (the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// What this listener serves.
    pub fn kind(&self) -> ListenerKind {
        self.kind
    }

    /// Stops accepting, lets requests in flight finish for up to `grace`, then closes the
    /// connections that are left. Upgraded (WebSocket) tunnels are not cut.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(Some(grace));
        let _ = self.task.await;
    }
}

/// Everything one accept loop needs.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub(crate) shared: Arc<Shared>,
    pub(crate) kind: ListenerKind,
    pub(crate) proxy_protocol: bool,
    pub(crate) tls: Option<TlsAcceptor>,
    pub(crate) builder: Arc<auto::Builder<TokioExecutor>>,
}

/// The HTTP server settings shared by every connection.
pub(crate) fn http_builder(header_read_timeout: Duration) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    builder
}

pub(crate) fn spawn(listener: TcpListener, endpoint: Endpoint) -> std::io::Result<Listening> {
    let local_addr = listener.local_addr()?;
    let (stop, stop_rx) = watch::channel(None);
    let kind = endpoint.kind;
    let task = tokio::spawn(accept_loop(listener, endpoint, stop_rx));
    Ok(Listening {
        local_addr,
        kind,
        stop,
        task,
    })
}

async fn accept_loop(
    listener: TcpListener,
    endpoint: Endpoint,
    mut stop: watch::Receiver<Option<Duration>>,
) {
    let graceful = GracefulShutdown::new();
    let (force, force_rx) = watch::channel(false);
    // Tells connections on the HTTP/1.1 fast path to stop taking requests (hyper's ones
    // hear it from `graceful`).
    let (draining, draining_rx) = watch::channel(false);
    // Once the `Listening` handle is dropped nobody can stop the listener: keep serving.
    let mut detached = false;
    let grace = loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let endpoint = endpoint.clone();
                    let watcher = graceful.watcher();
                    let force = force_rx.clone();
                    let draining = draining_rx.clone();
                    tokio::spawn(async move {
                        tokio::select! {
                            () = connection(stream, peer, endpoint, watcher, draining) => {}
                            _ = wait_true(force) => {}
                        }
                    });
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            changed = stop.changed(), if !detached => match changed {
                Ok(()) => break (*stop.borrow()).unwrap_or_default(),
                Err(_) => detached = true,
            },
        }
    };
    drop(listener);
    let _ = draining.send(true);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("grace period over; closing the remaining connections");
    }
    let _ = force.send(true);
}

async fn wait_true(mut flag: watch::Receiver<bool>) {
    while !*flag.borrow() {
        if flag.changed().await.is_err() {
            // The listener is gone without a forced close; never fire.
            std::future::pending::<()>().await;
        }
    }
}

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    endpoint: Endpoint,
    watcher: Watcher,
    draining: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr().map_or(0, |a| a.port());
    let header_timeout = endpoint.shared.config.header_read_timeout;
    let (client, port) = if endpoint.proxy_protocol {
        match tokio::time::timeout(header_timeout, read_header(&mut stream)).await {
            Ok(Ok(ProxyHeader::Proxied {
                source,
                destination,
            })) => (source, destination.port()),
            Ok(Ok(ProxyHeader::Local)) => (peer, local),
            Ok(Err(error)) => {
                tracing::debug!(%peer, %error, "closing connection");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "no PROXY header in time");
                return;
            }
        }
    } else {
        (peer, local)
    };
    let info = ConnInfo {
        client,
        https: endpoint.tls.is_some(),
        port,
    };
    match &endpoint.tls {
        Some(acceptor) => {
            match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    // HTTP/2 clients (ALPN h2) go straight to hyper.
                    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                    let draining = (!h2).then_some(draining);
                    serve(tls, info, &endpoint, watcher, draining).await
                }
                Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        }
        None => serve(stream, info, &endpoint, watcher, Some(draining)).await,
    }
}

/// Serves one connection: app listeners start on the HTTP/1.1 fast path (when `draining`
/// is given) and hand the connection to hyper for what it does not take.
async fn serve<I>(
    io: I,
    info: ConnInfo,
    endpoint: &Endpoint,
    watcher: Watcher,
    draining: Option<watch::Receiver<bool>>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shared = endpoint.shared.clone();
    let result = match endpoint.kind {
        ListenerKind::Admin => {
            let service =
                service_fn(move |req: Request<Incoming>| proxy::admin(shared.clone(), req));
            let io = TokioIo::new(io);
            let conn = endpoint.builder.serve_connection_with_upgrades(io, service);
            watcher.watch(conn.into_owned()).await
        }
        ListenerKind::Http | ListenerKind::Https => {
            let io = match draining {
                Some(mut draining) => match fast::serve(io, info, &shared, &mut draining).await {
                    fast::Ending::Closed => return,
                    fast::Ending::Handoff(io, read) => Rewind::new(io, read),
                },
                None => Rewind::new(io, BytesMut::new()),
            };
            let service =
                service_fn(move |req: Request<Incoming>| proxy::handle(shared.clone(), info, req));
            let conn = endpoint
                .builder
                .serve_connection_with_upgrades(TokioIo::new(io), service);
            watcher.watch(conn.into_owned()).await
        }
    };
    if let Err(error) = result {
        tracing::debug!(client = %info.client, %error, "connection ended with an error");
    }
}
