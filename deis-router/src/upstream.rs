//! Connections to endpoints: a keep-alive pool per endpoint whose connections are driven by
//! the task of the request that uses them.
//!
//! hyper's pooled client gives every upstream connection a task of its own and hands each
//! request and response across a channel to it, two task switches per request. Here the
//! request's task polls the connection itself while it waits for the response and while it
//! streams the body to the client; when the body is done the connection goes back to its
//! endpoint's idle list, and is polled again only by the next request that takes it. An idle
//! connection the endpoint closed is noticed (and dropped) when it is taken.
//!
//! Upgrades (WebSocket) get a connection of their own with a task, as a tunnel must outlive
//! the request.

use crate::balance::{Endpoint, InflightGuard};
use crate::body::UpstreamBody;
use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;

type Connection = Pin<Box<http1::Connection<TokioIo<TcpStream>, UpstreamBody>>>;

/// An open HTTP/1.1 connection to an endpoint, not in use.
pub(crate) struct IdleConnection {
    sender: http1::SendRequest<UpstreamBody>,
    connection: Connection,
}

impl fmt::Debug for IdleConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdleConnection").finish_non_exhaustive()
    }
}

/// Pool settings, from the router's configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolLimits {
    pub(crate) connect_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_idle: usize,
}

/// Why a request did not get a response.
#[derive(Debug)]
pub(crate) enum SendError {
    /// No connection could be made: another endpoint may be tried.
    Connect(std::io::Error),
    /// The connection failed after the request started.
    Request(hyper::Error),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Connect(error) => write!(f, "connect: {error}"),
            SendError::Request(error) => write!(f, "request: {error}"),
        }
    }
}

pub(crate) async fn connect(endpoint: &Endpoint, limits: PoolLimits) -> std::io::Result<TcpStream> {
    let connecting = async {
        match endpoint.socket_addr {
            Some(addr) => TcpStream::connect(addr).await,
            None => TcpStream::connect(endpoint.address.as_str()).await,
        }
    };
    let stream = tokio::time::timeout(limits.connect_timeout, connecting)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// A connection taken from the pool, made ready to send: `None` when it was closed meanwhile.
fn revive(idle: IdleConnection) -> Option<IdleConnection> {
    let IdleConnection {
        mut sender,
        mut connection,
    } = idle;
    // One poll with a no-op waker: the connection reads what arrived while it was idle (a
    // close) and marks itself ready for the next request; it is polled for real from the
    // request's task right after.
    let mut cx = Context::from_waker(std::task::Waker::noop());
    if connection.as_mut().poll(&mut cx).is_ready() {
        return None;
    }
    match sender.poll_ready(&mut cx) {
        Poll::Ready(Ok(())) => Some(IdleConnection { sender, connection }),
        _ => None,
    }
}

/// Sends `request` (origin-form URI, `Host` set) to `endpoint` over a pooled or new
/// connection, and returns the response whose body keeps driving the connection.
///
/// A pooled connection that fails before the endpoint answered is replaced by a new one
/// when the request body can still be sent again (the endpoint may have closed it just as it
/// was taken); a failed connect is returned as [`SendError::Connect`].
pub(crate) async fn send(
    endpoint: &Arc<Endpoint>,
    limits: PoolLimits,
    mut request: Request<UpstreamBody>,
    guard: InflightGuard,
) -> Result<Response<PooledBody>, SendError> {
    loop {
        let (idle, reused) = match endpoint.idle.take(limits).and_then(revive) {
            Some(idle) => (idle, true),
            None => {
                let stream = connect(endpoint, limits)
                    .await
                    .map_err(SendError::Connect)?;
                let (sender, connection) = http1::handshake(TokioIo::new(stream))
                    .await
                    .map_err(SendError::Request)?;
                let connection = Box::pin(connection);
                (IdleConnection { sender, connection }, false)
            }
        };
        let IdleConnection {
            mut sender,
            connection,
            ..
        } = idle;
        let mut connection = Some(connection);
        let sent = {
            let mut response = std::pin::pin!(sender.try_send_request(request));
            poll_fn(|cx| {
                drive(&mut connection, cx);
                response.as_mut().poll(cx)
            })
            .await
        };
        match sent {
            Ok(response) => {
                let (parts, body) = response.into_parts();
                let body = PooledBody {
                    body,
                    connection: connection.map(|connection| (sender, connection)),
                    endpoint: endpoint.clone(),
                    limits,
                    _guard: guard,
                };
                return Ok(Response::from_parts(parts, body));
            }
            Err(mut error) => match error.take_message() {
                // Not written: the pooled connection was closed just as it was taken.
                Some(unsent) if reused && unsent.body().reusable() => {
                    tracing::debug!(endpoint = %endpoint.address, error = %error.error(), "pooled connection closed; retrying on a new one");
                    request = unsent;
                }
                _ => return Err(SendError::Request(error.into_error())),
            },
        }
    }
}

/// Polls the connection (if still open) so it reads and writes; forgets it once it ends.
fn drive(connection: &mut Option<Connection>, cx: &mut Context<'_>) {
    if let Some(open) = connection {
        if let Poll::Ready(result) = open.as_mut().poll(cx) {
            if let Err(error) = result {
                tracing::debug!(%error, "upstream connection ended");
            }
            *connection = None;
        }
    }
}

/// Sends an upgrade request (WebSocket) on a new connection of its own, driven by a task
/// that hands the connection over when the endpoint switches protocols.
pub(crate) async fn send_upgrade(
    endpoint: &Endpoint,
    limits: PoolLimits,
    request: Request<UpstreamBody>,
) -> Result<Response<Incoming>, SendError> {
    let stream = connect(endpoint, limits)
        .await
        .map_err(SendError::Connect)?;
    let (mut sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(SendError::Request)?;
    tokio::spawn(async move {
        if let Err(error) = connection.with_upgrades().await {
            tracing::debug!(%error, "upgrade connection ended");
        }
    });
    sender
        .send_request(request)
        .await
        .map_err(SendError::Request)
}

/// An endpoint's response body. Polling it also drives its connection; once the body is
/// complete the connection returns to the endpoint's idle list. It keeps the endpoint
/// counted as busy until it is done or dropped.
pub(crate) struct PooledBody {
    body: Incoming,
    connection: Option<(http1::SendRequest<UpstreamBody>, Connection)>,
    endpoint: Arc<Endpoint>,
    limits: PoolLimits,
    _guard: InflightGuard,
}

impl fmt::Debug for PooledBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledBody")
            .field("endpoint", &self.endpoint.address)
            .field("open", &self.connection.is_some())
            .finish_non_exhaustive()
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        if let Some((_, connection)) = &mut this.connection {
            if let Poll::Ready(result) = connection.as_mut().poll(cx) {
                if let Err(error) = result {
                    tracing::debug!(%error, "upstream connection ended");
                }
                this.connection = None;
            }
        }
        Pin::new(&mut this.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        // Only a connection whose response was read to the end can carry another request; any
        // other is closed by dropping it.
        if !self.body.is_end_stream() {
            return;
        }
        if let Some((sender, connection)) = self.connection.take() {
            self.endpoint
                .idle
                .put(IdleConnection { sender, connection }, self.limits);
        }
    }
}
