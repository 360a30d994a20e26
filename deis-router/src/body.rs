//! Body types: the request body sent upstream (size-limited, and reclaimable when a connect
//! fails before it was read) and the response body sent to clients.

use crate::balance::InflightGuard;
use crate::upstream::PooledBody;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// The request body grew past the configured limit.
#[derive(Debug)]
pub(crate) struct BodyTooLarge;

impl fmt::Display for BodyTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("request body too large")
    }
}

impl std::error::Error for BodyTooLarge {}

#[derive(Debug)]
struct Slot {
    body: Option<Incoming>,
    polled: bool,
    received: u64,
    limit: Option<u64>,
    too_large: bool,
}

/// A client's request body on its way upstream. Its owner keeps a handle to the same slot,
/// so that after a failed connect (the body never polled) it can take the body back and
/// send it to another endpoint.
#[derive(Debug, Clone)]
pub(crate) struct UpstreamBody {
    slot: Arc<Mutex<Slot>>,
}

impl UpstreamBody {
    pub(crate) fn new(body: Incoming, limit: Option<u64>) -> Self {
        Self {
            slot: Arc::new(Mutex::new(Slot {
                body: Some(body),
                polled: false,
                received: 0,
                limit,
                too_large: false,
            })),
        }
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the body can still be sent again: nothing was read from it.
    pub(crate) fn reusable(&self) -> bool {
        let slot = self.slot();
        !slot.polled && slot.body.is_some()
    }

    /// Whether reading stopped because the body passed the limit.
    pub(crate) fn too_large(&self) -> bool {
        self.slot().too_large
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let mut slot = self.slot();
        slot.polled = true;
        let Some(body) = slot.body.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    slot.received += data.len() as u64;
                    if slot.limit.is_some_and(|limit| slot.received > limit) {
                        slot.too_large = true;
                        slot.body = None;
                        return Poll::Ready(Some(Err(Box::new(BodyTooLarge))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.slot().body.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.slot()
            .body
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

/// The body of every response the router sends: its own short answers, or an endpoint's
/// body (which keeps the endpoint counted as busy until it is sent or dropped).
#[derive(Debug)]
pub(crate) enum ResponseBody {
    /// A body the router made.
    Local(Full<Bytes>),
    /// An endpoint's body on a pooled connection.
    Pooled(PooledBody),
    /// An endpoint's body on a connection of its own (upgrade requests).
    Upstream(Incoming, Option<InflightGuard>),
}

impl ResponseBody {
    pub(crate) fn text(text: impl Into<Bytes>) -> Self {
        ResponseBody::Local(Full::new(text.into()))
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ResponseBody::Local(full) => match Pin::new(full).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
                Poll::Ready(Some(Err(never))) => match never {},
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
            ResponseBody::Pooled(body) => Pin::new(body).poll_frame(cx),
            ResponseBody::Upstream(body, guard) => {
                let polled = Pin::new(body).poll_frame(cx);
                if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
                    guard.take();
                }
                polled
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Local(full) => full.is_end_stream(),
            ResponseBody::Pooled(body) => body.is_end_stream(),
            ResponseBody::Upstream(body, _) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Local(full) => full.size_hint(),
            ResponseBody::Pooled(body) => body.size_hint(),
            ResponseBody::Upstream(body, _) => body.size_hint(),
        }
    }
}
